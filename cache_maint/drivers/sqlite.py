"""Glance's ``sqlite`` cache driver: a ``cached_images`` table in a
database file inside the cache directory.

glance-api opens a connection per operation and gives up on a locked
database after 2 seconds (``DEFAULT_SQL_CALL_TIMEOUT``), failing the read
or the hit update. So every write transaction here is one statement over a
bounded batch of ids, and the journal mode is left as Glance has it
(``delete``: WAL would add files Glance counts as cache content).
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

#: Seconds past the present within which a record's last_modified is taken
#: as made now, not by a clock that was ahead (forget's recorded_before).
RECORDED_MARGIN = 10

# Glance's listing; values Glance never writes are mended in Python.
_LIST_QUERY = 'SELECT %s FROM cached_images ORDER BY image_id' % _COLUMNS

# Least recently used first; rowid (caching order) breaks ties.
_LRU_QUERY = ('SELECT image_id FROM cached_images '
              'ORDER BY last_accessed, rowid')


class SqliteDriver(base.Driver):
    """Metadata in ``<image_cache_dir>/<image_cache_sqlite_db>``."""

    name = 'sqlite'
    metadata_on_cache_disk = True

    def __init__(self, conf):
        super().__init__(conf)
        self.db_path = os.path.join(conf.image_cache_dir,
                                    conf.image_cache_sqlite_db)

    @contextlib.contextmanager
    def _connect(self, create=False):
        """One connection per operation, as glance-api does.

        Only setup creates the database: a database that vanishes later is
        an error, not something to recreate empty behind Glance's back.
        """
        uri = 'file:%s?mode=%s' % (urllib.parse.quote(self.db_path),
                                   'rwc' if create else 'rw')
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT,
                                   isolation_level=None)
        except sqlite3.Error as e:
            raise exception.MetadataError(
                'cannot open the cache database %s: %s' % (self.db_path, e))
        try:
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

    def ping(self):
        with self._connect() as conn:
            _query(conn, 'SELECT 1 FROM cached_images LIMIT 1').fetchall()

    def recorded_ids(self):
        with self._connect() as conn:
            return [image_id for (image_id,) in _query(
                conn, 'SELECT image_id FROM cached_images')]

    def lru_order(self, files):
        # Streamed from the cursor, keeping only what the scan saw and as
        # the scan's own strings: at 200,000 images, a list of every id
        # read would cost tens of MB more at the peak of a prune.
        with self._connect() as conn:
            return [files[image_id].image_id
                    for (image_id,) in _query(conn, _LRU_QUERY)
                    if image_id in files]

    def list_records(self):
        with self._connect() as conn:
            rows = _query(conn, _LIST_QUERY).fetchall()
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
                marks = ','.join('?' * len(batch))
                # In autocommit mode one statement is one short transaction.
                deleted += [base.StoredRecord(row[0], row) for row in _execute(
                    conn, 'DELETE FROM cached_images WHERE image_id IN (%s)%s '
                          'RETURNING %s' % (marks, since, _STORED),
                    batch + bounds).fetchall()]
        return deleted

    def restore(self, records):
        rows = [record.row for record in records]
        if not rows:
            return
        with self._connect() as conn:
            _execute(conn, 'BEGIN IMMEDIATE', ())
            try:
                conn.executemany(
                    'INSERT OR IGNORE INTO cached_images (%s) VALUES (%s)'
                    % (_STORED, ','.join('?' * len(rows[0]))), rows)
            except BaseException:
                conn.execute('ROLLBACK')
                raise
            _execute(conn, 'COMMIT', ())


def _query(conn, sql):
    """Start a query, retrying while a writer holds the lock.

    Its first step takes the SHARED lock, which the cursor then keeps
    until it is exhausted: only that step can find the database locked.
    """
    return _execute(conn, sql, ())


def _execute(conn, sql, params):
    for attempt in range(1, LOCKED_ATTEMPTS + 1):
        try:
            return conn.execute(sql, params)
        except sqlite3.OperationalError as e:
            if 'locked' not in str(e) or attempt == LOCKED_ATTEMPTS:
                raise
            time.sleep(LOCKED_PAUSE)
