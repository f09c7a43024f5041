"""The service client and its auth provider, against a recording server.

Run them with ``python -m pytest unit_tests`` (or ``python -m unittest
discover unit_tests``) in this folder, tempest installed. The server is a
real HTTP server on loopback that records each request and answers what
the test told it to; the tokens come from a stand-in of the Keystone
provider the client's credentials would have.
"""

import http.server
import json
import threading
import unittest

from tempest.lib import auth
from tempest.lib import exceptions as lib_exc

from cache_maint_tempest_plugin.services import cache_maint_client
from cache_maint_tempest_plugin.services import endpoint_auth

IMAGE_ID = '9b5a7c1e-3f2d-4e8a-b6c0-1d2e3f4a5b6c'


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request; answers the server's next (status, body)."""

    def _answer(self):
        length = int(self.headers.get('Content-Length') or 0)
        self.server.requests.append(
            (self.command, self.path, dict(self.headers),
             self.rfile.read(length)))
        status, body = self.server.answers.pop(0)
        payload = b'' if body is None else json.dumps(body).encode()
        self.send_response(status)
        if payload:
            self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


class KeystoneStandIn:
    """What EndpointAuthProvider asks of the Keystone provider it wraps."""

    scope = 'project'

    def __init__(self, catalog_url):
        self.credentials = auth.KeystoneV3Credentials(
            username='demo', password='secret', project_name='demo',
            user_domain_name='Default', project_domain_name='Default')
        self.catalog_url = catalog_url
        self.issued = 0
        self.expired = False

    def get_auth(self):
        if self.issued == 0 or self.expired:
            self.issued += 1
            self.expired = False
        return 'token-%d' % self.issued, {'expires_at': 'never'}

    def is_expired(self, auth_data):
        return self.expired

    def clear_auth(self):
        self.issued = 0

    def base_url(self, filters, auth_data=None):
        return auth.apply_url_filters(self.catalog_url, filters)


class ClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     Recorder)
        cls.server.requests, cls.server.answers = [], []
        cls.endpoint = 'http://127.0.0.1:%d' % cls.server.server_port
        threading.Thread(target=cls.server.serve_forever,
                         daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self):
        super().setUp()
        del self.server.requests[:]
        del self.server.answers[:]
        self.keystone = KeystoneStandIn('http://catalog.example:9393')
        self.client = cache_maint_client.CacheMaintClient(
            self.keystone, 'image-cache', 'RegionOne',
            endpoint=self.endpoint)

    def answer(self, status, body=None):
        self.server.answers.append((status, body))

    def request(self):
        """(method, path, headers, body) of the one request sent."""
        self.assertEqual(1, len(self.server.requests))
        return self.server.requests.pop()

    def test_endpoint_overrides_the_catalog(self):
        self.assertIsInstance(self.client.auth_provider,
                              endpoint_auth.EndpointAuthProvider)
        self.assertEqual(self.endpoint + '/v2', self.client.base_url)

    def test_endpoint_path_and_version_kept(self):
        for endpoint, base_url in (
                ('http://node:9393/', 'http://node:9393/v2'),
                ('http://node:9393/v2', 'http://node:9393/v2'),
                ('https://proxy/cache-maint', 'https://proxy/cache-maint/v2')):
            client = cache_maint_client.CacheMaintClient(
                self.keystone, 'image-cache', 'RegionOne', endpoint=endpoint)
            self.assertEqual(base_url, client.base_url)

    def test_catalog_without_endpoint(self):
        client = cache_maint_client.CacheMaintClient(
            self.keystone, 'image-cache', 'RegionOne')
        self.assertIs(self.keystone, client.auth_provider)
        self.assertEqual('http://catalog.example:9393/v2', client.base_url)

    def test_token_of_the_wrapped_provider(self):
        self.answer(200, {'cached_images': [], 'queued_images': []})
        self.client.list_cache()
        method, path, headers, _ = self.request()
        self.assertEqual(('GET', '/v2/cache'), (method, path))
        self.assertEqual('token-1', headers['X-Auth-Token'])

        # A token the wrapped provider says expired is renewed by it.
        self.keystone.expired = True
        self.answer(200, {'cached_images': [], 'queued_images': []})
        self.client.list_cache()
        self.assertEqual('token-2', self.request()[2]['X-Auth-Token'])

    def test_alternate_auth_without_token(self):
        self.client.auth_provider.set_alt_auth_data('headers', None)
        self.answer(401, {'error': {'code': 401, 'title': 'Unauthorized',
                                    'message': 'no token'}})
        self.assertRaises(lib_exc.Unauthorized, self.client.list_cache)
        self.assertNotIn('X-Auth-Token', self.request()[2])

    def test_routes(self):
        pin = {'image_id': IMAGE_ID, 'pinned_at': 1.5, 'note': 'why'}
        calls = [
            (lambda: self.client.cache_queue(IMAGE_ID), 202, None,
             'PUT', '/v2/cache/' + IMAGE_ID),
            (lambda: self.client.cache_delete(IMAGE_ID), 204, None,
             'DELETE', '/v2/cache/' + IMAGE_ID),
            (lambda: self.client.list_cached_nodes(IMAGE_ID), 200,
             ['http://node-1:9292'], 'GET', '/v2/cache/nodes/' + IMAGE_ID),
            (lambda: self.client.clean_cache(), 200,
             {'total_files_cleaned': 0, 'total_bytes_cleaned': 0},
             'POST', '/v2/cache/clean'),
            (lambda: self.client.prune_cache(dry_run=True), 200,
             {'total_files_pruned': 0, 'total_bytes_pruned': 0,
              'dry_run': True, 'images': []},
             'POST', '/v2/cache/prune?dry_run=true'),
            (lambda: self.client.list_runs(task='prune', limit=1), 200,
             {'runs': []}, 'GET', '/v2/cache/runs?task=prune&limit=1'),
            (lambda: self.client.show_status(), 200, {'driver': 'sqlite'},
             'GET', '/v2/cache/status'),
            (lambda: self.client.list_pins(), 200, {'pins': [pin]},
             'GET', '/v2/cache/pins'),
            (lambda: self.client.unpin_image(IMAGE_ID), 204, None,
             'DELETE', '/v2/cache/pins/' + IMAGE_ID),
        ]
        for call, status, body, method, path in calls:
            self.answer(status, body)
            answer = call()
            self.assertEqual(status, answer.response.status)
            self.assertEqual(body or {}, answer)
            self.assertEqual((method, path), self.request()[:2])

    def test_clear_target_header(self):
        self.answer(204)
        self.client.cache_clear(target='queue')
        headers = self.request()[2]
        self.assertEqual('queue', headers['x-image-cache-clear-target'])
        self.answer(204)
        self.client.cache_clear()
        self.assertNotIn('x-image-cache-clear-target', self.request()[2])

    def test_pin_note_and_statuses(self):
        pin = {'image_id': IMAGE_ID, 'pinned_at': 1.5, 'note': 'why'}
        self.answer(201, pin)
        self.assertEqual(pin, self.client.pin_image(IMAGE_ID, note='why'))
        self.assertEqual({'note': 'why'}, json.loads(self.request()[3]))
        self.answer(200, pin)
        self.assertEqual(pin, self.client.pin_image(IMAGE_ID))
        self.assertEqual(b'', self.request()[3])

    def test_exact_success_status(self):
        # 200 where the API says 204: tempest's strict check fails it.
        self.answer(200, {})
        self.assertRaises(lib_exc.InvalidHttpSuccessCode,
                          self.client.cache_delete, IMAGE_ID)
