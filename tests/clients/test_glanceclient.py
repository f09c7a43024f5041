"""python-glanceclient 4.13's cache commands, as an operator types them.

glanceclient exits 0 on most errors and prints them on standard error, so
every test checks both, and the cache on disk.
"""

import datetime

import pytest

from tests import clients
from tests.support import caches

UNKNOWN = '0b9ab4e6-1d0d-4a7c-9d47-3a39d47a5c1f'


@pytest.fixture(scope='module')
def glance(endpoint, home):
    """glance(token, *args): the glance CLI pointed at the service."""
    def glance(token, *args, api_version=True, home=home):
        options = ['--os-image-url', endpoint, '--os-auth-token', token]
        if api_version:
            options += ['--os-image-api-version', '2']
        return clients.run('glance', options + list(args), home)
    return glance


def succeeded(result, stdout=''):
    assert (result.returncode, result.stderr, result.stdout) == (
        0, '', stdout), result


def table(stdout):
    """The rows of a glanceclient table, as {first column: row}."""
    lines = [line.split('|')[1:-1] for line in stdout.splitlines()
             if line.startswith('|')]
    rows = [[cell.strip() for cell in line] for line in lines]
    return {row[0]: row[1:] for row in rows[1:]}


def utc(timestamp):
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).replace(tzinfo=None).isoformat()


def expected_table(filled):
    rows = {image_id: ['cached', utc(1.7e9 + i), utc(1.7e9 + i),
                       str(6 * clients.KIB), str(i)]
            for i, image_id in enumerate(filled.cached)}
    rows[filled.queued] = ['queued'] + ['N/A'] * 4
    return rows


def test_cache_list(glance, filled):
    result = glance('admin', 'cache-list')
    assert (result.returncode, result.stderr) == (0, ''), result
    assert table(result.stdout) == expected_table(filled)
    filled.check(filled.before)


def test_without_api_version_it_stays_on_v2(glance, filled, tmp_path):
    # The form of doc/source/admin/clients.rst: glanceclient first downloads
    # (and caches in ~/.glanceclient) the schemas; the one served keeps it
    # on v2.
    result = glance('admin', 'cache-list', api_version=False,
                    home=tmp_path)
    assert (result.returncode, result.stderr) == (0, ''), result
    assert table(result.stdout) == expected_table(filled)
    assert (tmp_path / '.glanceclient' / 'resource_type_schema.json').exists()
    succeeded(glance('admin', 'cache-prune', api_version=False,
                     home=tmp_path),
              'Pruned 2 file(s), 12288 byte(s).\n')
    filled.check(filled.after('prune'))


def test_cache_queue(glance, cache):
    images = [caches.new_id(), caches.new_id()]
    succeeded(glance('admin', 'cache-queue', *images))
    assert clients.state(cache) == clients.State(queue=images)


def test_cache_delete(glance, filled):
    succeeded(glance('admin', 'cache-delete', filled.cached[0],
                     filled.queued))
    filled.check(filled.after('delete'))


def test_cache_delete_of_an_image_neither_cached_nor_queued(glance, filled):
    result = glance('admin', 'cache-delete', UNKNOWN)
    assert result.returncode == 0 and result.stdout == ''
    assert result.stderr == (
        "'HTTP The image is neither cached nor queued.': Unable to delete "
        "image '%s' from cache.\n" % UNKNOWN)
    filled.check(filled.before)


def test_cache_queue_of_a_malformed_id(glance, cache):
    result = glance('admin', 'cache-queue', 'not-an-image-id')
    assert result.returncode == 0 and result.stdout == ''
    assert 'Invalid image id' in result.stderr
    assert "Unable to queue image 'not-an-image-id'" in result.stderr
    assert clients.state(cache) == clients.State()


@pytest.mark.parametrize('args, after', [
    ([], 'clear'),
    (['--target', 'both'], 'clear'),
    (['--target', 'cache'], 'clear cache'),
    (['--target', 'queue'], 'clear queue')])
def test_cache_clear(glance, filled, args, after):
    succeeded(glance('admin', 'cache-clear', *args))
    filled.check(filled.after(after))


def test_cache_clean(glance, filled):
    succeeded(glance('admin', 'cache-clean'))
    filled.check(filled.after('clean'))


def test_cache_prune(glance, filled):
    succeeded(glance('admin', 'cache-prune'),
              'Pruned 2 file(s), 12288 byte(s).\n')
    filled.check(filled.after('prune'))


def test_cache_prune_with_nothing_to_do(glance, cache):
    succeeded(glance('admin', 'cache-prune'), 'Pruned 0 file(s), 0 byte(s).\n')


def test_cache_nodes_list_needs_centralized_db(glance, filled):
    result = glance('admin', 'cache-nodes-list', filled.cached[0])
    assert result.returncode == 0 and result.stdout == ''
    assert result.stderr == (
        "'HTTP Listing the nodes that cache an image needs the "
        "centralized_db cache driver.': Unable to list cached nodes for "
        "image '%s'.\n" % filled.cached[0])
    filled.check(filled.before)


@pytest.mark.parametrize('command, status, message', [
    ('cache-list', 1,
     'HTTP You are not authorized to complete cache_list action.'),
    ('cache-queue %s' % UNKNOWN, 0,
     "You are not permitted to queue the image '%s' for caching." % UNKNOWN),
    ('cache-delete {0.cached[0]}', 0,
     "You are not permitted to delete the image '{0.cached[0]}' from "
     "cache."),
    ('cache-clear', 0, 'You are not permitted to delete image(s) from '
     'cache.'),
    ('cache-clear --target cache', 0,
     'You are not permitted to delete image(s) from cache.'),
    ('cache-clear --target queue', 0,
     'You are not permitted to delete image(s) from cache.'),
    ('cache-clean', 0, 'You are not permitted to clean the image cache.'),
    ('cache-prune', 0, 'You are not permitted to prune the image cache.'),
    ('cache-nodes-list {0.cached[0]}', 0,
     "You are not permitted to list cached nodes for image "
     "'{0.cached[0]}'.")])
def test_non_admin_is_refused(glance, filled, command, status, message):
    result = glance('demo', *command.format(filled).split())
    assert (result.returncode, result.stdout, result.stderr) == (
        status, '', message.format(filled) + '\n')
    filled.check(filled.before)
