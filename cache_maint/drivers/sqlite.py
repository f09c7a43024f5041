"""Glance's ``sqlite`` cache driver: a ``cached_images`` table in a
database file inside the cache directory.

glance-api opens a connection per operation and gives up on a locked
database after 2 seconds (``DEFAULT_SQL_CALL_TIMEOUT``), failing the read
or the hit update. So every write transaction here is one statement over a
bounded batch of ids, and the journal mode is left as Glance has it
(``delete``: WAL would add files Glance counts as cache content).

Rows are never read from glance-api's database one at a time. Python's
sqlite3 gives up the GIL around every step of a cursor, and a step that
must wait for the GIL again keeps the database's lock meanwhile: with the
service's other threads busy, reading 2,000 rows kept a SHARED lock for
seconds, long enough for glance-api to time out on its next write. Each
read instead copies what it needs into a table of this connection's own
(in memory, outside glance-api's database) in one statement, and the rows
are read from there with no lock on glance-api's database held.
"""

import contextlib
import os
import sqlite3
import time
import urllib.parse

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint.drivers import base
from cache_maint import exception
from cache_maint import locks

LOG = logging.getLogger(__name__)

# The exact table Glance creates (glance/image_cache/drivers/sqlite.py).
SCHEMA = """
CREATE TABLE IF NOT EXISTS cached_images (
    image_id TEXT PRIMARY KEY,
    last_accessed REAL DEFAULT 0.0,
    last_modified REAL DEFAULT 0.0,
    size INTEGER DEFAULT 0,
    hits INTEGER DEFAULT 0,
    checksum TEXT
);
"""

# How long a statement waits for glance-api's lock. A writer that waits
# holds a PENDING lock that keeps new readers out, and glance-api gives up
# after 2 s, so this stays well below that; a write that times out is tried
# again later, after the locks were released. A query that times out is
# tried again too: a reader waiting for its SHARED lock holds no lock, so
# its wait keeps no one out, and under load (many API requests, glance-api
# writing) one second without the lock is no reason to fail a request.
# Any statement, query or write, that still finds the database locked is
# tried LOCKED_ATTEMPTS times in all, LOCKED_PAUSE seconds apart.
BUSY_TIMEOUT = 1.0
LOCKED_ATTEMPTS = 5
LOCKED_PAUSE = 0.2

# Ids per DELETE, one short transaction (tens of ms on a busy disk): fewer
# commits, fewer fsyncs. SQLite before 3.32 allows 999 variables only.
IDS_PER_DELETE = 2000

_COLUMNS = 'image_id, last_accessed, last_modified, size, hits'

# Every column, as a deleted record is kept to be put back.
_STORED = _COLUMNS + ', checksum'
_STORED_WIDTH = len(_STORED.split(','))

#: Seconds past the present within which a record's last_modified is taken
#: as made now, not by a clock that was ahead (forget's recorded_before).
RECORDED_MARGIN = 10

# Glance's listing; values Glance never writes are mended in Python.
_LIST_ORDER = 'FROM cached_images ORDER BY image_id'

# Least recently used first; rowid (caching order) breaks ties.
_LRU_ORDER = 'FROM cached_images ORDER BY last_accessed, rowid'


# The connection's private copy of what a statement selected. Its columns
# have no type, so each value is kept exactly as glance-api stored it.
_COPY = 'copied'


class SqliteDriver(base.Driver):
    """Metadata in ``<image_cache_dir>/<image_cache_sqlite_db>``."""

    name = 'sqlite'
    metadata_on_cache_disk = True

    def __init__(self, conf):
        super().__init__(conf)
        self.db_path = os.path.join(conf.image_cache_dir,
                                    conf.image_cache_sqlite_db)

    @contextlib.contextmanager
    def _connect(self, create=False, read_only=False):
        """One connection per operation, as glance-api does.

        Only setup creates the database: a database that vanishes later is
        an error, not something to recreate empty behind Glance's back.
        """
        mode = 'rwc' if create else 'ro' if read_only else 'rw'
        uri = 'file:%s?mode=%s' % (urllib.parse.quote(self.db_path), mode)
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT,
                                   isolation_level=None)
        except sqlite3.Error as e:
            raise exception.MetadataError(
                'cannot open the cache database %s: %s' % (self.db_path, e))
        try:
            # The private copies (see _copy) stay in memory: nothing is
            # written outside the cache directory. A large delete keeps its
            # pages in memory until COMMIT too: spilled early, they would
            # take the EXCLUSIVE lock, which keeps glance-api's readers
            # out, before the transaction's last statement.
            conn.execute('PRAGMA temp_store = MEMORY')
            conn.execute('PRAGMA cache_spill = OFF')
            yield conn
        except sqlite3.OperationalError as e:
            if 'locked' in str(e) or 'busy' in str(e):
                raise exception.MetadataError(
                    'the cache database %s stayed locked (%s)'
                    % (self.db_path, e))
            if getattr(e, 'sqlite_errorcode', None) == sqlite3.SQLITE_FULL:
                raise exception.MetadataFull(
                    'cache database %s: %s' % (self.db_path, e))
            raise exception.MetadataError(
                'cache database %s: %s' % (self.db_path, e))
        except sqlite3.DatabaseError as e:
            raise exception.MetadataError(
                'the cache database %s is unusable (%s); move it aside and '
                'let cache-maint or glance-api create a new one'
                % (self.db_path, e))
        finally:
            conn.close()

    def check(self):
        self._refuse_creating_outside()

    def setup(self):
        # Glance runs this CREATE under the same lock at every start; it
        # creates the table (and the file) when absent and is a no-op
        # otherwise. The SELECT then proves the table is Glance's.
        with locks.hold(self.conf, locks.DB_INIT_LOCK_NAME):
            with self._connect(create=True) as conn:
                conn.executescript(SCHEMA)
                conn.execute('SELECT %s FROM cached_images LIMIT 0'
                             % _COLUMNS)

    def _refuse_creating_outside(self):
        # Glance joins the option to the cache dir, so an absolute path or
        # '..' may point elsewhere. Use such a database if it exists, but
        # never create one outside the cache directory.
        if not (cachedir.is_inside(self.conf.image_cache_dir, self.db_path)
                or os.path.exists(self.db_path)):
            raise exception.ConfigError(
                '[DEFAULT] image_cache_sqlite_db points to %s, outside '
                'image_cache_dir, and it does not exist; cache-maint only '
                'creates the database inside the cache directory'
                % self.db_path)

    def has_table(self):
        """True if the database has Glance's table, with its columns.

        Opened read-only: nothing is created or changed, not even a
        journal; a missing file is a MetadataError.
        """
        with self._connect(read_only=True) as conn:
            found = _query(conn, "SELECT 1 FROM sqlite_master WHERE "
                                 "type = 'table' AND name = 'cached_images'"
                           ).fetchall()
            if found:
                _query(conn, 'SELECT %s FROM cached_images LIMIT 0'
                       % _COLUMNS).fetchall()
        return bool(found)

    def ping(self):
        with self._connect() as conn:
            _query(conn, 'SELECT 1 FROM cached_images LIMIT 1').fetchall()

    def recorded_ids(self):
        with self._connect() as conn:
            return [image_id for (image_id,) in _copied(
                conn, 'image_id', 'FROM cached_images')]

    def lru_order(self, files):
        # Kept as the scan's own strings, and only those the scan saw: at
        # 200,000 images, a list of every id read would cost tens of MB
        # more at the peak of a prune.
        with self._connect() as conn:
            return [files[image_id].image_id
                    for (image_id,) in _copied(conn, 'image_id', _LRU_ORDER)
                    if image_id in files]

    def lru_records(self, files):
        return [record for record in self._records(_LRU_ORDER)
                if record.image_id in files]

    def list_records(self):
        return self._records(_LIST_ORDER)

    def _records(self, rows):
        with self._connect() as conn:
            rows = _copied(conn, _COLUMNS, rows).fetchall()
        records, odd = base.ImageRecord.from_rows(rows)
        if odd:
            self.report_odd(odd)
        return records

    def forget(self, image_ids, recorded_before=None):
        image_ids = list(image_ids)
        deleted = []
        since, bounds = '', []
        if recorded_before is not None:
            # Glance sets last_modified when it records a cached image; a
            # text, blob, NULL or future one says nothing of when.
            since = (' AND (last_modified IS NULL OR last_modified < ? OR '
                     'last_modified > ?)')
            bounds = [recorded_before, time.time() + RECORDED_MARGIN]
        with self.all_or_nothing(deleted), self._connect() as conn:
            step = min(IDS_PER_DELETE, conn.getlimit(
                sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(bounds))
            for start in range(0, len(image_ids), step):
                batch = image_ids[start:start + step]
                rows = 'FROM cached_images WHERE image_id IN (%s)%s' % (
                    ','.join('?' * len(batch)), since)
                _copy_and_delete(conn, rows, batch + bounds)
                deleted += [base.StoredRecord(row[0], row)
                            for row in _read_copy(conn)]
        return deleted

    def restore(self, records):
        rows = [record.row for record in records]
        if not rows:
            return
        with self._connect() as conn:
            # Staged in the connection's own table, with no lock on
            # glance-api's database, then put back in one statement.
            _stage(conn, _STORED_WIDTH)
            conn.executemany('INSERT INTO temp.%s VALUES (%s)'
                             % (_COPY, ','.join('?' * _STORED_WIDTH)), rows)
            _execute(conn, 'INSERT OR IGNORE INTO main.cached_images (%s) '
                           'SELECT * FROM temp.%s ORDER BY rowid'
                     % (_STORED, _COPY), ())


def _stage(conn, width):
    """An empty private table of ``width`` untyped columns.

    Locked out it waits too: a connection's first statement reads
    glance-api's schema.
    """
    _execute(conn, 'DROP TABLE IF EXISTS temp.%s' % _COPY, ())
    _execute(conn, 'CREATE TEMP TABLE %s (%s)' % (
        _COPY, ', '.join('c%d' % i for i in range(width))), ())


def _copy(conn, columns, rows, params=()):
    """Copy ``SELECT columns rows``, in its order, into the private table.

    ``columns`` is a comma-separated list, ``rows`` the FROM clause and
    what follows. One statement: glance-api's database is locked only
    while SQLite itself runs it, never while Python waits for the GIL.
    """
    _stage(conn, len(columns.split(',')))
    _execute(conn, _copy_sql(columns, rows), params)


def _copy_sql(columns, rows):
    return 'INSERT INTO temp.%s SELECT %s %s' % (_COPY, columns, rows)


def _read_copy(conn):
    """The private table's rows, in the order they were copied."""
    return conn.execute('SELECT * FROM temp.%s ORDER BY rowid' % _COPY)


def _copied(conn, columns, rows, params=()):
    """A query's rows, copied out in one statement, then read at leisure."""
    _copy(conn, columns, rows, params)
    return _read_copy(conn)


def _copy_and_delete(conn, rows, params):
    """Copy ``rows`` (a FROM clause) aside, then delete them.

    One short transaction. (DELETE ... RETURNING would hand the rows over
    one step at a time, the lock held until the last.) Locked, it is
    rolled back and tried again from the start, holding nothing between.
    """
    def transaction():
        _stage(conn, _STORED_WIDTH)      # before the lock
        conn.execute('BEGIN IMMEDIATE')
        try:
            conn.execute(_copy_sql(_STORED, rows), params)
            conn.execute('DELETE %s' % rows, params)
            conn.execute('COMMIT')
        except BaseException:
            if conn.in_transaction:
                conn.execute('ROLLBACK')
            raise

    _retry_locked(transaction)


def _query(conn, sql):
    """Start a query, retrying while a writer holds the lock.

    Its first step takes the SHARED lock, which the cursor then keeps
    until it is exhausted: only that step can find the database locked.
    """
    return _execute(conn, sql, ())


def _execute(conn, sql, params):
    return _retry_locked(lambda: conn.execute(sql, params))


def _retry_locked(work):
    """``work()``, tried LOCKED_ATTEMPTS times while the database is locked."""
    for attempt in range(1, LOCKED_ATTEMPTS + 1):
        try:
            return work()
        except sqlite3.OperationalError as e:
            if 'locked' not in str(e) or attempt == LOCKED_ATTEMPTS:
                raise
            time.sleep(LOCKED_PAUSE)
