"""The Glance 33 harness drives Glance's own cache code for every driver.

Run with an interpreter that has glance==33.0.0, xattr, psycopg2 and PyMySQL:
``python -m pytest tests/compat``. Without Glance these tests are skipped;
without a database server they are skipped, or fail when ``CI`` is set.
"""

import errno
import time
import uuid

import pytest

pytest.importorskip('glance.image_cache', reason='needs glance==33.0.0')

import sqlalchemy as sa  # noqa: E402

from tests.support import databases as scratch  # noqa: E402
from tests.support import glance as glance_harness  # noqa: E402

KIB = 1024
BACKENDS = ('sqlite', 'postgresql', 'mysql')
CASES = [('sqlite', None), ('xattr', None)] + [
    ('centralized_db', backend) for backend in BACKENDS]


def open_connections(url):
    """How many server connections are open to the database at ``url``."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == 'postgresql':
        kind, query = 'postgresql', (
            'SELECT count(*) FROM pg_stat_activity WHERE datname = :db')
    else:
        kind, query = 'mysql', (
            'SELECT count(*) FROM information_schema.processlist '
            'WHERE db = :db')
    engine = sa.create_engine(scratch.admin_url(kind))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query),
                                {'db': parsed.database}).scalar()
    finally:
        engine.dispose()


def ids(count):
    return sorted(str(uuid.uuid4()) for _ in range(count))


def make_cache(tmp_path, databases, driver, backend, name='cache', **kw):
    connection = databases(backend) if backend else None
    return glance_harness.GlanceImageCache(tmp_path / name, driver,
                                           connection=connection, **kw)


@pytest.mark.parametrize('driver,backend', CASES)
def test_cache_read_list_prune_clean(tmp_path, databases, driver, backend):
    with make_cache(tmp_path, databases, driver, backend) as cache:
        assert cache.driver_name == driver
        images = ids(5)
        for image_id in images:
            assert cache.cache(image_id, b'x' * KIB) is True
        assert cache.cache(images[0], b'y') is False
        assert cache.size() == 5 * KIB
        assert all(cache.is_cached(i) for i in images)

        # A later second: MariaDB DATETIME and xattr's atime keep whole ones.
        time.sleep(1.1)
        read_once, read_twice = images[1], images[3]
        assert cache.read(read_once) == b'x' * KIB
        cache.read(read_twice)
        cache.read(read_twice)

        listed = {row['image_id']: row for row in cache.cached_images()}
        assert sorted(listed) == images
        assert {i: row['hits'] for i, row in listed.items()} == {
            i: {read_once: 1, read_twice: 2}.get(i, 0) for i in images}
        assert all(row['size'] == KIB for row in listed.values())
        unread = [i for i in images if i not in (read_once, read_twice)]
        latest_unread = max(listed[i]['last_accessed'] for i in unread)
        assert listed[read_once]['last_accessed'] > latest_unread, (
            'reading did not move last_accessed (atime updates off?)')
        assert cache.hits(read_twice) == 2

        queued = str(uuid.uuid4())
        assert cache.queued() == []
        assert cache.queue(queued) is True
        assert cache.queued() == [queued]

        assert cache.prune() == (0, 0)          # under 10 GiB
        cache.max_size = 3 * KIB
        assert cache.prune() == (2, 2 * KIB)
        assert cache.size() == 3 * KIB
        survivors = [i for i in images if cache.is_cached(i)]
        assert len(survivors) == 3
        assert {read_once, read_twice} <= set(survivors)
        assert sorted(r['image_id'] for r in cache.cached_images()) == \
            survivors

        invalid = tmp_path / 'cache' / 'invalid' / str(uuid.uuid4())
        invalid.write_bytes(b'z' * KIB)
        assert cache.clean() is None
        assert not invalid.exists()
        assert cache.queued() == [queued]


def test_switch_drivers_and_databases_in_one_process(tmp_path, databases):
    plan = [('centralized_db', 'sqlite', 'models'),
            ('centralized_db', 'postgresql', 'migration'),
            ('sqlite', None, None),
            ('centralized_db', 'mysql', 'migration'),
            ('xattr', None, None),
            ('centralized_db', 'postgresql', 'models'),
            ('centralized_db', 'sqlite', 'migration'),
            ('centralized_db', 'mysql', 'models')]
    for n, (driver, backend, how) in enumerate(plan):
        url = databases(backend, how) if backend else None
        cache = glance_harness.GlanceImageCache(
            tmp_path / ('cache%d' % n), driver, connection=url,
            max_size=KIB)
        images = ids(2)
        for image_id in images:
            cache.cache(image_id, b'x' * KIB)
        assert sorted(r['image_id'] for r in cache.cached_images()) == images
        assert cache.prune() == (1, KIB)
        assert len(cache.cached_images()) == 1
        cache.close()
        if backend in ('postgresql', 'mysql'):
            assert open_connections(url) == 0, 'close() left connections'


@pytest.mark.parametrize('backend', BACKENDS)
def test_two_nodes_share_one_database(tmp_path, databases, backend):
    url = databases(backend)
    node_a = glance_harness.GlanceImageCache(
        tmp_path / 'a', 'centralized_db', connection=url,
        node_url='http://node-a:9292')
    node_b = glance_harness.GlanceImageCache(
        tmp_path / 'b', 'centralized_db', connection=url,
        node_url='http://node-b:9292')
    shared, only_a, only_b = ids(3)
    node_a.cache(shared, b'a' * KIB)
    node_b.cache(shared, b'b' * 2 * KIB)
    node_a.cache(only_a, b'a')
    node_b.cache(only_b, b'b')
    node_b.read(shared)

    rows_a = {r['image_id']: r for r in node_a.cached_images()}
    rows_b = {r['image_id']: r for r in node_b.cached_images()}
    assert sorted(rows_a) == sorted([shared, only_a])
    assert sorted(rows_b) == sorted([shared, only_b])
    assert (rows_a[shared]['hits'], rows_b[shared]['hits']) == (0, 1)
    assert rows_b[shared]['size'] == 2 * KIB
    assert sorted(node_a.driver.get_cached_nodes(shared)) == [
        'http://node-a:9292', 'http://node-b:9292']

    node_a.max_size = 0
    assert node_a.prune() == (2, KIB + 1)
    assert node_a.cached_images() == []
    assert sorted(r['image_id'] for r in node_b.cached_images()) == \
        sorted([shared, only_b])
    node_a.close()
    node_b.close()


def test_prune_that_would_never_end_is_refused(tmp_path, databases,
                                               monkeypatch):
    cache = make_cache(tmp_path, databases, 'centralized_db', 'sqlite',
                       max_size=KIB)
    cache.cache(str(uuid.uuid4()), b'x' * KIB)
    # A file without a row, bigger than max_size: Glance's prune would loop
    # forever, so it must not even be called.
    (tmp_path / 'cache' / str(uuid.uuid4())).write_bytes(b'u' * 2 * KIB)

    def never(*args):
        raise AssertionError('Glance prune called')
    monkeypatch.setattr(cache.image_cache, 'prune', never)
    with pytest.raises(glance_harness.UnprunableCache):
        cache.prune()
    cache.close()


def test_silent_fallback_to_sqlite_is_an_error(tmp_path, monkeypatch):
    from glance.image_cache.drivers import xattr as glance_xattr

    def unsupported(path, key, value):
        raise OSError(errno.EOPNOTSUPP, 'Operation not supported')
    monkeypatch.setattr(glance_xattr, 'set_xattr', unsupported)
    with pytest.raises(glance_harness.DriverFallback, match='fell back to '
                       'sqlite'):
        glance_harness.GlanceImageCache(tmp_path, 'xattr')
