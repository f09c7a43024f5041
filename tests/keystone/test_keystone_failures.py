"""The real cache-maint behind a real Keystone: answers, and failures.

Every token here is a real Keystone 30 token validated by the daemon's
keystonemiddleware over HTTP. With Keystone healthy: an admin is served, a
member refused (403), no token, a made-up token and a revoked token are
401, and a start logs no Keystone warning. Then each way of losing Keystone
an operator meets: the catalog without an identity endpoint for the
configured interface, a wrong ``auth_url`` (nothing listening; not
Keystone), refused service credentials, and Keystone down. Each must give
a JSON 503 and exactly one log line of warning or above, naming the
``[keystone_authtoken]`` setting to check, with no traceback and nothing
removed; the start and ``cache-maint-status upgrade check`` must say the
same before any request.
"""

import contextlib
import itertools
import json
import re
import subprocess

import pytest

from tests.support import caches
from tests.support import processes
from tests.support import running

#: A line of oslo.log's at warning or above: date, time, pid, level.
LOUD = re.compile(r'^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) ')

START_WARNING = 'Keystone cannot validate tokens now'


class Node:
    """A cache-maint with keystone auth, on a cache over its limit."""

    def __init__(self, tmp_path, keystone, **authtoken):
        self.cache = caches.SqliteCache(tmp_path / 'cache')
        self.images = {self.cache.add_image(size=4 * caches.KIB,
                                            last_accessed=1.7e9 + i)
                       for i in range(3)}
        self.daemon = running.Daemon(
            tmp_path, self.cache.path, api={'auth_strategy': 'keystone'},
            image_cache_max_size=4 * caches.KIB, cache_prune_interval=0,
            cache_clean_interval=0,
            sections={'keystone_authtoken':
                      keystone.authtoken_section(**authtoken)})
        self.keystone = keystone

    def start(self):
        self.daemon.start()
        return self

    def stop(self):
        self.daemon.stop()

    def log(self):
        with open(self.daemon.log_path, encoding='utf-8') as log:
            return log.read()

    def loud_lines(self, since=0):
        """The warning-or-above lines of the log after offset ``since``."""
        return [line for line in self.log()[since:].splitlines()
                if LOUD.search(line)]

    def prune(self, token):
        return self.daemon.request('POST', '/v2/cache/prune', token=token)

    def upgrade_check(self):
        """``cache-maint-status upgrade check``: (status, its table's text).

        The text is the table's cells run together, as the table wraps
        them over several lines.
        """
        check = subprocess.run(
            [processes.console_script('cache-maint-status'), '--config-file',
             self.daemon.config_path, 'upgrade', 'check'],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=processes.DEADLINE)
        cells = (line.strip('|+- ') for line in check.stdout.splitlines())
        return check.returncode, ' '.join(' '.join(cells).split())


@pytest.fixture
def node(tmp_path, keystone):
    """node(**authtoken): a started Node, stopped at the end."""
    numbers = itertools.count()
    with contextlib.ExitStack() as stack:
        def node(**authtoken):
            workdir = tmp_path / ('node-%d' % next(numbers))
            workdir.mkdir()
            started = Node(workdir, keystone, **authtoken).start()
            stack.callback(started.stop)
            return started
        yield node


def assert_json_503(response):
    assert response.status_code == 503
    assert response.headers['content-type'].startswith('application/json')
    error = response.json()['error']
    assert error['code'] == 503
    assert '[keystone_authtoken]' in error['message']


def assert_one_line_naming(node, since, *phrases):
    lines = node.loud_lines(since)
    assert len(lines) == 1, lines
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert 'Traceback' not in node.log()[since:]


# -- Keystone healthy ---------------------------------------------------


def test_each_caller_gets_its_answer(node, keystone):
    up = node()
    admin = keystone.token(keystone.admin)
    member = keystone.token(keystone.member)
    revoked = keystone.token(keystone.admin)
    keystone.session(keystone.admin).delete(
        keystone.auth_url + '/auth/tokens',
        headers={'X-Subject-Token': revoked})

    assert up.prune(member).status_code == 403
    assert up.daemon.request('GET', '/v2/cache',
                             token=member).status_code == 403
    for token in (None, 'not-a-keystone-token', revoked):
        response = up.prune(token)
        assert response.status_code == 401, token
        assert response.headers['www-authenticate'].startswith(
            'Keystone uri=')
    assert up.cache.images() == up.images

    response = up.prune(admin)
    assert response.status_code == 200
    assert response.json()['total_files_pruned'] == 2
    listing = up.daemon.request('GET', '/v2/cache', token=admin)
    assert listing.status_code == 200
    assert sum(image['size'] for image in
               listing.json()['cached_images']) <= 4 * caches.KIB
    assert START_WARNING not in up.log()


def test_upgrade_check_passes(node):
    up = node()
    status, text = up.upgrade_check()
    assert status == 0, text
    assert 'Keystone validates tokens' in text


# -- Keystone lost ------------------------------------------------------


@contextlib.contextmanager
def without_endpoint(keystone, interface):
    """The catalog without its identity endpoint for ``interface``."""
    removed = [endpoint for endpoint in keystone.endpoints()
               if endpoint['interface'] == interface]
    for endpoint in removed:
        keystone.delete_endpoint(endpoint['id'])
    try:
        yield
    finally:
        for endpoint in removed:
            keystone.create_endpoint('identity', interface, endpoint['url'])


@contextlib.contextmanager
def keystone_down(keystone):
    keystone.stop()
    try:
        yield
    finally:
        keystone.start()


CASES = {
    'no internal identity endpoint': dict(
        authtoken={}, lose=lambda ks: without_endpoint(ks, 'internal'),
        says=('[keystone_authtoken] interface = internal',
              'no identity endpoint')),
    'auth_url where nothing listens': dict(
        authtoken={'auth_url': 'http://127.0.0.1:%d/v3'
                   % processes.free_port()},
        says=('could not connect to Keystone at [keystone_authtoken] '
              'auth_url = http://127.0.0.1:',)),
    'auth_url that is not Keystone': dict(
        authtoken={'auth_url': '{keystone}/identity'},
        says=('[keystone_authtoken] auth_url = http://127.0.0.1:',
              "does not lead to Keystone's identity API")),
    'a wrong service password': dict(
        authtoken={'password': 'not-the-password'},
        says=('Keystone refused the service credentials of '
              '[keystone_authtoken] (username = cache-maint',)),
    'Keystone down': dict(
        authtoken={}, lose=keystone_down,
        says=('could not connect to Keystone at [keystone_authtoken] '
              'auth_url = http://127.0.0.1:',)),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_lost_keystone_is_a_503_and_one_line(node, keystone, case):
    spec = CASES[case]
    authtoken = {name: value.format(keystone=keystone.url)
                 for name, value in spec['authtoken'].items()}
    # Tokens are taken while Keystone can still give them.
    admin = keystone.token(keystone.admin)
    lose = spec.get('lose', lambda ks: contextlib.nullcontext())
    with lose(keystone):
        down = node(**authtoken)
        start_lines = down.loud_lines()
        assert len(start_lines) == 1, start_lines
        assert START_WARNING in start_lines[0]
        assert all(phrase in start_lines[0] for phrase in spec['says']), (
            start_lines)

        status, text = down.upgrade_check()
        assert status == 2, text
        assert all(phrase in text for phrase in spec['says']), text

        since = len(down.log())
        for token in (admin, 'not-a-keystone-token'):
            response = down.prune(token)
            assert_json_503(response)
            assert_one_line_naming(down, since, 'answered 503',
                                   *spec['says'])
            since = len(down.log())
        assert down.cache.images() == down.images
        # The service itself keeps running: discovery needs no token.
        assert down.daemon.request('GET', '/versions').status_code == 200


def test_a_mended_keystone_serves_again(node, keystone):
    """Keystone down, then back: the same process serves the admin."""
    admin = keystone.token(keystone.admin)
    with keystone_down(keystone):
        down = node()
        assert_json_503(down.prune(admin))
    response = down.prune(admin)
    assert response.status_code == 200, response.text
    assert json.loads(response.text)['total_files_pruned'] == 2


def test_a_service_user_without_the_service_role(node, keystone):
    """Keystone lets it validate only its own token: the probe says so.

    Under Keystone's default policy this is certain to fail, but a
    deployment's own policy may allow it: a warning in the upgrade check
    (status 1), not a failure.
    """
    roleless = keystone.add_user('cache-maint-member', role='member')
    down = node(**roleless.options())
    says = ("does not let the service user (username = cache-maint-member, "
            "user_domain_name = Default, project_name = service) validate "
            "other users' tokens")
    start_lines = down.loud_lines()
    assert len(start_lines) == 1 and says in start_lines[0], start_lines
    status, text = down.upgrade_check()
    assert status == 1, text
    assert says in text

    since = len(down.log())
    assert_json_503(down.prune(keystone.token(keystone.admin)))
    assert_one_line_naming(down, since, 'answered 503', says)
    assert down.cache.images() == down.images


def test_an_identity_endpoint_that_is_not_keystone(node, keystone):
    """The catalog's identity endpoint answers 200, but not as Keystone.

    Here it is the cache-maint node itself (its /v3 is a 404 page, its root
    a version document that is not Keystone's), as a wrong URL in the
    catalog, a load balancer's page or another service would be.
    """
    admin = keystone.token(keystone.admin)
    other = node()      # a healthy node, for its URL
    internal = [endpoint for endpoint in keystone.endpoints()
                if endpoint['interface'] == 'internal']
    with without_endpoint(keystone, 'internal'):
        keystone.create_endpoint('identity', 'internal',
                                 other.daemon.url('/v2'))
        try:
            down = node()
            start_lines = down.loud_lines()
            assert len(start_lines) == 1, start_lines
            assert ('the identity endpoint the catalog lists for '
                    '[keystone_authtoken] interface = internal, %s, does not '
                    "serve Keystone's v3 API" % other.daemon.url('/v2')
                    in start_lines[0]), start_lines
            since = len(down.log())
            assert_json_503(down.prune(admin))
            assert_one_line_naming(
                down, since, 'answered 503', '[keystone_authtoken] '
                'interface = internal')
        finally:
            for endpoint in keystone.endpoints():
                if endpoint['url'] == other.daemon.url('/v2'):
                    keystone.delete_endpoint(endpoint['id'])
    assert [e['url'] for e in keystone.endpoints()
            if e['interface'] == 'internal'] == [e['url'] for e in internal]
