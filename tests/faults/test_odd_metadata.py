"""Odd values in the metadata, and clocks that were wrong (issue 11, 12-13).

What Glance never writes can still be in a cache: a hand-edited cache.db,
an old bug, a clock that was ahead and was put right. Against the real
``cache-maint`` and ``cache-maint-manage``:

* files without a record whose mtime lies in the future are evicted like
  any untracked file, so prune ends under its limit; stale records whose
  ``last_modified`` is in the future or NULL are deleted by clean, and so is
  a stalled download whose mtime is in the future;
* NULL, text, a blob, 1e300 or an infinity in cache.db (and MariaDB's zero
  date, a negative size) leave every listing answering, in strict JSON,
  with the odd record reported once in the log.
"""

import json
import os
import sqlite3
import time

import pytest
import sqlalchemy as sa

from tests.support import caches
from tests.support import plans
from tests.support import running

KIB = caches.KIB
DAY = 86400


def strict_json(text):
    """json.loads that refuses Infinity and NaN, as strict parsers do."""
    def refuse(name):
        raise ValueError('not JSON: %s' % name)
    return json.loads(text, parse_constant=refuse)


def test_untracked_files_from_the_future_are_evicted(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    tracked = [cache.add_image(last_accessed=time.time() - 100 + i)
               for i in range(4)]
    future = []
    for _ in range(4):
        image_id = caches.new_id()
        path = os.path.join(cache.path, image_id)
        with open(path, 'wb') as f:
            f.write(b'x' * KIB)
        ahead = time.time() + DAY
        os.utime(path, (ahead, ahead))
        future.append(image_id)
    with running.daemon(tmp_path, cache.path,
                        image_cache_max_size=4 * KIB) as daemon:
        response = daemon.request('POST', '/v2/cache/prune', token='admin')
    assert response.status_code == 200, response.text
    assert response.json()['total_files_pruned'] == 4
    assert cache.images() == set(tracked) == set(cache.rows())
    assert 'still' not in daemon.log()      # not "still over its limit"


def test_clean_deletes_stale_records_whatever_their_time(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    kept = cache.add_image()
    stale = {'future': time.time() + DAY, 'null': None,
             'text': 'yesterday', 'past': 1000.0}
    ids = {}
    conn = sqlite3.connect(cache.db_path, isolation_level=None)
    for name, modified in stale.items():
        ids[name] = caches.new_id()
        conn.execute('INSERT INTO cached_images (image_id, last_accessed, '
                     'last_modified, size, hits) VALUES (?, ?, ?, ?, ?)',
                     (ids[name], 1000.0, modified, KIB, 0))
    conn.close()
    stalled = cache.add_incomplete(age=0)
    ahead = time.time() + DAY
    os.utime(os.path.join(cache.path, 'incomplete', stalled),
             (ahead, ahead))
    with running.daemon(tmp_path, cache.path) as daemon:
        response = daemon.request('POST', '/v2/cache/clean', token='admin')
    assert response.status_code == 200, response.text
    assert set(cache.rows()) == {kept}
    assert cache.listdir('incomplete') == set()


def _odd_sqlite_cache(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    good = cache.add_image()
    odd = {}
    rows = {'null times': (None, None, KIB, 0),
            'text': ('abc', 'def', 'big', 'many'),
            'huge': (1e300, 1e300, 1e300, 1e300),
            'infinite': (float('inf'), float('-inf'), 5, 1),
            'blob': (b'\x00\xff', 1000.0, b'\x01', -3)}
    conn = sqlite3.connect(cache.db_path, isolation_level=None)
    for name, values in rows.items():
        odd[name] = caches.new_id()
        conn.execute('INSERT INTO cached_images (image_id, last_accessed, '
                     'last_modified, size, hits) VALUES (?, ?, ?, ?, ?)',
                     (odd[name],) + values)
    conn.execute("INSERT INTO cached_images (image_id, size) VALUES "
                 "(x'deadbeef', 1)")
    conn.close()
    return cache, good, odd


def test_odd_sqlite_values_leave_the_listings_answering(tmp_path):
    cache, good, odd = _odd_sqlite_cache(tmp_path)
    with running.daemon(tmp_path, cache.path) as daemon:
        for _ in range(2):
            response = daemon.request('GET', '/v2/cache', token='admin')
            assert response.status_code == 200, response.text
            listed = {i['image_id']: i for i in
                      strict_json(response.text)['cached_images']}
            assert set(listed) == {good} | set(odd.values())
            assert listed[odd['infinite']]['last_accessed'] == 0
            assert listed[odd['text']]['size'] == 0
            assert listed[odd['blob']]['hits'] == 0
        # Each odd record once in the service's log, however often listed.
        log = daemon.log()
        for image_id in odd.values():
            assert log.count("image_id='%s'" % image_id) == 1, image_id
        assert log.count("image_id=b'\\xde\\xad\\xbe\\xef'") == 1
        for fmt in ('table', 'json'):
            result = running.manage(daemon.config_path, 'list',
                                    '--format', fmt)
            assert result.returncode == 0, result.stderr
            assert 'Traceback' not in result.stderr
            if fmt == 'json':
                strict_json(result.stdout)


@pytest.fixture
def mariadb_cache(make_cache):
    return make_cache('mysql')


def test_odd_mariadb_values_leave_the_listing_answering(mariadb_cache,
                                                        daemons):
    cache = mariadb_cache
    good = caches.new_id()
    cache.record([plans.Image(good, KIB, time.time(), time.time(), 1)])
    odd = caches.new_id()
    # Both cached: a shared store's listing is of the images on disk.
    caches.write_files(cache.path, [
        plans.Image(image_id, KIB, time.time(), time.time() - 3600)
        for image_id in (good, odd)])
    node = cache.node_id()
    with cache.engine.begin() as conn:
        conn.execute(sa.text("SET SESSION sql_mode = ''"))
        conn.execute(sa.text(
            "INSERT INTO cached_images (image_id, last_accessed, "
            "last_modified, size, hits, node_reference_id) VALUES "
            "(:id, '0000-00-00 00:00:00', '0000-00-00 00:00:00', -5, -1, "
            ":node)"), {'id': odd, 'node': node})
    daemon = daemons(cache, cache_prune_interval=0,
                     cache_clean_interval=0).start()
    response = daemon.request('GET', '/v2/cache', token='admin')
    assert response.status_code == 200, response.text
    listed = {i['image_id']: i for i in
              strict_json(response.text)['cached_images']}
    assert listed[odd] == {'image_id': odd, 'last_accessed': 0.0,
                           'last_modified': 0.0, 'size': 0, 'hits': 0}
    assert listed[good]['size'] == KIB
    assert daemon.log().count("image_id='%s'" % odd) == 1
