"""openstacksdk 4.22's image cache calls (``conn.image``)."""

import pytest

from tests import clients
from tests.support import caches

openstack = pytest.importorskip('openstack')
exceptions = pytest.importorskip('openstack.exceptions')

# The SDK's own notices of its coming changes.
pytestmark = pytest.mark.filterwarnings(
    'ignore::PendingDeprecationWarning:openstack')

UNKNOWN = '0b9ab4e6-1d0d-4a7c-9d47-3a39d47a5c1f'


@pytest.fixture(scope='module')
def connect(endpoint):
    """connect(token): a Connection; no token is auth_type none."""
    def connect(token=None):
        options = dict(load_yaml_config=False, load_envvars=False)
        if token is None:
            # The SDK then sends the token "notused": not an admin here.
            return openstack.connect(auth_type='none',
                                     auth={'endpoint': endpoint}, **options)
        # admin_token needs the versioned endpoint (clients.md pitfalls).
        return openstack.connect(
            auth_type='admin_token',
            auth={'endpoint': endpoint, 'token': token},
            image_endpoint_override=endpoint + '/v2', **options)
    return connect


@pytest.fixture(scope='module')
def admin(connect):
    return connect('admin').image


def test_discovery_with_auth_type_none(connect, endpoint):
    assert connect().image.get_endpoint() == endpoint + '/v2/'


def test_get_image_cache(admin, filled):
    cache = admin.get_image_cache()
    assert {image.image_id: (image.size, image.hits, image.last_accessed,
                             image.last_modified)
            for image in cache.cached_images} == {
        image_id: (6 * clients.KIB, i, 1.7e9 + i, 1.7e9 + i)
        for i, image_id in enumerate(filled.cached)}
    assert cache.queued_images == [filled.queued]
    filled.check(filled.before)


def test_queue_image(admin, cache):
    images = [caches.new_id(), caches.new_id()]
    for image_id in images:
        assert admin.queue_image(image_id) is None
    assert clients.state(cache) == clients.State(queue=images)


def test_cache_delete_image(admin, filled):
    admin.cache_delete_image(filled.cached[0], ignore_missing=False)
    admin.cache_delete_image(filled.queued, ignore_missing=False)
    filled.check(filled.after('delete'))


def test_cache_delete_image_missing(admin, filled):
    assert admin.cache_delete_image(UNKNOWN) is None
    with pytest.raises(exceptions.NotFoundException,
                       match='neither cached nor queued'):
        admin.cache_delete_image(UNKNOWN, ignore_missing=False)
    filled.check(filled.before)


@pytest.mark.parametrize('target, after', [
    ('both', 'clear'), ('cache', 'clear cache'), ('queue', 'clear queue')])
def test_clear_cache(admin, filled, target, after):
    assert admin.clear_cache(target) is None
    filled.check(filled.after(after))


def test_clear_cache_default_is_both(admin, filled):
    admin.clear_cache()
    filled.check(filled.after('clear'))


def test_clean_cache(admin, filled):
    assert admin.clean_cache() is None
    filled.check(filled.after('clean'))


def test_prune_cache(admin, filled):
    assert admin.prune_cache() == {'total_files_pruned': 2,
                                   'total_bytes_pruned': 12288}
    filled.check(filled.after('prune'))


def test_cached_image_nodes_needs_centralized_db(admin, filled):
    with pytest.raises(exceptions.ConflictException,
                       match='needs the centralized_db cache driver'):
        admin.cached_image_nodes(filled.cached[0])
    filled.check(filled.before)


def test_malformed_image_id(admin, cache):
    with pytest.raises(exceptions.BadRequestException,
                       match='Invalid image id'):
        admin.queue_image('not-an-image-id')
    assert clients.state(cache) == clients.State()


CALLS = {
    'get_image_cache': lambda image, f: image.get_image_cache(),
    'queue_image': lambda image, f: image.queue_image(UNKNOWN),
    'cache_delete_image': lambda image, f: image.cache_delete_image(
        f.cached[0], ignore_missing=False),
    'clear_cache both': lambda image, f: image.clear_cache('both'),
    'clear_cache cache': lambda image, f: image.clear_cache('cache'),
    'clear_cache queue': lambda image, f: image.clear_cache('queue'),
    'clean_cache': lambda image, f: image.clean_cache(),
    'prune_cache': lambda image, f: image.prune_cache(),
    'cached_image_nodes': lambda image, f: image.cached_image_nodes(
        f.cached[0]),
}


@pytest.mark.parametrize('call', sorted(CALLS))
@pytest.mark.parametrize('token', ['demo', None], ids=['demo', 'auth-none'])
def test_non_admin_is_refused(connect, filled, token, call):
    with pytest.raises(exceptions.ForbiddenException,
                       match='You are not authorized'):
        CALLS[call](connect(token).image, filled)
    filled.check(filled.before)
