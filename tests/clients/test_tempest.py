"""tempest 47's ImageCacheClient and VersionsClient, with a static auth.

tempest's RestClient is strict: exact success codes, no body on a 204, and
JSON or text error bodies. These replay tempest's own image caching test
(tempest/api/image/v2/admin/test_image_caching.py) without Keystone.
"""

import json
import types

import pytest

from tests import clients

lib_exc = pytest.importorskip('tempest.lib.exceptions')
cache_client = pytest.importorskip(
    'tempest.lib.services.image.v2.image_cache_client')
versions_client = pytest.importorskip(
    'tempest.lib.services.image.v2.versions_client')

UNKNOWN = '0b9ab4e6-1d0d-4a7c-9d47-3a39d47a5c1f'


class StaticAuthProvider:
    """What RestClient asks of an auth provider, for a fixed endpoint."""

    def __init__(self, endpoint, token):
        self.endpoint, self.token = endpoint, token
        self.credentials = types.SimpleNamespace(
            username=token, user_id=token, tenant_name=token,
            tenant_id=token, password=None)

    def base_url(self, filters, auth_data=None):
        return '%s/%s' % (self.endpoint, filters['api_version'])

    def auth_request(self, method, url, headers=None, body=None,
                     filters=None):
        headers = dict(headers or {}, **{'X-Auth-Token': self.token})
        return '%s/%s' % (self.base_url(filters), url), headers, body

    def get_token(self):
        return self.token


@pytest.fixture(scope='module')
def client(endpoint):
    """client(token): an ImageCacheClient for that token."""
    def client(token):
        return cache_client.ImageCacheClient(
            StaticAuthProvider(endpoint, token), 'image', 'RegionOne')
    return client


@pytest.fixture(scope='module')
def admin(client):
    return client('admin')


def post(client, path):
    """POST ``path`` as tempest would: exactly 200, a JSON body."""
    resp, body = client.post(path, None)
    client.expected_success(200, resp.status)
    return json.loads(body)


def test_list_versions(endpoint):
    versions = versions_client.VersionsClient(
        StaticAuthProvider(endpoint, 'admin'), 'image', 'RegionOne')
    body = versions.list_versions()     # exactly 300, at the root
    assert body.response.status == 300
    statuses = {v['id']: v['status'] for v in body['versions']}
    assert statuses['v2.18'] == 'CURRENT'
    for minor in (14, 15, 16, 17):
        assert statuses['v2.%d' % minor] == 'SUPPORTED'
    assert versions.has_version('2.14') and versions.has_version('2.18')


def test_list_cache(admin, filled):
    body = admin.list_cache()
    assert body.response.status == 200
    assert {image['image_id']: (image['size'], image['hits'],
                                image['last_accessed'],
                                image['last_modified'])
            for image in body['cached_images']} == {
        image_id: (6 * clients.KIB, i, 1.7e9 + i, 1.7e9 + i)
        for i, image_id in enumerate(filled.cached)}
    assert body['queued_images'] == [filled.queued]
    filled.check(filled.before)


def test_cache_queue(admin, cache):
    assert admin.cache_queue(UNKNOWN).response.status == 202
    assert clients.state(cache) == clients.State(queue=[UNKNOWN])


def test_cache_queue_of_a_malformed_id(admin, cache):
    # tempest's test expects 404 for "non-existing-image-id": Glance looks
    # the image up in its database first. cache-maint has no image
    # database; a malformed id is a 400 (design section 6).
    with pytest.raises(lib_exc.BadRequest, match='Invalid image id'):
        admin.cache_queue('non-existing-image-id')
    assert clients.state(cache) == clients.State()


def test_cache_delete(admin, filled):
    for image_id in (filled.cached[0], filled.queued):
        assert admin.cache_delete(image_id).response.status == 204
    filled.check(filled.after('delete'))
    with pytest.raises(lib_exc.NotFound):
        admin.cache_delete(filled.queued)


@pytest.mark.parametrize('target, after', [
    (None, 'clear'), ('', 'clear'), ('cache', 'clear cache'),
    ('queue', 'clear queue')])
def test_cache_clear(admin, filled, target, after):
    assert admin.cache_clear(target=target).response.status == 204
    filled.check(filled.after(after))


def test_cache_clear_of_an_invalid_target(admin, filled):
    with pytest.raises(lib_exc.BadRequest):
        admin.cache_clear(target='invalid')
    filled.check(filled.before)


def test_cache_clear_target_both(admin, filled):
    # Glance 33 answers 400 to "both", which its own docs list; the issue
    # that specified this API asks for it to mean both, as the docs say.
    assert admin.cache_clear(target='both').response.status == 204
    filled.check(filled.after('clear'))


def test_cache_clean(admin, filled):
    assert post(admin, 'cache/clean') == {'total_files_cleaned': 2,
                                          'total_bytes_cleaned': 2048}
    filled.check(filled.after('clean'))


def test_cache_prune(admin, filled):
    assert post(admin, 'cache/prune') == {'total_files_pruned': 2,
                                          'total_bytes_pruned': 12288}
    filled.check(filled.after('prune'))


def test_cache_nodes_need_centralized_db(admin, filled):
    with pytest.raises(lib_exc.Conflict):
        admin.get('cache/nodes/%s' % filled.cached[0])
    filled.check(filled.before)


CALLS = {
    'list_cache': lambda client, f: client.list_cache(),
    'cache_queue': lambda client, f: client.cache_queue(UNKNOWN),
    'cache_delete': lambda client, f: client.cache_delete(f.cached[0]),
    'cache_clear': lambda client, f: client.cache_clear(),
    'cache_clear cache': lambda client, f: client.cache_clear('cache'),
    'cache_clear queue': lambda client, f: client.cache_clear('queue'),
    'post cache/clean': lambda client, f: post(client, 'cache/clean'),
    'post cache/prune': lambda client, f: post(client, 'cache/prune'),
    'get cache/nodes': lambda client, f: client.get(
        'cache/nodes/%s' % f.cached[0]),
}


@pytest.mark.parametrize('call', sorted(CALLS))
def test_non_admin_is_refused(client, filled, call):
    with pytest.raises(lib_exc.Forbidden):
        CALLS[call](client('demo'), filled)
    filled.check(filled.before)


def test_no_token_is_unauthorized(client, filled):
    with pytest.raises(lib_exc.Unauthorized):
        client('').list_cache()
    filled.check(filled.before)
