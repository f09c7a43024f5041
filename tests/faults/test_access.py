"""No one gets in who should not (issue 6, item 7), on the real daemon.

* noauth2: every guarded route of router.ROUTES, walked from the table, is
  a 403 for every non-admin token (spoofed identity headers included) and
  a 401 without a token, and changes nothing: not the files, not the
  metadata, not the service's own record of runs.
* keystone: the same walk with tokens that a real keystonemiddleware
  validates over HTTP against a small Keystone stand-in (token bodies built
  by keystoneauth's own fixtures): a member is a 403, an expired or unknown
  token a 401 with ``WWW-Authenticate``, and an admin gets in.
* noauth2 refuses to listen beyond loopback, at start and on a SIGHUP
  reload, unless ``[api] allow_insecure_noauth = true``.
"""

import datetime
import http.server
import ipaddress
import json
import os
import signal
import socket
import threading

from keystoneauth1 import fixture as ksa_fixture
import pytest

from cache_maint.api.handlers import cache as cache_handlers
from cache_maint.api import router
from tests.faults import hostile
from tests.support import caches
from tests.support import env
from tests.support import processes
from tests.support import rawhttp
from tests.support import running
from tests.support import settings

#: The route table, walked: the paths and methods the API serves.
ROUTES = router.routes(cache_handlers.CacheHandlers)

KIB = caches.KIB

GUARDED = [(path, method) for path, methods in sorted(ROUTES.items())
           for method in sorted(methods) if not router.is_public(path)]
PUBLIC = [(path, method) for path, methods in sorted(ROUTES.items())
          for method in sorted(methods) if router.is_public(path)]


class Guarded:
    """A cache every guarded route would change, if it let the caller in."""

    def __init__(self, root):
        self.root = str(root)
        self.cache = caches.SqliteCache(os.path.join(self.root, 'cache'))
        self.images = [self.cache.add_image(size=KIB, last_accessed=100.0 + i)
                       for i in range(3)]
        self.cache.queue()
        self.cache.add_invalid()
        self.cache.add_incomplete(age=7 * 86400)
        self.fresh_id = caches.new_id()
        self.daemon = None

    def target(self, path, method):
        """The request-target of a route, its id filled in to do harm.

        PUT gets an id that is neither cached nor queued (queueing it
        would create a file); the others get a cached image's id.
        """
        image_id = self.fresh_id if method == 'PUT' else self.images[0]
        return path.replace('{image_id}', image_id).encode()

    def runs(self):
        reply = rawhttp.raw_request(self.daemon.port, 'GET',
                                    b'/v2/cache/runs', token=self.admin)
        assert reply.status == 200, reply
        return reply.json()['runs']

    def state(self):
        return hostile.snapshot(self.cache), self.runs()


def noauth2_site(root):
    site = Guarded(root)
    site.admin = b'admin'
    return site


@pytest.fixture(scope='module')
def noauth2(tmp_path_factory):
    site = noauth2_site(tmp_path_factory.mktemp('access-noauth2'))
    with running.daemon(site.root, site.cache.path,
                        image_cache_max_size=1,
                        image_cache_stall_time=60) as daemon:
        site.daemon = daemon
        yield site


SPOOFED = [(b'X-Roles', b'admin'), (b'X-Identity-Status', b'Confirmed'),
           (b'X-User-Id', b'admin'), (b'X-Project-Id', b'admin'),
           (b'X-Service-Roles', b'admin'), (b'X-System-Scope', b'all'),
           (b'X-Is-Admin-Project', b'True')]

NON_ADMINS = {
    'member': (b'alice', []),
    'upper-case admin': (b'ADMIN', []),
    'admin prefix': (b'administrator', []),
    'admin list': (b'admin,admin', []),
    'member claiming admin headers': (b'alice', SPOOFED),
}


@pytest.mark.parametrize('who', sorted(NON_ADMINS))
@pytest.mark.parametrize('path, method', GUARDED,
                         ids=['%s %s' % (m, p) for p, m in GUARDED])
def test_noauth2_non_admin_is_403_and_changes_nothing(noauth2, path, method,
                                                      who):
    token, headers = NON_ADMINS[who]
    before = noauth2.state()

    reply = rawhttp.raw_request(noauth2.daemon.port, method,
                                noauth2.target(path, method), token=token,
                                headers=headers)

    message = hostile.assert_clean_error(reply, 403, noauth2.root)
    assert 'not authorized' in message
    assert noauth2.state() == before


@pytest.mark.parametrize('token', [None, b''], ids=['absent', 'empty'])
@pytest.mark.parametrize('path, method', GUARDED,
                         ids=['%s %s' % (m, p) for p, m in GUARDED])
def test_noauth2_no_token_is_401_and_changes_nothing(noauth2, path, method,
                                                     token):
    before = noauth2.state()

    reply = rawhttp.raw_request(noauth2.daemon.port, method,
                                noauth2.target(path, method), token=token,
                                headers=SPOOFED)

    hostile.assert_clean_error(reply, 401, noauth2.root)
    assert noauth2.state() == before


@pytest.mark.parametrize('path, method', PUBLIC,
                         ids=['%s %s' % (m, p) for p, m in PUBLIC])
def test_public_routes_need_no_token_and_change_nothing(noauth2, path,
                                                        method):
    before = noauth2.state()
    reply = rawhttp.raw_request(noauth2.daemon.port, method, path.encode(),
                                token=None)
    assert reply.status in (200, 300), reply
    assert noauth2.state() == before


def test_the_walk_was_not_vacuous(noauth2):
    """The admin can do what every refused caller tried: it changes things.

    Run last in this module's order: it changes the cache.
    """
    assert {m for _p, m in GUARDED} == {'GET', 'PUT', 'DELETE', 'POST'}
    for path, method in [('/v2/cache/clean', 'POST'),
                         ('/v2/cache/prune', 'POST'),
                         ('/v2/cache/{image_id}', 'PUT')]:
        before = hostile.snapshot(noauth2.cache)
        reply = rawhttp.raw_request(noauth2.daemon.port, method,
                                    noauth2.target(path, method))
        assert reply.status in (200, 202), reply
        assert hostile.snapshot(noauth2.cache) != before, (method, path)


# keystone: real keystonemiddleware, a Keystone stand-in over HTTP.

SERVICE_TOKEN = 'cache-maint-service-token'


class Keystone:
    """Enough of Keystone's v3 API for auth_token to validate tokens.

    ``GET /v3/auth/tokens`` answers the tokens it was given, with bodies
    built by keystoneauth1.fixture, and 404 for any other (as Keystone
    does for an unknown or revoked token); it insists on the service's
    own token, as Keystone does.
    """

    def __init__(self):
        self.tokens = {}
        self.validations = []
        keystone = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                keystone.answer(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        self.url = 'http://127.0.0.1:%d/v3' % self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def add(self, roles, expires=None):
        token_id = caches.new_id().replace('-', '')
        token = ksa_fixture.V3Token(
            user_id='u-' + token_id[:8], user_name='user-' + token_id[:8],
            project_id='p-demo', project_name='demo',
            user_domain_id='default', project_domain_id='default',
            expires=expires)
        for role in roles:
            token.add_role(name=role)
        self.tokens[token_id] = token
        return token_id.encode()

    def answer(self, handler):
        if handler.path.split('?')[0] != '/v3/auth/tokens':
            return self._send(handler, 404, {'error': {'code': 404}})
        if handler.headers.get('X-Auth-Token') != SERVICE_TOKEN:
            return self._send(handler, 401, {'error': {'code': 401}})
        subject = handler.headers.get('X-Subject-Token')
        self.validations.append(subject)
        token = self.tokens.get(subject)
        if token is None:
            return self._send(handler, 404, {'error': {
                'code': 404, 'title': 'Not Found',
                'message': 'Could not find token: %s' % subject}})
        self._send(handler, 200, token, {'X-Subject-Token': subject})

    @staticmethod
    def _send(handler, status, body, headers=None):
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header('Content-Type', 'application/json')
        handler.send_header('Content-Length', str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def keystone_sections(keystone):
    return {'keystone_authtoken': {
        'auth_type': 'admin_token', 'endpoint': keystone.url,
        'token': SERVICE_TOKEN, 'www_authenticate_uri': keystone.url,
        'http_request_max_retries': 0, 'http_connect_timeout': 5}}


@pytest.fixture(scope='module')
def keystone_site(tmp_path_factory):
    keystone = Keystone()
    site = Guarded(tmp_path_factory.mktemp('access-keystone'))
    past = datetime.datetime.now(datetime.timezone.utc) - \
        datetime.timedelta(minutes=5)
    site.admin = keystone.add(['admin', 'member', 'reader'])
    site.credentials = {
        'member': keystone.add(['member', 'reader']),
        'reader': keystone.add(['reader']),
        'expired admin': keystone.add(['admin', 'member'], expires=past),
        'unknown': b'0123456789abcdef0123456789abcdef',
        'absent': None,
    }
    daemon = running.Daemon(site.root, site.cache.path,
                            api={'auth_strategy': 'keystone'},
                            image_cache_max_size=1, cache_prune_interval=0,
                            cache_clean_interval=0)
    daemon.add_sections(keystone_sections(keystone))
    try:
        site.daemon = daemon.start()
        site.keystone = keystone
        yield site
    finally:
        daemon.stop()
        keystone.close()


KEYSTONE_REFUSALS = {'member': 403, 'reader': 403, 'expired admin': 401,
                     'unknown': 401, 'absent': 401}


@pytest.mark.parametrize('who', sorted(KEYSTONE_REFUSALS))
@pytest.mark.parametrize('path, method', GUARDED,
                         ids=['%s %s' % (m, p) for p, m in GUARDED])
def test_keystone_refuses_and_changes_nothing(keystone_site, path, method,
                                              who):
    site = keystone_site
    status = KEYSTONE_REFUSALS[who]
    before = site.state()

    reply = rawhttp.raw_request(site.daemon.port, method,
                                site.target(path, method),
                                token=site.credentials[who],
                                headers=SPOOFED)

    hostile.assert_clean_error(reply, status, site.root, SERVICE_TOKEN)
    if status == 401:
        assert reply.headers['www-authenticate'].startswith('Keystone uri=')
    assert site.state() == before


def test_keystone_validated_the_tokens_it_was_shown(keystone_site):
    """The admin gets in, so the refusals above were the middleware's."""
    site = keystone_site
    reply = rawhttp.raw_request(site.daemon.port, 'POST', b'/v2/cache/prune',
                                token=site.admin)
    assert reply.status == 200, (reply, site.daemon.diagnostics())
    assert reply.json()['total_files_pruned'] == len(site.images)
    validated = set(site.keystone.validations)
    for who in ('member', 'expired admin', 'unknown'):
        assert site.credentials[who].decode() in validated, who


# noauth2 beyond loopback.

def non_loopback_address():
    """An address of this machine that is not loopback, or fail/skip."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(('192.0.2.123', 9))     # TEST-NET-1: nothing sent
            address = probe.getsockname()[0]
    except OSError:
        address = None
    if address is None or ipaddress.ip_address(address).is_loopback:
        env.unavailable('this machine has no non-loopback IPv4 address')
    return address


def noauth2_config(tmp_path, bind_host, **api):
    cache = caches.SqliteCache(tmp_path / 'cache')
    cache.add_image()
    options = dict({'bind_host': bind_host,
                    'bind_port': processes.free_port(),
                    'auth_strategy': 'noauth2'}, **api)
    path = settings.write_config(tmp_path / 'cache-maint.conf', {
        'DEFAULT': {'image_cache_dir': cache.path,
                    'image_cache_driver': 'sqlite'},
        'api': options,
        'metrics': {'bind_port': processes.free_port()}})
    return cache, path, options['bind_port']


def refuses_connections(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize('where', ['0.0.0.0', '::', 'non-loopback address'])
def test_noauth2_refuses_to_start_beyond_loopback(tmp_path, where):
    host = non_loopback_address() if where == 'non-loopback address' \
        else where
    cache, config, port = noauth2_config(tmp_path, host)
    before = hostile.tree(tmp_path)

    result = processes.run_script('cache-maint', ['--config-file', config])

    assert result.returncode != 0
    assert 'allow_insecure_noauth' in result.stderr, result.stderr
    assert 'bind_host' in result.stderr
    assert 'Traceback' not in result.stderr
    assert hostile.tree(tmp_path) == before
    assert refuses_connections('127.0.0.1', port)


@pytest.mark.parametrize('where', ['0.0.0.0', 'non-loopback address'])
def test_allow_insecure_noauth_lets_it_listen_beyond_loopback(tmp_path,
                                                              where):
    address = non_loopback_address()
    host = address if where == 'non-loopback address' else where
    cache = caches.SqliteCache(tmp_path / 'cache')
    image = cache.add_image()
    daemon = DaemonAt(address, tmp_path, cache.path, api={
        'bind_host': host, 'allow_insecure_noauth': 'true'})
    try:
        daemon.start()
        reply = _request_at(address, daemon.port, b'/v2/cache')
        assert reply['cached_images'][0]['image_id'] == image
    finally:
        daemon.stop()


class DaemonAt(running.Daemon):
    """A Daemon reached at ``host`` rather than at 127.0.0.1."""

    def __init__(self, host, *args, **kwargs):
        self.host = host
        super().__init__(*args, **kwargs)

    def url(self, path):
        host = '[%s]' % self.host if ':' in self.host else self.host
        return 'http://%s:%d%s' % (host, self.port, path)


def _request_at(host, port, path):
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(b'GET %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: admin\r\n'
                     b'Connection: close\r\n\r\n' % path)
        data = b''.join(iter(lambda: sock.recv(65536), b''))
    reply = rawhttp.parse_reply(data)
    assert reply.status == 200, reply
    return reply.json()


@pytest.mark.parametrize('host', ['127.0.0.2', '::1'])
def test_noauth2_starts_on_any_loopback_address(tmp_path, host):
    """The refusal is about loopback, not about the default address."""
    cache = caches.SqliteCache(tmp_path / 'cache')
    daemon = DaemonAt(host, tmp_path, cache.path, api={'bind_host': host})
    try:
        daemon.start()
        assert _request_at(host, daemon.port, b'/v2/cache') == {
            'cached_images': [], 'queued_images': []}
    finally:
        daemon.stop()


def test_keystone_needs_no_flag_beyond_loopback(tmp_path):
    """Only noauth2 is held to loopback: keystone may listen anywhere."""
    cache = caches.SqliteCache(tmp_path / 'cache')
    daemon = running.Daemon(tmp_path, cache.path,
                            api={'bind_host': '0.0.0.0',
                                 'auth_strategy': 'keystone'})
    daemon.add_sections({'keystone_authtoken': {
        'auth_type': 'admin_token', 'endpoint': 'http://127.0.0.1:9/v3',
        'token': SERVICE_TOKEN,
        'www_authenticate_uri': 'http://127.0.0.1:9/v3'}})
    try:
        daemon.start()
        reply = rawhttp.raw_request(daemon.port, 'GET', b'/v2/cache',
                                    token=None)
        hostile.assert_clean_error(reply, 401, tmp_path)
    finally:
        daemon.stop()


def test_a_reload_to_noauth2_beyond_loopback_is_refused(tmp_path):
    """SIGHUP with bind_host = 0.0.0.0: refused, still loopback only."""
    address = non_loopback_address()
    cache = caches.SqliteCache(tmp_path / 'cache')
    with running.daemon(tmp_path, cache.path) as daemon:
        daemon.configure(api={'bind_host': '0.0.0.0'},
                         cache_prune_interval=0, cache_clean_interval=0)
        daemon.send_signal(signal.SIGHUP)
        processes.wait_for(
            lambda: 'Refusing the changed configuration' in daemon.log(),
            'the master to refuse noauth2 beyond loopback',
            diagnostics=daemon.diagnostics)
        daemon.wait_ready()
        assert 'allow_insecure_noauth' in daemon.log()
        assert refuses_connections(address, daemon.port)
        assert daemon.process.poll() is None
