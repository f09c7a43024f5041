"""The API through its real WSGI stack: every route, role and error."""

import datetime
import importlib.metadata
import json
import os
import threading

from keystonemiddleware import fixture as ksm_fixture
from oslo_context import context
import pytest
import requests
import webob

from cache_maint.api.handlers import cache as cache_handlers
from cache_maint.api import router
from cache_maint.api import server
from cache_maint import state

from tests.support import apps
from tests.support import caches
from tests.support import fs
from tests.support import locking
from tests.support import plans
from tests.support import settings

KIB = caches.KIB


class API:
    """The loaded application, a real cache under it, and request helpers."""

    def __init__(self, tmp_path, args=(), **overrides):
        self.cache = caches.SqliteCache(tmp_path / 'cache')
        overrides.setdefault('api__auth_strategy', 'noauth2')
        self.conf = settings.make_conf(self.cache.path, args, **overrides)
        self.app = apps.make_app(self.conf)

    def request(self, method, path, token='admin', body=None, headers=None):
        req = webob.Request.blank(path, method=method)
        if token is not None:
            req.headers['X-Auth-Token'] = token
        if body is not None:
            req.body = body
        req.headers.update(headers or {})
        return req.get_response(self.app)


@pytest.fixture
def api(tmp_path):
    return API(tmp_path)


def assert_json_error(response, code):
    assert response.status_int == code
    assert response.content_type == 'application/json'
    error = response.json['error']
    assert error['code'] == code
    assert error['message']
    assert '/tmp' not in response.text and 'Traceback' not in response.text
    return error['message']


class TestVersions:
    def test_root_is_multiple_choices(self, api):
        response = api.request('GET', '/', token=None)
        assert response.status_int == 300
        assert response.content_type == 'application/json'
        assert response.json == api.request('GET', '/versions').json

    def test_versions_document(self, api):
        response = api.request('GET', '/versions', token=None)
        assert response.status_int == 200
        versions = {v['id']: v for v in response.json['versions']}
        assert versions['v2.18']['status'] == 'CURRENT'
        for minor in (14, 15, 16, 17):
            assert versions['v2.%d' % minor]['status'] == 'SUPPORTED'
        for version in versions.values():
            assert set(version) == {'id', 'status', 'links'}
            assert version['links'] == [
                {'rel': 'self', 'href': 'http://localhost/v2/'}]

    def test_versions_document_names_the_build(self, api):
        build = api.request('GET', '/versions', token=None).json['build_info']
        assert build == {'name': 'cache-maint',
                         'version': importlib.metadata.version('cache-maint')}

    def test_schema_for_glanceclient_is_public(self, api):
        response = api.request('GET', '/v2/schemas/metadefs/resource_type',
                               token=None)
        assert response.status_int == 200
        assert response.json['name'] == 'resource_type_association'


class TestPrune:
    def test_admin_prunes_and_gets_exact_counts(self, api):
        ids = [api.cache.add_image(size=10 * KIB, last_accessed=100.0 + i)
               for i in range(15)]
        api.conf.set_override('image_cache_max_size', 100 * KIB)
        response = api.request('POST', '/v2/cache/prune')
        assert response.status_int == 200
        assert response.content_type == 'application/json'
        assert response.json == {'total_files_pruned': 5,
                                 'total_bytes_pruned': 50 * KIB}
        assert api.cache.images() == set(ids[5:])
        assert set(api.cache.rows()) == set(ids[5:])

    def test_nothing_to_prune_is_zeros(self, api):
        response = api.request('POST', '/v2/cache/prune')
        assert response.json == {'total_files_pruned': 0,
                                 'total_bytes_pruned': 0}

    def test_new_limit_applies_to_the_next_request(self, api):
        for i in range(4):
            api.cache.add_image(last_accessed=100.0 + i)
        api.conf.set_override('image_cache_max_size', 3 * KIB)
        assert api.request('POST', '/v2/cache/prune').json[
            'total_files_pruned'] == 1
        api.conf.set_override('image_cache_max_size', 1 * KIB)
        assert api.request('POST', '/v2/cache/prune').json[
            'total_files_pruned'] == 2


class TestClean:
    def test_admin_cleans_and_gets_exact_counts(self, api):
        api.cache.add_invalid(size=3 * KIB)
        api.cache.add_invalid(size=1 * KIB)
        api.cache.add_incomplete(size=2 * KIB, age=3 * 86400)
        fresh = api.cache.add_incomplete(age=5)
        response = api.request('POST', '/v2/cache/clean')
        assert response.status_int == 200
        assert response.json == {'total_files_cleaned': 3,
                                 'total_bytes_cleaned': 6 * KIB}
        assert api.cache.listdir('invalid') == set()
        assert api.cache.listdir('incomplete') == {fresh}


class TestRunRecord:
    def test_runs_are_recorded_oldest_first(self, api):
        api.cache.add_invalid(size=2 * KIB)
        api.cache.add_image(size=3 * KIB, last_accessed=100.0)
        api.conf.set_override('image_cache_max_size', 0)
        api.request('POST', '/v2/cache/clean')
        api.request('POST', '/v2/cache/prune')
        response = api.request('GET', '/v2/cache/runs')
        assert response.status_int == 200
        clean, prune = response.json['runs']
        assert (clean['task'], clean['trigger'], clean['outcome']) == (
            'clean', 'API', 'succeeded')
        assert clean['result'] == {'total_files_cleaned': 1,
                                   'total_bytes_cleaned': 2 * KIB}
        assert prune['result'] == {'total_files_pruned': 1,
                                   'total_bytes_pruned': 3 * KIB}
        assert clean['error'] is None and clean['failures'] == 0
        assert clean['started_at'] <= clean['finished_at']
        assert clean['finished_at'] <= prune['started_at']
        assert prune['duration'] == pytest.approx(
            prune['finished_at'] - prune['started_at'], abs=1e-5)

    def test_a_failed_run_is_recorded_without_host_paths(self, api):
        # Over the limit: prune has to read the records to choose.
        api.cache.add_image(last_accessed=100.0)
        api.conf.set_override('image_cache_max_size', 0)
        with open(api.cache.db_path, 'wb') as f:
            f.write(b'garbage' * 1000)
        api.request('POST', '/v2/cache/prune')
        [run] = api.request('GET', '/v2/cache/runs').json['runs']
        assert (run['task'], run['outcome'], run['result']) == (
            'prune', 'failed', None)
        assert 'metadata' in run['error'] and '/tmp' not in run['error']

    def test_a_run_that_cannot_take_its_lock_is_recorded(self, api):
        # The lock files live in the cache directory.
        os.rename(api.cache.path, api.cache.path + '.moved')
        api.request('POST', '/v2/cache/clean')
        [run] = api.request('GET', '/v2/cache/runs').json['runs']
        assert (run['task'], run['outcome']) == ('clean', 'failed')
        assert run['error'] and '/tmp' not in run['error']

    def test_a_run_that_never_started_is_not_recorded(self, tmp_path):
        api = API(tmp_path, api__task_wait_timeout=0)
        with locking.task_held(api.conf, 'prune'):
            assert api.request('POST', '/v2/cache/prune').status_int == 409
        assert api.request('GET', '/v2/cache/runs').json == {'runs': []}

    def test_the_record_keeps_the_latest_runs(self, tmp_path, monkeypatch):
        monkeypatch.setattr(state, 'RUN_HISTORY', 3)
        api = API(tmp_path)
        for _ in range(5):
            api.request('POST', '/v2/cache/clean')
        record = api.request('GET', '/v2/cache/runs').json['runs']
        assert len(record) == 3
        kept = state.StateStore(os.path.join(api.cache.path, '.cache-maint'))
        assert len(kept.runs(limit=100)) == 3
        assert [r['started_at'] for r in record] == sorted(
            r['started_at'] for r in record)


class TestAccess:
    def populate(self, api):
        api.cache.add_invalid()
        for i in range(3):
            api.cache.add_image(last_accessed=100.0 + i)
        api.conf.set_override('image_cache_max_size', 0)
        return api.cache.images(), api.cache.listdir('invalid')

    @pytest.mark.parametrize('path', ['/v2/cache/clean', '/v2/cache/prune'])
    def test_non_admin_is_forbidden_and_nothing_changes(self, api, path):
        images, invalid = self.populate(api)
        response = api.request('POST', path, token='alice')
        message = assert_json_error(response, 403)
        assert 'not authorized' in message
        assert api.cache.images() == images
        assert api.cache.listdir('invalid') == invalid

    @pytest.mark.parametrize('path', ['/v2/cache/clean', '/v2/cache/prune'])
    def test_no_token_is_unauthorized_and_nothing_changes(self, api, path):
        images, invalid = self.populate(api)
        assert_json_error(api.request('POST', path, token=None), 401)
        assert api.cache.images() == images
        assert api.cache.listdir('invalid') == invalid

    def test_client_identity_headers_are_not_trusted(self, api):
        images, _ = self.populate(api)
        response = api.request('POST', '/v2/cache/prune', token='alice',
                               headers={'X-Roles': 'admin'})
        assert_json_error(response, 403)
        assert api.cache.images() == images

    def test_every_guarded_route_refuses_a_non_admin(self, api):
        """Walk the route table: nothing but discovery is open."""
        table = router.routes(cache_handlers.CacheHandlers)
        for path, methods in table.items():
            for method in methods:
                response = api.request(method, path, token='alice')
                if router.is_public(path):
                    assert response.status_int < 400, path
                else:
                    assert_json_error(response, 403)

    def test_a_glance_policy_file_keeps_working(self, tmp_path):
        """Glance's sample rules refer to rule:context_is_admin."""
        policy = tmp_path / 'policy.yaml'
        policy.write_text('"context_is_admin": "role:admin"\n'
                          '"cache_prune": "rule:context_is_admin"\n'
                          '"cache_clean": "rule:context_is_admin"\n')
        api = API(tmp_path, oslo_policy__policy_file=str(policy))
        assert api.request('POST', '/v2/cache/prune').status_int == 200
        assert api.request('POST', '/v2/cache/clean').status_int == 200
        assert_json_error(api.request('POST', '/v2/cache/prune',
                                      token='alice'), 403)

    def test_policy_file_changes_the_rules(self, tmp_path):
        policy = tmp_path / 'policy.yaml'
        policy.write_text('"cache_prune": "role:member"\n'
                          '"cache_clean": "!"\n')
        api = API(tmp_path, oslo_policy__policy_file=str(policy))
        assert api.request('POST', '/v2/cache/prune',
                           token='alice').status_int == 200
        assert_json_error(api.request('POST', '/v2/cache/clean'), 403)


class TestErrors:
    def test_unknown_path(self, api):
        for path in ('/v3/cache/prune', '/v2/cache/', '/v2/images',
                     '/v2/cache/prune/', '/v2/cache/prune/extra'):
            assert_json_error(api.request('POST', path), 404)

    def test_post_on_an_image_is_not_allowed(self, api):
        # As in Glance: /v2/cache/{image_id} takes PUT and DELETE only.
        response = api.request('POST', '/v2/cache/compact')
        assert_json_error(response, 405)
        assert response.headers['Allow'] == 'DELETE, PUT'

    @pytest.mark.parametrize('method', ['GET', 'PUT', 'DELETE', 'PATCH'])
    def test_wrong_method_lists_allowed_ones(self, api, method):
        response = api.request(method, '/v2/cache/prune')
        assert_json_error(response, 405)
        assert response.headers['Allow'] == 'POST'

    def test_wrong_method_on_versions(self, api):
        response = api.request('POST', '/versions')
        assert_json_error(response, 405)
        assert response.headers['Allow'] == 'GET'

    @pytest.mark.parametrize('body, content_type', [
        (b'', 'application/octet-stream'),
        (b'{}', 'application/json'),
        (b'  ', 'application/json'),
    ])
    def test_empty_bodies_are_accepted(self, api, body, content_type):
        response = api.request('POST', '/v2/cache/prune', body=body,
                               headers={'Content-Type': content_type})
        assert response.status_int == 200

    @pytest.mark.parametrize('body', [b'{"max_size": 0}', b'not json',
                                      b'[]', b'\xff\xfe'])
    def test_bad_bodies_are_refused_and_change_nothing(self, api, body):
        ids = [api.cache.add_image() for _ in range(3)]
        api.conf.set_override('image_cache_max_size', 0)
        response = api.request('POST', '/v2/cache/prune', body=body,
                               headers={'Content-Type': 'application/json'})
        assert_json_error(response, 400)
        assert api.cache.images() == set(ids)

    def test_busy_task_is_a_conflict_after_the_wait(self, tmp_path):
        api = API(tmp_path, api__task_wait_timeout=0)
        with locking.task_held(api.conf, 'prune'):
            response = api.request('POST', '/v2/cache/prune')
            message = assert_json_error(response, 409)
            assert 'already in progress' in message
            # clean is a different task and runs.
            assert api.request('POST', '/v2/cache/clean').status_int == 200

    def test_a_request_waits_for_the_run_in_progress(self, tmp_path):
        api = API(tmp_path, api__task_wait_timeout=30)
        for i in range(3):
            api.cache.add_image(last_accessed=100.0 + i)
        api.conf.set_override('image_cache_max_size', 0)
        with locking.task_held(api.conf, 'prune') as release:
            threading.Timer(0.3, release.set).start()
            response = api.request('POST', '/v2/cache/prune')
        assert response.json['total_files_pruned'] == 3

    def test_a_failing_run_is_a_clear_error(self, api):
        # Over the limit: prune has to read the records to choose.
        api.cache.add_image(last_accessed=100.0)
        api.conf.set_override('image_cache_max_size', 0)
        with open(api.cache.db_path, 'wb') as f:
            f.write(b'garbage' * 1000)
        message = assert_json_error(api.request('POST', '/v2/cache/prune'),
                                    503)
        assert 'metadata' in message

    def test_cache_dir_gone_is_a_clear_error(self, api):
        os.rename(api.cache.path, api.cache.path + '.moved')
        message = assert_json_error(api.request('POST', '/v2/cache/clean'),
                                    500)
        assert 'directory' in message


class TestKeystone:
    """keystone mode, with keystonemiddleware's own fixture for tokens."""

    @pytest.fixture
    def tokens(self):
        fixture = ksm_fixture.AuthTokenFixture()
        fixture.setUp()
        yield fixture
        fixture.cleanUp()

    @pytest.fixture
    def api(self, tmp_path, tokens):
        conf = tmp_path / 'keystone.conf'
        conf.write_text('[keystone_authtoken]\n'
                        'www_authenticate_uri = http://keystone.test:5000\n')
        api = API(tmp_path, args=['--config-file', str(conf)],
                  api__auth_strategy='keystone')
        api.cache.add_image()
        api.conf.set_override('image_cache_max_size', 0)
        return api

    def token(self, tokens, roles, expires=None):
        token_id = caches.new_id()
        tokens.add_token_data(
            token_id=token_id, user_id='u-' + roles[0], project_id='p1',
            role_list=roles, expires=expires)
        return token_id

    def test_admin_token(self, api, tokens):
        token = self.token(tokens, ['admin', 'member'])
        response = api.request('POST', '/v2/cache/prune', token=token)
        assert response.status_int == 200
        assert response.json['total_files_pruned'] == 1

    def test_member_token_is_forbidden(self, api, tokens):
        token = self.token(tokens, ['member', 'reader'])
        assert_json_error(api.request('POST', '/v2/cache/prune',
                                      token=token), 403)
        assert len(api.cache.images()) == 1

    def test_expired_token_is_refused(self, api, tokens):
        past = datetime.datetime.now(datetime.timezone.utc) \
            - datetime.timedelta(hours=1)
        token = self.token(tokens, ['admin'], expires=past)
        response = api.request('POST', '/v2/cache/prune', token=token)
        assert response.status_int == 401
        assert len(api.cache.images()) == 1

    @pytest.mark.parametrize('token', ['unknown-token', None])
    def test_unknown_or_missing_token_is_refused(self, api, token):
        response = api.request('POST', '/v2/cache/prune', token=token)
        assert response.status_int == 401
        assert len(api.cache.images()) == 1

    def test_discovery_needs_no_token(self, api):
        assert api.request('GET', '/', token=None).status_int == 300
        assert api.request('GET', '/versions', token=None).status_int == 200


class TestHTTPServer:
    """The same application behind the real cheroot server."""

    @pytest.fixture
    def http(self, api):
        api.conf.set_override('bind_port', 0, group='api')
        http = server.APIServer(api.conf, api.app)
        http.start()
        host, port = http.address
        yield api, 'http://%s:%d' % (host, port)
        http.stop()

    def test_prune_over_http(self, http):
        api, url = http
        for i in range(4):
            api.cache.add_image(last_accessed=100.0 + i)
        api.conf.set_override('image_cache_max_size', 2 * KIB)
        response = requests.post(url + '/v2/cache/prune',
                                 headers={'X-Auth-Token': 'admin'})
        assert response.status_code == 200
        assert response.headers['Content-Type'].startswith(
            'application/json')
        assert json.loads(response.text) == {
            'total_files_pruned': 2, 'total_bytes_pruned': 2 * KIB}

    def test_glanceclient_style_request(self, http):
        api, url = http
        response = requests.post(
            url + '/v2/cache/clean',
            headers={'X-Auth-Token': 'admin',
                     'Content-Type': 'application/octet-stream',
                     'User-Agent': 'python-glanceclient'})
        assert response.status_code == 200

    def test_versions_links_use_the_request_host(self, http):
        _api, url = http
        response = requests.get(url + '/versions')
        assert response.json()['versions'][0]['links'][0]['href'] == \
            url + '/v2/'


class TestOperatorMiddleware:
    @pytest.mark.parametrize('method, path, token, status', [
        ('POST', '/v2/cache/prune', 'admin', 200),
        ('POST', '/v2/cache/prune', 'alice', 403),
        ('GET', '/nowhere', 'admin', 404),
        ('GET', '/', None, 300),
    ])
    def test_every_response_has_a_request_id(self, api, method, path, token,
                                             status):
        response = api.request(method, path, token=token)
        assert response.status_int == status
        assert response.headers['x-openstack-request-id'].startswith('req-')

    def test_one_log_line_per_request(self, api, caplog):
        logger = 'cache_maint.api.middleware.requestlog'
        caplog.set_level('INFO', logger=logger)
        api.request('POST', '/v2/cache/clean')
        lines = [r.getMessage() for r in caplog.records if r.name == logger]
        assert len(lines) == 1
        assert '"POST /v2/cache/clean" status: 200' in lines[0]


class TestKeystoneUnreachable:
    def test_errors_stay_json(self, tmp_path, caplog):
        conf = tmp_path / 'keystone.conf'
        conf.write_text(
            '[keystone_authtoken]\n'
            'www_authenticate_uri = http://127.0.0.1:9/identity\n'
            'auth_type = password\nauth_url = http://127.0.0.1:9/identity\n'
            'username = cache-maint\npassword = secret\n'
            'project_name = service\nuser_domain_name = Default\n'
            'project_domain_name = Default\nhttp_connect_timeout = 1\n'
            'http_request_max_retries = 0\n')
        api = API(tmp_path, args=['--config-file', str(conf)],
                  api__auth_strategy='keystone')
        api.cache.add_image()
        api.conf.set_override('image_cache_max_size', 0)
        caplog.set_level('WARNING')
        response = api.request('POST', '/v2/cache/prune', token='whatever')
        assert_json_error(response, 503)
        assert len(api.cache.images()) == 1
        # One line, naming the setting; keystonemiddleware's own lines and
        # any traceback held back.
        lines = [r for r in caplog.records if r.levelno >= 30]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].exc_info is None
        assert ('Keystone at [keystone_authtoken] auth_url = '
                'http://127.0.0.1:9/identity' in lines[0].getMessage())


def test_log_context_does_not_leak_between_requests(api):
    api.request('POST', '/v2/cache/clean', token='admin')
    assert context.get_current().user_id == 'admin'
    api.request('GET', '/versions', token=None)
    assert context.get_current().user_id is None


class TestCacheRoutes:
    """Glance's other cache routes: list, queue, delete, clear, nodes."""

    def test_list(self, api):
        image = api.cache.add_image(size=3 * KIB, last_accessed=1000.5,
                                    hits=2)
        queued = api.cache.queue()
        response = api.request('GET', '/v2/cache')
        assert response.status_int == 200
        assert response.json == {
            'cached_images': [{'image_id': image, 'last_accessed': 1000.5,
                               'last_modified': 1000.5, 'size': 3 * KIB,
                               'hits': 2}],
            'queued_images': [queued]}

    def test_queue(self, api):
        image = caches.new_id()
        response = api.request('PUT', '/v2/cache/%s' % image,
                               headers={'Content-Type':
                                        'application/octet-stream'})
        assert response.status_int == 202
        assert response.body == b''
        assert api.cache.listdir('queue') == {image}
        # Queueing again, or queueing a cached image, changes nothing.
        cached = api.cache.add_image()
        for again in (image, cached):
            assert api.request('PUT', '/v2/cache/%s' % again).status_int \
                == 202
        assert api.cache.listdir('queue') == {image}

    @pytest.mark.parametrize('method', ['PUT', 'DELETE'])
    @pytest.mark.parametrize('image_id', [
        'not-a-uuid', '..', '%2e%2e%2fetc', 'x' * 300,
        '3b2c1a7e6a4f4d1e9c2b0f1e2d3c4b5a'])
    def test_malformed_ids_are_refused(self, api, method, image_id):
        response = api.request(method, '/v2/cache/%s' % image_id)
        assert response.status_int in (400, 404)
        assert_json_error(response, response.status_int)
        assert api.cache.listdir('queue') == set()

    def test_delete_one(self, api):
        cached = api.cache.add_image()
        queued = api.cache.queue()
        for image in (cached, queued):
            response = api.request('DELETE', '/v2/cache/%s' % image)
            assert response.status_int == 204
            assert response.body == b''
            assert 'Content-Type' not in response.headers
        assert api.cache.images() == set()
        assert api.cache.rows() == {}
        assert api.cache.listdir('queue') == set()
        assert_json_error(api.request('DELETE', '/v2/cache/%s' % cached),
                          404)

    def test_delete_a_link_named_like_an_image(self, api, tmp_path):
        canary = tmp_path / 'canary'
        canary.write_text('keep')
        link = caches.new_id()
        os.symlink(canary, os.path.join(api.cache.path, link))
        os.symlink(canary, os.path.join(api.cache.path, 'queue', link))
        assert_json_error(api.request('DELETE', '/v2/cache/%s' % link), 404)
        assert canary.read_text() == 'keep'

    @pytest.mark.parametrize('target, cache_left, queue_left', [
        (None, False, False), ('', False, False), ('both', False, False),
        ('cache', False, True), ('queue', True, False),
        ('CACHE', False, True)])
    def test_clear(self, api, target, cache_left, queue_left):
        images = {api.cache.add_image() for _ in range(3)}
        queued = {api.cache.queue() for _ in range(2)}
        headers = {} if target is None else {
            'x-image-cache-clear-target': target}
        response = api.request('DELETE', '/v2/cache', headers=headers)
        assert response.status_int == 204
        assert response.body == b''
        assert api.cache.images() == (images if cache_left else set())
        assert set(api.cache.rows()) == (images if cache_left else set())
        assert api.cache.listdir('queue') == (queued if queue_left
                                              else set())
        # Lock files and the database are not images: they stay.
        assert {'cache.db'} <= api.cache.listdir()

    def test_clear_with_a_bad_target_changes_nothing(self, api):
        image = api.cache.add_image()
        response = api.request('DELETE', '/v2/cache',
                               headers={'x-image-cache-clear-target': 'all'})
        assert_json_error(response, 400)
        assert api.cache.images() == {image}

    def test_nodes_need_centralized_db(self, api):
        response = api.request('GET', '/v2/cache/nodes/%s' % caches.new_id())
        assert_json_error(response, 409)

    def test_nodes_with_centralized_db(self, tmp_path):
        central = caches.CentralCache(tmp_path / 'cache',
                                      'sqlite:///%s' % (tmp_path / 'g.db'))
        image = central.add_image()
        central.record([plans.Image(image, KIB, 1.0, 1.0)],
                       node_url=caches.OTHER_NODE_URL)
        conf = central.conf(api__auth_strategy='noauth2')
        application = apps.make_app(conf)
        req = webob.Request.blank('/v2/cache/nodes/%s' % image,
                                  headers={'X-Auth-Token': 'admin'})
        response = req.get_response(application)
        assert response.status_int == 200
        assert response.json == sorted([caches.NODE_URL,
                                        caches.OTHER_NODE_URL])
        central.close()

    def test_v2_discovery(self, api):
        for path in ('/v2', '/v2/'):
            response = api.request('GET', path, token=None)
            assert response.status_int == 200
            assert response.json['versions'][0]['id'] == 'v2.18'

    def test_healthcheck(self, api):
        response = api.request('GET', '/healthcheck', token=None)
        assert response.status_int == 200

    def test_body_size_limit(self, tmp_path):
        api = API(tmp_path, oslo_middleware__max_request_body_size=64)
        response = api.request('POST', '/v2/cache/prune', body=b' ' * 200)
        assert_json_error(response, 413)

    def test_cors_only_when_configured(self, tmp_path, api):
        headers = {'Origin': 'https://dashboard.example.org'}
        response = api.request('GET', '/versions', headers=headers)
        assert 'Access-Control-Allow-Origin' not in response.headers
        configured = API(tmp_path / 'cors',
                         cors__allowed_origin=['https://dashboard.'
                                               'example.org'])
        response = configured.request('GET', '/versions', headers=headers)
        assert response.headers['Access-Control-Allow-Origin'] == \
            'https://dashboard.example.org'

    def test_proxy_headers_only_when_enabled(self, tmp_path, api):
        headers = {'X-Forwarded-Proto': 'https',
                   'X-Forwarded-Host': 'cache.example.org'}
        href = api.request('GET', '/versions', headers=headers).json[
            'versions'][0]['links'][0]['href']
        assert href == 'http://localhost/v2/'
        enabled = API(tmp_path / 'proxy',
                      oslo_middleware__enable_proxy_headers_parsing=True)
        href = enabled.request('GET', '/versions', headers=headers).json[
            'versions'][0]['links'][0]['href']
        assert href == 'https://cache.example.org/v2/'

    def test_image_reference_for_openstackclient(self, api):
        image = caches.new_id()
        response = api.request('GET', '/v2/images/%s' % image)
        assert response.status_int == 200
        assert response.json == {'id': image}
        assert_json_error(api.request('GET', '/v2/images/nope'), 400)
        assert_json_error(api.request('GET', '/v2/images/%s' % image,
                                      token='alice'), 403)

    def test_upper_case_ids_are_refused(self, api):
        image = api.cache.add_image()
        response = api.request('DELETE', '/v2/cache/%s' % image.upper())
        assert_json_error(response, 400)
        assert api.cache.images() == {image}
        assert set(api.cache.rows()) == {image}

    def test_delete_a_record_without_its_file(self, api):
        ghost = api.cache.add_row()
        assert api.request('DELETE', '/v2/cache/%s' % ghost).status_int == 204
        assert api.cache.rows() == {}

    def test_a_file_that_cannot_go_keeps_its_record(self, api, monkeypatch):
        stuck, gone = api.cache.add_image(), api.cache.add_image()
        fs.unlink_fails_for(monkeypatch, stuck)
        assert api.request('DELETE', '/v2/cache').status_int == 204
        assert api.cache.images() == {stuck}
        assert set(api.cache.rows()) == {stuck}
        assert_json_error(api.request('DELETE', '/v2/cache/%s' % stuck), 500)
        assert set(api.cache.rows()) == {stuck}
        assert gone not in api.cache.rows()
