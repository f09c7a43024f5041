"""The sqlite driver on Glance's exact cache.db format."""

import contextlib
import os
import sqlite3
import threading
import time
import types

import pytest

from cache_maint import cache as cm_cache
from cache_maint import cachedir
from cache_maint import drivers
from cache_maint.drivers import sqlite as sqlite_driver
from cache_maint import exception

from tests.support import caches
from tests.support import processes
from tests.support import settings


def make_driver(path, **overrides):
    return drivers.load_driver(settings.make_conf(path, **overrides))


def set_up(driver):
    """Set the driver up as the service does, with its cache directory."""
    cm_cache.Cache(cachedir.CacheDir(driver.conf.image_cache_dir),
                   driver).setup()
    return driver


def lru(driver):
    """The driver's LRU order of the images in its cache directory."""
    return driver.lru_order(
        cachedir.CacheDir(driver.conf.image_cache_dir).scan_images())


def table_sql(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT sql FROM sqlite_master WHERE "
                            "name = 'cached_images'").fetchone()[0]


def test_creates_glances_schema_when_absent(tmp_path):
    driver = make_driver(tmp_path)
    set_up(driver)
    with sqlite3.connect(driver.db_path) as conn:
        columns = [(c[1], c[2], c[4], c[5]) for c in
                   conn.execute('PRAGMA table_info(cached_images)')]
        journal = conn.execute('PRAGMA journal_mode').fetchone()[0]
    assert columns == [('image_id', 'TEXT', None, 1),
                       ('last_accessed', 'REAL', '0.0', 0),
                       ('last_modified', 'REAL', '0.0', 0),
                       ('size', 'INTEGER', '0', 0),
                       ('hits', 'INTEGER', '0', 0),
                       ('checksum', 'TEXT', None, 0)]
    assert journal == 'delete'
    assert sorted(os.listdir(tmp_path)) == [
        'cache.db', 'image_cache_db_init', 'incomplete', 'invalid', 'queue']


def test_existing_database_is_kept_as_it_is(tmp_path):
    cache = caches.SqliteCache(tmp_path)
    image_id = cache.add_image(hits=3)
    before = table_sql(cache.db_path)
    set_up(make_driver(tmp_path))
    assert table_sql(cache.db_path) == before
    assert cache.rows()[image_id][2] == 3


def test_custom_database_path(tmp_path):
    driver = make_driver(tmp_path, image_cache_sqlite_db='meta/other.db')
    os.mkdir(tmp_path / 'meta')
    set_up(driver)
    assert os.path.exists(tmp_path / 'meta' / 'other.db')


def test_corrupt_database_is_a_clear_error(tmp_path):
    (tmp_path / 'cache.db').write_bytes(b'this is not a database' * 100)
    with pytest.raises(exception.MetadataError, match='unusable'):
        set_up(make_driver(tmp_path))


def test_foreign_table_is_refused(tmp_path):
    with sqlite3.connect(tmp_path / 'cache.db') as conn:
        conn.execute('CREATE TABLE cached_images (id INTEGER)')
    with pytest.raises(exception.MetadataError):
        set_up(make_driver(tmp_path))


def test_database_removed_later_is_not_recreated(tmp_path):
    driver = make_driver(tmp_path)
    set_up(driver)
    os.unlink(driver.db_path)
    with pytest.raises(exception.MetadataError):
        driver.recorded_ids()
    assert not os.path.exists(driver.db_path)


def test_lru_order_and_listing(tmp_path):
    cache = caches.SqliteCache(tmp_path)
    late = cache.add_image(last_accessed=300.0)
    early = cache.add_image(last_accessed=100.0)
    tie_a = cache.add_image(last_accessed=200.0)
    tie_b = cache.add_image(last_accessed=200.0)
    driver = make_driver(tmp_path)
    set_up(driver)
    assert lru(driver) == [early, tie_a, tie_b, late]
    assert [r.image_id for r in driver.list_records()] == sorted(
        [late, early, tie_a, tie_b])
    record = driver.list_records()[0]
    assert set(record.to_dict()) == {'image_id', 'last_accessed',
                                     'last_modified', 'size', 'hits'}


def spy_on_statements(driver, monkeypatch, on_execute):
    """Call ``on_execute(sql, params)`` before each driver statement.

    It may raise, as a failing disk would.
    """
    real_connect = driver._connect

    class Spy:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, params=()):
            on_execute(sql, params)
            return self.conn.execute(sql, params)

        def __getattr__(self, name):
            return getattr(self.conn, name)

    @contextlib.contextmanager
    def spying_connect(create=False):
        with real_connect(create) as conn:
            yield Spy(conn)

    monkeypatch.setattr(driver, '_connect', spying_connect)


def test_forget_deletes_in_bounded_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_driver, 'IDS_PER_DELETE', 3)
    cache = caches.SqliteCache(tmp_path)
    ids = [cache.add_image() for _ in range(10)]
    driver = make_driver(tmp_path)
    set_up(driver)
    statements = []
    spy_on_statements(driver, monkeypatch, lambda sql, params: (
        statements.append(len(params)) if sql.startswith('DELETE') else None))
    assert len(driver.forget(ids[:8] + [caches.new_id()])) == 8
    assert statements == [3, 3, 3]
    assert set(cache.rows()) == set(ids[8:])


def test_glance_reads_and_writes_while_we_forget_a_large_cache(
        tmp_path, monkeypatch):
    """glance-api, with its 2 s budget, is never locked out by our deletes."""
    cache = caches.SqliteCache(tmp_path)
    with sqlite3.connect(cache.db_path) as conn:
        conn.executemany(
            'INSERT INTO cached_images (image_id, last_accessed, '
            'last_modified, hits, size) VALUES (?, 1.0, 1.0, 0, 1024)',
            [(caches.new_id(),) for _ in range(20000)])
    reader_id = cache.add_image()
    driver = make_driver(tmp_path)
    set_up(driver)
    doomed = [i for i in driver.recorded_ids() if i != reader_id]
    errors, done = [], threading.Event()

    def glance_api():
        # What glance-api does on a cache hit: a read, then a hit update,
        # each on a new connection that waits at most 2 s for the lock.
        while not done.is_set():
            try:
                with sqlite3.connect(cache.db_path, timeout=2) as conn:
                    conn.execute('SELECT count(*) FROM cached_images')
                    conn.execute('UPDATE cached_images SET hits = hits + 1 '
                                 'WHERE image_id = ?', (reader_id,))
            except sqlite3.OperationalError as e:
                errors.append(e)

    reader = threading.Thread(target=glance_api)
    reader.start()
    try:
        assert len(driver.forget(doomed)) == 20000
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert set(cache.rows()) == {reader_id}
    assert cache.rows()[reader_id][2] > 0


@contextlib.contextmanager
def _locked_out(db_path):
    """Hold cache.db's EXCLUSIVE lock, as a writer committing does."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute('BEGIN EXCLUSIVE')
    try:
        yield
    finally:
        conn.execute('ROLLBACK')
        conn.close()


def test_a_read_waits_out_a_lock_longer_than_its_busy_timeout(
        tmp_path, monkeypatch):
    """Under load a reader may wait past BUSY_TIMEOUT: it retries, no 503."""
    monkeypatch.setattr(sqlite_driver, 'BUSY_TIMEOUT', 0.02)
    monkeypatch.setattr(sqlite_driver, 'LOCKED_PAUSE', 0.02)
    monkeypatch.setattr(sqlite_driver, 'LOCKED_ATTEMPTS', 1000)
    cache = caches.SqliteCache(tmp_path)
    image_id = cache.add_image()
    driver = make_driver(tmp_path)
    set_up(driver)
    waits = []

    class CountingTime:
        """The driver's time module: counts its pauses between tries."""

        @staticmethod
        def sleep(seconds):
            waits.append(seconds)
            time.sleep(seconds)

    monkeypatch.setattr(sqlite_driver, 'time', CountingTime)
    results = []
    with _locked_out(driver.db_path):
        reader = threading.Thread(target=lambda: results.append(
            (driver.recorded_ids(), driver.list_records())))
        reader.start()
        # Locked out for several of its busy timeouts (polled, not timed).
        processes.wait_for(lambda: len(waits) >= 3,
                           'the read to be locked out three times')
    reader.join(30)
    assert results and results[0][0] == [image_id]
    assert [r.image_id for r in results[0][1]] == [image_id]


def test_a_read_locked_out_for_good_is_a_clear_error(tmp_path, monkeypatch):
    """The retries are bounded: a lock never released is a MetadataError."""
    monkeypatch.setattr(sqlite_driver, 'BUSY_TIMEOUT', 0.02)
    monkeypatch.setattr(sqlite_driver, 'LOCKED_PAUSE', 0.01)
    cache = caches.SqliteCache(tmp_path)
    cache.add_image()
    driver = make_driver(tmp_path)
    set_up(driver)
    with _locked_out(driver.db_path):
        with pytest.raises(exception.MetadataError, match='locked'):
            driver.list_records()


def test_database_outside_the_cache_is_never_created(tmp_path):
    outside = tmp_path / 'elsewhere.db'
    driver = make_driver(tmp_path / 'cache',
                         image_cache_sqlite_db=str(outside))
    (tmp_path / 'cache').mkdir()
    with pytest.raises(exception.ConfigError, match='outside'):
        set_up(driver)
    assert not outside.exists()
    # One that exists (Glance allows an absolute path) is used as it is.
    caches.SqliteCache(tmp_path / 'other', db_name=str(outside))
    set_up(driver)
    assert driver.recorded_ids() == []


def test_rows_are_read_with_no_lock_on_glance_database(tmp_path):
    """glance-api writes while the driver is still going through the rows.

    Python's sqlite3 waits for the GIL between two rows of a cursor; read
    straight from glance-api's database, the rows would keep its lock all
    that time, and a busy service would make glance-api time out.
    """
    cache = caches.SqliteCache(tmp_path)
    ids = [cache.add_image(last_accessed=i) for i in range(5)]
    driver = make_driver(tmp_path)
    set_up(driver)
    written = []

    class WritingWhileRead(dict):
        def __contains__(self, image_id):
            # glance-api with no patience at all: any lock held fails it.
            conn = sqlite3.connect(driver.db_path, timeout=0,
                                   isolation_level=None)
            try:
                conn.execute('UPDATE cached_images SET hits = hits + 1 '
                             'WHERE image_id = ?', (image_id,))
                written.append(image_id)
            finally:
                conn.close()
            return super().__contains__(image_id)

    files = WritingWhileRead((i, types.SimpleNamespace(image_id=i))
                             for i in ids)
    assert driver.lru_order(files) == ids
    assert written == ids


def test_a_large_delete_keeps_glance_readers_in_until_its_commit(
        tmp_path, monkeypatch):
    """Its pages stay in memory: spilled, they would take EXCLUSIVE early.

    2,000 deletes spread over a table of 30,000 records dirty more pages
    than SQLite's default cache holds.
    """
    cache = caches.SqliteCache(tmp_path)
    ids = [caches.new_id() for _ in range(30000)]
    conn = sqlite3.connect(cache.db_path)
    with conn:
        conn.executemany(
            'INSERT INTO cached_images (image_id, last_accessed, '
            'last_modified, size, hits, checksum) VALUES (?, 0, 0, 1, 0, ?)',
            [(image_id, 'c' * 64) for image_id in ids])
    conn.close()
    driver = make_driver(tmp_path)
    set_up(driver)
    read_before_commit = []

    def glance_reads_before_commit(sql, params):
        if sql == 'COMMIT':
            reader = sqlite3.connect(driver.db_path, timeout=0)
            try:
                read_before_commit.append(reader.execute(
                    'SELECT count(*) FROM cached_images').fetchone()[0])
            finally:
                reader.close()

    spy_on_statements(driver, monkeypatch, glance_reads_before_commit)
    assert len(driver.forget(ids[::15])) == 2000
    assert read_before_commit == [30000]


def test_a_forget_that_fails_halfway_puts_back_what_it_deleted(
        tmp_path, monkeypatch):
    """Several statements, all or nothing: no record is lost silently."""
    monkeypatch.setattr(sqlite_driver, 'IDS_PER_DELETE', 3)
    cache = caches.SqliteCache(tmp_path)
    ids = [cache.add_image(hits=i) for i in range(10)]
    rows_before = cache.rows()
    driver = make_driver(tmp_path)
    set_up(driver)
    deletes = []

    def failing_third_delete(sql, params):
        if sql.startswith('DELETE'):
            deletes.append(sql)
            if len(deletes) == 3:
                raise sqlite3.OperationalError('disk I/O error')

    spy_on_statements(driver, monkeypatch, failing_third_delete)
    with pytest.raises(exception.MetadataError, match='disk I/O error'):
        driver.forget(ids)
    assert cache.rows() == rows_before


def test_restore_puts_back_exactly_what_forget_deleted(tmp_path):
    cache = caches.SqliteCache(tmp_path)
    ids = [cache.add_image(hits=i) for i in range(4)]
    rows_before = cache.rows()
    driver = make_driver(tmp_path)
    records = driver.forget(ids[:2])
    assert set(cache.rows()) == set(ids[2:])
    driver.restore(records)
    assert cache.rows() == rows_before
