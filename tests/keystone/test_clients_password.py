"""The real clients with password authentication through a real Keystone.

python-glanceclient 4.13, the openstack CLI (python-openstackclient 10.5
with cache-maint's plugin) and openstacksdk 4.22 each get a token from
Keystone 30 with a user's password, and reach a node's cache-maint
(``[api] auth_strategy = keystone``) at the endpoint given to them, as
``doc/source/admin/clients.rst`` tells operators: glanceclient with
``--os-image-url``, the openstack CLI with ``OS_IMAGE_ENDPOINT_OVERRIDE``
(OSC has no ``--os-image-endpoint-override`` option), openstacksdk with
``image_endpoint_override``. Keystone's catalog has no image endpoint: the
node's is only ever given directly. The override may be the node's ``/v2``
or its root, from whose version list keystoneauth discovers ``/v2/``.

As the admin, each client lists the cache, queues an image, cleans, prunes
(the cache ends under its limit) and clears the queue; as a member, its
prune is refused. Each test checks what the client printed or returned, the
cache on disk, the service's record of its runs, and the daemon's log:
every request the client made authenticated as its user, none 401 or 503.

The clients come from the ``clients`` tox environment's pins (``tox -e
clients``); where they are missing the module is skipped on a developer's
machine and fails in CI.
"""

import datetime
import importlib.util
import json
import os
import re
import sys

import pytest

from tests import clients
from tests.support import caches
from tests.support import env
from tests.support import running

# The SDK's own notices of its coming changes.
pytestmark = pytest.mark.filterwarnings(
    'ignore::PendingDeprecationWarning:openstack')

#: The modules and console scripts of the clients driven here.
MODULES = ('glanceclient', 'openstack', 'openstackclient')
SCRIPTS = ('glance', 'openstack')

#: The image each admin queues (cache-maint takes any well-formed id).
QUEUED = '721c4bad-5f48-4b16-b757-6e0721f070da'

#: What the admin's clean and prune remove from ``filled``: the failed
#: and the stalled download; the two least recently used of three 6 KiB
#: images, 18 KiB over a 10 KiB limit.
CLEANED = {'total_files_cleaned': 2, 'total_bytes_cleaned': 2048}
PRUNED = {'total_files_pruned': 2, 'total_bytes_pruned': 12288}

#: One line of the daemon's request log: the request's context (user and
#: project ids, ``-`` before authentication), method, path and status.
REQUEST = re.compile(
    r' cache_maint\.api\.middleware\.requestlog \[[^\]]*?req-[0-9a-f-]+ '
    r'(?P<user>\S+) (?P<project>\S+) [^\]]*\] \S+ '
    r'"(?P<method>[A-Z]+) (?P<path>\S+)" status: (?P<status>\S+) ')

#: A line of oslo.log's at error or above: date, time, pid, level.
ERROR = re.compile(r'^\S+ \S+ \d+ (ERROR|CRITICAL) ', re.MULTILINE)


def _missing():
    scripts = os.path.dirname(sys.executable)
    return ([module for module in MODULES
             if importlib.util.find_spec(module) is None]
            + ['the %s console script' % name for name in SCRIPTS
               if not os.access(os.path.join(scripts, name), os.X_OK)])


@pytest.fixture(scope='session', autouse=True)
def clients_installed():
    """Before Keystone starts: skip, or fail in CI, without the clients."""
    missing = _missing()
    if missing:
        env.unavailable('the password-authentication client tests need %s: '
                        'run them where "tox -e clients" installs them'
                        % ', '.join(missing))


@pytest.fixture(scope='module')
def users(keystone):
    """{'admin'|'member': (user id, project id)}, as the log shows them."""
    found = {}
    for role, credentials in (('admin', keystone.admin),
                              ('member', keystone.member)):
        session = keystone.session(credentials)
        found[role] = (session.get_user_id(), session.get_project_id())
    return found


@pytest.fixture(scope='module')
def home(tmp_path_factory):
    """A HOME of the module's own, for what the clients cache there."""
    return tmp_path_factory.mktemp('home')


@pytest.fixture
def filled(tmp_path):
    """A sqlite cache with one of everything, over its limit."""
    return clients.fill(caches.SqliteCache(tmp_path / 'cache'))


@pytest.fixture
def daemon(tmp_path, keystone, filled):
    """The node's cache-maint on ``filled``, validating with Keystone."""
    with running.daemon(
            tmp_path, filled.cache.path, api={'auth_strategy': 'keystone'},
            image_cache_max_size=clients.MAX_SIZE,
            sections={'keystone_authtoken':
                      keystone.authtoken_section()}) as started:
        yield started


def admin_round(filled):
    """The State after each of the admin's steps, from ``filled.before``.

    Queue ``QUEUED``, clean, prune, clear the queue.
    """
    queued = filled.before.but(queue=filled.before.queue | {QUEUED})
    cleaned = queued.but(invalid=(), incomplete=[filled.fresh])
    pruned = cleaned.but(images=filled.cached[2:], rows=filled.cached[2:])
    return queued, cleaned, pruned, pruned.but(queue=())


def check_pruned(filled, expected):
    filled.check(expected)
    assert filled.cache.size() <= clients.MAX_SIZE


def results(daemon, keystone):
    """The service's record of its runs: [(task, result)], oldest first."""
    response = daemon.request('GET', '/v2/cache/runs',
                              token=keystone.token(keystone.admin))
    assert response.status_code == 200, response.text
    return [(run['task'], run['result'])
            for run in sorted(response.json()['runs'],
                              key=lambda run: run['id'])]


def logged(daemon):
    """The requests of the daemon's log: dicts of REQUEST's groups."""
    return [match.groupdict() for match in REQUEST.finditer(daemon.log())]


def authenticated(daemon, user):
    """The (method, path, status) of each request ``user`` made.

    Fails if a request was a 401 or a 503, if one was made as anyone but
    ``user`` (a (user id, project id) pair), or if the log has an error.
    Requests that need no token (version discovery) are left out.
    """
    log = daemon.log()
    requests = logged(daemon)
    assert requests, daemon.diagnostics()
    refused = [request for request in requests
               if request['status'] in ('401', '503')]
    assert refused == [], daemon.diagnostics()
    assert ERROR.findall(log) == [] and 'Traceback' not in log, (
        daemon.diagnostics())
    made = [request for request in requests if request['user'] != '-']
    assert {(request['user'], request['project'])
            for request in made} <= {user}
    return [(request['method'], request['path'], int(request['status']))
            for request in made]


def discovery(daemon):
    """The (method, path, status) of each request made without a token.

    The harness's own readiness probe (GET /versions) is left out.
    """
    return [(request['method'], request['path'], int(request['status']))
            for request in logged(daemon)
            if request['user'] == '-' and request['path'] != '/versions']


#: The last request of each admin test: its own read of the runs.
RUNS = ('GET', '/v2/cache/runs', 200)


def utc(timestamp):
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).replace(tzinfo=None).isoformat()


# -- python-glanceclient ------------------------------------------------


@pytest.fixture
def glance(daemon, keystone, home):
    """glance(credentials, *args): ``--os-image-url`` and OS_* variables."""
    def glance(credentials, *args):
        return clients.run('glance', ['--os-image-url', daemon.url(''),
                                      '--os-image-api-version', '2']
                           + list(args), home, keystone.env(credentials))
    return glance


def glance_succeeded(result, stdout=''):
    assert (result.returncode, result.stderr, result.stdout) == (
        0, '', stdout), result


def glance_table(stdout):
    """A glanceclient table: (header, {first column: the other cells})."""
    rows = [[cell.strip() for cell in line.split('|')[1:-1]]
            for line in stdout.splitlines() if line.startswith('|')]
    return rows[0], {row[0]: row[1:] for row in rows[1:]}


def test_glanceclient_as_admin(glance, keystone, filled, daemon, users):
    queued, cleaned, pruned, cleared = admin_round(filled)

    listed = glance(keystone.admin, 'cache-list')
    assert (listed.returncode, listed.stderr) == (0, ''), listed
    rows = {image_id: ['cached', utc(1.7e9 + i), utc(1.7e9 + i),
                       str(6 * caches.KIB), str(i)]
            for i, image_id in enumerate(filled.cached)}
    rows[filled.queued] = ['queued'] + ['N/A'] * 4
    assert glance_table(listed.stdout) == (
        ['ID', 'State', 'Last Accessed (UTC)', 'Last Modified (UTC)',
         'Size', 'Hits'], rows)
    filled.check(filled.before)

    glance_succeeded(glance(keystone.admin, 'cache-queue', QUEUED))
    filled.check(queued)
    glance_succeeded(glance(keystone.admin, 'cache-clean'))   # no counts
    filled.check(cleaned)
    glance_succeeded(glance(keystone.admin, 'cache-prune'),
                     'Pruned 2 file(s), 12288 byte(s).\n')
    check_pruned(filled, pruned)
    glance_succeeded(glance(keystone.admin, 'cache-clear', '--target',
                            'queue'))
    filled.check(cleared)

    assert results(daemon, keystone) == [('clean', CLEANED),
                                         ('prune', PRUNED)]
    assert authenticated(daemon, users['admin']) == [
        ('GET', '/v2/cache', 200),
        ('PUT', '/v2/cache/%s' % QUEUED, 202),
        ('POST', '/v2/cache/clean', 200),
        ('POST', '/v2/cache/prune', 200),
        ('DELETE', '/v2/cache', 204),
        RUNS]


def test_glanceclient_member_prune_is_refused(glance, keystone, filled,
                                              daemon, users):
    # glanceclient prints the refusal on standard error and exits 0.
    result = glance(keystone.member, 'cache-prune')
    assert (result.returncode, result.stdout, result.stderr) == (
        0, '', 'You are not permitted to prune the image cache.\n')
    filled.check(filled.before)
    assert authenticated(daemon, users['member']) == [
        ('POST', '/v2/cache/prune', 403)]


# -- the openstack CLI ----------------------------------------------------


@pytest.fixture
def osc(daemon, keystone, home):
    """osc(credentials, *args, endpoint='/v2'): the openstack CLI.

    Its environment: the OS_* variables of ``credentials`` and
    ``OS_IMAGE_ENDPOINT_OVERRIDE``, the node's URL of ``endpoint``.
    """
    def osc(credentials, *args, endpoint='/v2'):
        environment = dict(keystone.env(credentials),
                           OS_IMAGE_ENDPOINT_OVERRIDE=daemon.url(endpoint))
        return clients.run('openstack', args, home, environment)
    return osc


def osc_succeeded(result):
    assert (result.returncode, result.stderr) == (0, ''), result
    return result.stdout


def cliff_table(stdout):
    """The rows of a cliff table, as lists of cells."""
    return [[cell.strip() for cell in line.split('|')[1:-1]]
            for line in stdout.splitlines() if line.startswith('|')]


def osc_listing(filled):
    """``cached image list -f json`` of ``filled``, as {ID: row}."""
    rows = {image_id: {'ID': image_id, 'State': 'cached',
                       'Last Accessed (UTC)': utc(1.7e9 + i),
                       'Last Modified (UTC)': utc(1.7e9 + i),
                       'Size': 6 * caches.KIB, 'Hits': i}
            for i, image_id in enumerate(filled.cached)}
    rows[filled.queued] = {'ID': filled.queued, 'State': 'queued',
                           'Last Accessed (UTC)': 'N/A',
                           'Last Modified (UTC)': 'N/A', 'Size': 'N/A',
                           'Hits': 'N/A'}
    return rows


def test_openstack_cli_as_admin(osc, keystone, filled, daemon, users):
    queued, cleaned, pruned, cleared = admin_round(filled)
    admin = keystone.admin

    listed = json.loads(osc_succeeded(osc(admin, 'cached', 'image', 'list',
                                          '-f', 'json')))
    assert {row['ID']: row for row in listed} == osc_listing(filled)
    assert len(listed) == 4
    filled.check(filled.before)

    assert osc_succeeded(osc(admin, 'cached', 'image', 'queue',
                             QUEUED)) == ''
    filled.check(queued)
    assert cliff_table(osc_succeeded(osc(admin, 'cache', 'clean'))) == [
        ['Field', 'Value'], ['total_files_cleaned', '2'],
        ['total_bytes_cleaned', '2048']]
    filled.check(cleaned)
    shown = osc_succeeded(osc(admin, 'cache', 'prune', '-f', 'json'))
    assert json.loads(shown) == PRUNED
    assert list(json.loads(shown)) == list(PRUNED)     # files, then bytes
    check_pruned(filled, pruned)
    assert osc_succeeded(osc(admin, 'cached', 'image', 'clear',
                             '--queue')) == ''
    filled.check(cleared)

    assert results(daemon, keystone) == [('clean', CLEANED),
                                         ('prune', PRUNED)]
    assert authenticated(daemon, users['admin']) == [
        ('GET', '/v2/cache', 200),
        # OSC looks the image up first; cache-maint answers for any id.
        ('GET', '/v2/images/%s' % QUEUED, 200),
        ('PUT', '/v2/cache/%s' % QUEUED, 202),
        ('POST', '/v2/cache/clean', 200),
        ('POST', '/v2/cache/prune', 200),
        ('DELETE', '/v2/cache', 204),
        RUNS]


def test_openstack_cli_member_prune_is_refused(osc, keystone, filled,
                                               daemon, users):
    result = osc(keystone.member, 'cache', 'prune')
    assert (result.returncode, result.stdout, result.stderr) == (
        1, '', 'ForbiddenException: 403: Client Error for url: '
        '%s, You are not authorized to complete cache_prune action.\n'
        % daemon.url('/v2/cache/prune'))
    filled.check(filled.before)
    assert authenticated(daemon, users['member']) == [
        ('POST', '/v2/cache/prune', 403)]


def test_openstack_cli_discovers_v2_under_the_unversioned_endpoint(
        osc, keystone, filled, daemon, users):
    """The override may be the node's root: discovery finds /v2/."""
    listed = json.loads(osc_succeeded(osc(keystone.admin, 'cached', 'image',
                                          'list', '-f', 'json',
                                          endpoint='')))
    assert {row['ID']: row for row in listed} == osc_listing(filled)
    assert authenticated(daemon, users['admin']) == [
        ('GET', '/v2/cache', 200)]
    # keystoneauth's discovery: the root's version list, then /v2/.
    assert discovery(daemon) == [('GET', '/', 300), ('GET', '/v2/', 200)]


# -- openstacksdk -------------------------------------------------------


@pytest.fixture
def connect(daemon, keystone):
    """connect(credentials, endpoint='/v2'): a password Connection.

    Its image endpoint is the node's URL of ``endpoint``.
    """
    import openstack

    def connect(credentials, endpoint='/v2'):
        return openstack.connect(
            auth_url=keystone.auth_url,
            username=credentials.username,
            password=credentials.password,
            project_name=credentials.project_name,
            user_domain_name=credentials.user_domain_name,
            project_domain_name=credentials.project_domain_name,
            image_endpoint_override=daemon.url(endpoint),
            # This process's own OS_* variables and clouds.yaml stay out.
            load_yaml_config=False, load_envvars=False)
    return connect


def sdk_cache(image):
    """get_image_cache(): ({id: (size, hits, accessed, modified)}, queue)."""
    cache = image.get_image_cache()
    return ({cached.image_id: (cached.size, cached.hits,
                               cached.last_accessed, cached.last_modified)
             for cached in cache.cached_images}, cache.queued_images)


def sdk_listing(filled):
    return ({image_id: (6 * caches.KIB, i, 1.7e9 + i, 1.7e9 + i)
             for i, image_id in enumerate(filled.cached)}, [filled.queued])


def test_openstacksdk_as_admin(connect, keystone, filled, daemon, users):
    queued, cleaned, pruned, cleared = admin_round(filled)
    image = connect(keystone.admin).image

    assert sdk_cache(image) == sdk_listing(filled)
    filled.check(filled.before)

    assert image.queue_image(QUEUED) is None
    filled.check(queued)
    assert image.clean_cache() is None      # the SDK drops the counts
    filled.check(cleaned)
    assert image.prune_cache() == PRUNED
    check_pruned(filled, pruned)
    assert image.clear_cache('queue') is None
    filled.check(cleared)

    assert results(daemon, keystone) == [('clean', CLEANED),
                                         ('prune', PRUNED)]
    assert authenticated(daemon, users['admin']) == [
        ('GET', '/v2/cache', 200),
        ('PUT', '/v2/cache/%s' % QUEUED, 202),
        ('POST', '/v2/cache/clean', 200),
        ('POST', '/v2/cache/prune', 200),
        ('DELETE', '/v2/cache', 204),
        RUNS]


def test_openstacksdk_member_prune_is_refused(connect, keystone, filled,
                                              daemon, users):
    from openstack import exceptions

    with pytest.raises(exceptions.ForbiddenException) as refused:
        connect(keystone.member).image.prune_cache()
    assert str(refused.value) == (
        'ForbiddenException: 403: Client Error for url: %s, You are not '
        'authorized to complete cache_prune action.'
        % daemon.url('/v2/cache/prune'))
    filled.check(filled.before)
    assert authenticated(daemon, users['member']) == [
        ('POST', '/v2/cache/prune', 403)]


def test_openstacksdk_discovers_v2_under_the_unversioned_endpoint(
        connect, keystone, filled, daemon, users):
    """The override may be the node's root: discovery finds /v2/."""
    image = connect(keystone.admin, endpoint='').image
    assert image.get_endpoint() == daemon.url('/v2/')
    assert sdk_cache(image) == sdk_listing(filled)
    assert authenticated(daemon, users['admin']) == [
        ('GET', '/v2/cache', 200)]
    assert discovery(daemon) == [('GET', '/', 300), ('GET', '/v2/', 200)]
