"""``/healthcheck`` tells the truth (issue 11, item 9).

It said 200 while every run failed. Against the real ``cache-maint``: the
cache directory removed, the database cut (centralized_db on PostgreSQL,
through a TCP link the test cuts) and a failing run each make it a 503
that names the failed check; mended, it is 200 again. What failed and why
(paths, errors) is shown to loopback clients and admins only: a client
reaching the service on another address, without an admin's token, sees
which check failed and nothing more.
"""

import os
import shutil

import pytest
import requests

from tests.faults import test_access
from tests.support import caches
from tests.support import processes
from tests.support import running


def health(daemon, host='127.0.0.1', token=None):
    headers = {'Accept': 'application/json'}
    if token:
        headers['X-Auth-Token'] = token
    return requests.get('http://%s:%d/healthcheck' % (host, daemon.port),
                        headers=headers, timeout=processes.DEADLINE)


def reasons(response):
    return [r['reason'] if isinstance(r, dict) else r
            for r in response.json()['reasons']]


def test_a_removed_cache_directory_fails_it_until_it_is_back(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    cache.add_image()
    with running.daemon(tmp_path, cache.path) as daemon:
        assert health(daemon).status_code == 200
        os.rename(cache.path, cache.path + '.away')
        try:
            response = health(daemon)
            assert response.status_code == 503, response.text
            assert 'image cache directory not usable' in reasons(response)
            # From loopback, the details say what and where.
            assert cache.path in response.text
        finally:
            os.rename(cache.path + '.away', cache.path)
        assert health(daemon).status_code == 200


def test_a_failing_run_fails_it_until_a_run_succeeds(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    cache.add_image()
    with running.daemon(tmp_path, cache.path,
                        image_cache_max_size=0) as daemon:
        with open(cache.db_path, 'wb') as f:
            f.write(b'not a database' * 100)
        assert daemon.request('POST', '/v2/cache/prune',
                              token='admin').status_code == 503
        response = health(daemon)
        assert response.status_code == 503, response.text
        assert 'last maintenance run failed' in reasons(response)
        os.unlink(cache.db_path)
        caches.SqliteCache(cache.path)    # Glance's empty database again
        assert daemon.request('POST', '/v2/cache/prune',
                              token='admin').status_code == 200
        assert health(daemon).status_code == 200


def test_a_database_outage_fails_it(make_cache, daemons, links):
    cache = make_cache('postgresql')
    cache.add_image()
    link = links(cache.url)
    daemon = daemons(cache, connection=link.url(cache.url),
                     cache_prune_interval=0, cache_clean_interval=0).start()
    assert health(daemon).status_code == 200
    link.cut()
    response = health(daemon)
    assert response.status_code == 503, response.text
    assert 'image cache metadata store not reachable' in reasons(response)
    assert 'password' not in response.text.lower()
    link.restore()
    processes.wait_for(lambda: health(daemon).status_code == 200,
                       'the health check to pass again')


@pytest.fixture
def remote_daemon(tmp_path):
    """A daemon on every address, reached on a non-loopback one."""
    address = test_access.non_loopback_address()
    cache = caches.SqliteCache(tmp_path / 'cache')
    daemon = running.Daemon(tmp_path, cache.path, cache_prune_interval=0,
                            cache_clean_interval=0,
                            api={'bind_host': '0.0.0.0',
                                 'allow_insecure_noauth': 'true'})
    # Behind a proxy that forwards what clients claim.
    daemon.add_sections({'oslo_middleware': {
        'enable_proxy_headers_parsing': 'true'}})
    daemon.start()
    try:
        yield daemon, address, cache
    finally:
        daemon.stop()


def _remove(path):
    """Remove a cache directory from under a running service.

    The service may be writing its state in it (its first runs' records)
    the moment it goes: what it wrote meanwhile is removed again.
    """
    processes.wait_for(lambda: shutil.rmtree(path, ignore_errors=True)
                       or not os.path.lexists(path),
                       'the cache directory to be removed')


def test_details_only_for_loopback_and_admins(remote_daemon):
    daemon, address, cache = remote_daemon
    _remove(cache.path)
    terse = health(daemon, host=address)
    assert terse.status_code == 503
    assert terse.json()['detailed'] is False
    assert 'image cache directory not usable' in reasons(terse)
    assert cache.path not in terse.text
    member = health(daemon, host=address, token='member')
    assert member.status_code == 503
    assert cache.path not in member.text
    for detailed in (health(daemon, host=address, token='admin'),
                     health(daemon)):
        assert detailed.status_code == 503
        assert detailed.json()['detailed'] is True
        assert cache.path in detailed.text
    # Claiming to come from loopback through a proxy header is no use.
    claimed = requests.get('http://%s:%d/healthcheck' % (address, daemon.port),
                           headers={'Accept': 'application/json',
                                    'Forwarded': 'for=127.0.0.1',
                                    'X-Forwarded-For': '127.0.0.1'},
                           timeout=processes.DEADLINE)
    assert claimed.json()['detailed'] is False
    assert cache.path not in claimed.text
    # A bad token is refused as anywhere else, not taken for none.
    assert health(daemon, host=address,
                  token='ad\xe9min').status_code == 401


def test_head_and_plain_text_answers(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    with running.daemon(tmp_path, cache.path) as daemon:
        assert requests.head(daemon.url('/healthcheck'),
                             timeout=processes.DEADLINE).status_code in (
            200, 204)
        os.rename(cache.path, cache.path + '.away')
        try:
            plain = requests.get(daemon.url('/healthcheck'),
                                 timeout=processes.DEADLINE)
            assert plain.status_code == 503
            assert 'image cache directory not usable' in plain.text
            assert requests.head(daemon.url('/healthcheck'),
                                 timeout=processes.DEADLINE).status_code == 503
        finally:
            os.rename(cache.path + '.away', cache.path)
