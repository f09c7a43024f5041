"""cache-maint's own state: pins, the record of runs, the evicted images.

One SQLite database, ``state.db``, in ``[maintenance] state_dir``. The
service and ``cache-maint-manage`` share it, so that a pin made by either
holds for both and every run appears in one history, whoever started it;
SQLite's locking lets the two processes write it in turn. Nothing of
Glance's is kept here: losing the file loses the pins and the history, never
a cached image or a record of Glance's.

Every table is bounded: the runs to the most recent ``RUN_HISTORY`` of each
task (and the last successful one of each, kept apart), each
run's list of removed ids to ``IDS_PER_RUN`` (with a count of those left
out), the evicted images to those of the last ``EVICTION_MEMORY``
seconds, at most ``MAX_EVICTIONS`` of them, and the known images (the ids
clean looks up in a shared metadata store, ``cache_maint.reconcile``) to
``MAX_KNOWN_IMAGES``.
"""

import contextlib
import errno
import json
import os
import sqlite3
import time
import urllib.parse

from oslo_log import log as logging

from cache_maint.conf import maintenance
from cache_maint import exception

LOG = logging.getLogger(__name__)

FILENAME = 'state.db'

#: Runs kept, all tasks together, oldest dropped first.
RUN_HISTORY = 200
#: Ids (or paths) a run's record lists; the rest are counted.
IDS_PER_RUN = 200
#: How long an evicted image is remembered, and how many at most.
EVICTION_MEMORY = 7 * 86400
MAX_EVICTIONS = 100000
#: The most image ids remembered as seen in the cache; past it they are all
#: forgotten, with the memo that goes with them.
MAX_KNOWN_IMAGES = 1000000
#: The longest note a pin keeps, in characters, and the most pins.
MAX_NOTE = 255
MAX_PINS = 10000
SUCCEEDED = 'succeeded'
_LAST_SUCCESS = 'last_success:%s'

#: Seconds a writer, and a reader, wait for the other process's
#: transaction. A reader answers a request: it waits less.
BUSY_TIMEOUT = 10
READ_TIMEOUT = 2

_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS pins ('
    ' image_id TEXT PRIMARY KEY, pinned_at REAL NOT NULL,'
    ' note TEXT NOT NULL DEFAULT "")',
    'CREATE TABLE IF NOT EXISTS runs ('
    ' id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL,'
    ' outcome TEXT NOT NULL, finished_at REAL NOT NULL,'
    ' record TEXT NOT NULL)',
    'CREATE INDEX IF NOT EXISTS runs_by_task ON runs (task, id)',
    # Keyed by id alone: a prune of 100,000 images writes them in a few
    # tenths of a second, in id order, with no second index to keep.
    'CREATE TABLE IF NOT EXISTS evictions ('
    ' image_id TEXT PRIMARY KEY, evicted_at REAL NOT NULL,'
    ' size INTEGER NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID',
    'CREATE TABLE IF NOT EXISTS service ('
    ' name TEXT PRIMARY KEY, value TEXT NOT NULL)',
    # The ids of the images seen in the cache: one column, keyed by it.
    'CREATE TABLE IF NOT EXISTS known_images ('
    ' image_id TEXT PRIMARY KEY) WITHOUT ROWID',
)


class StateStore:
    """The state database of one cache, made when first used.

    Thread-safe: every use has a connection of its own. Reads create
    nothing; the first write makes the directory and the tables, again if
    they are gone. A failure raises StateError naming the file.
    """

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, FILENAME)
        self._ready = False     # the directory and the tables are there

    # -- pins ---------------------------------------------------------

    def pin(self, image_id, note='', now=None):
        """Pin an image; (pin, created). An existing pin keeps its time.

        A note given again replaces the old one; an empty one keeps it.
        One statement inserts, so two processes pinning at once neither
        fail nor go beyond MAX_PINS.
        """
        now = time.time() if now is None else now
        with self._transaction() as db:
            created = db.execute(
                'INSERT OR IGNORE INTO pins SELECT ?, ?, ? WHERE '
                '(SELECT count(*) FROM pins) < ?',
                (image_id, now, note, MAX_PINS)).rowcount == 1
            if created:
                return _pin(image_id, now, note), True
            row = db.execute('SELECT image_id, pinned_at, note FROM pins '
                             'WHERE image_id = ?', (image_id,)).fetchone()
            if row is None:
                raise exception.TooManyPins(
                    '%d images are pinned already, the most there may be'
                    % MAX_PINS, limit=MAX_PINS)
            if note and note != row[2]:
                db.execute('UPDATE pins SET note = ? WHERE image_id = ?',
                           (note, image_id))
                row = (row[0], row[1], note)
            return _pin(*row), False

    def unpin(self, image_id):
        """Remove a pin; False if the image was not pinned."""
        with self._transaction() as db:
            return db.execute('DELETE FROM pins WHERE image_id = ?',
                              (image_id,)).rowcount > 0

    def pins(self):
        """Every pin, oldest first."""
        return [_pin(*row) for row in self._read(
            'SELECT image_id, pinned_at, note FROM pins '
            'ORDER BY pinned_at, image_id')]

    def version(self):
        """What changes whenever the database is written; None if none.

        A stat: cheap enough to ask once a batch whether the pins may have
        changed.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def pinned_ids(self):
        return {row[0] for row in self._read('SELECT image_id FROM pins')}

    # -- runs ---------------------------------------------------------

    def add_run(self, record):
        """Keep a run's record (a dict); return it with its ``id``."""
        record = dict(record)
        with self._transaction() as db:
            cursor = db.execute(
                'INSERT INTO runs (task, outcome, finished_at, record) '
                'VALUES (?, ?, ?, "")',
                (record['task'], record['outcome'], record['finished_at']))
            record['id'] = cursor.lastrowid
            text = json.dumps(record, sort_keys=True)
            db.execute('UPDATE runs SET record = ? WHERE id = ?',
                       (text, record['id']))
            # Each task keeps its own most recent runs: a daily clean is
            # not pushed out by a day of prunes.
            oldest = db.execute(
                'SELECT id FROM runs WHERE task = ? ORDER BY id DESC '
                'LIMIT 1 OFFSET ?', (record['task'], RUN_HISTORY)).fetchone()
            if oldest is not None:
                db.execute('DELETE FROM runs WHERE task = ? AND id <= ?',
                           (record['task'], oldest[0]))
            if record['outcome'] == SUCCEEDED:
                # Kept apart: however many runs fail after it.
                db.execute('INSERT OR REPLACE INTO service VALUES (?, ?)',
                           (_LAST_SUCCESS % record['task'], text))
        return record

    def runs(self, task=None, after=0, limit=RUN_HISTORY):
        """The most recent ``limit`` run records, oldest first.

        ``task`` keeps one task's; ``after`` only those with a larger id.
        """
        query = 'SELECT record FROM runs WHERE id > ?'
        args = [after]
        if task:
            query += ' AND task = ?'
            args.append(task)
        query += ' ORDER BY id DESC LIMIT ?'
        args.append(limit)
        return _records(reversed(self._read(query, args)))

    def last_runs(self):
        """{task: its most recent run record}."""
        rows = self._read('SELECT record FROM runs WHERE id IN (SELECT '
                          'max(id) FROM runs GROUP BY task)')
        return {record['task']: record for record in _records(rows)}

    def last_successes(self):
        """{task: its most recent successful run}, however old."""
        rows = self._read('SELECT value FROM service WHERE name LIKE ?',
                          (_LAST_SUCCESS % '%',))
        return {record['task']: record for record in _records(rows)}

    # -- evicted images -------------------------------------------------

    def remember_evicted(self, evicted, now=None):
        """Remember ``[(image_id, size, reason)]`` as evicted just now."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            db.executemany(
                'INSERT OR REPLACE INTO evictions VALUES (?, ?, ?, ?)',
                sorted((image_id, now, size, reason)
                       for image_id, size, reason in evicted))
            db.execute('DELETE FROM evictions WHERE evicted_at < ?',
                       (now - EVICTION_MEMORY,))
            count, = db.execute('SELECT count(*) FROM evictions').fetchone()
            if count > MAX_EVICTIONS:
                # The oldest go; those of one moment go together.
                oldest_kept, = db.execute(
                    'SELECT evicted_at FROM evictions ORDER BY evicted_at '
                    'DESC LIMIT 1 OFFSET ?', (MAX_EVICTIONS - 1,)).fetchone()
                db.execute('DELETE FROM evictions WHERE evicted_at < ?',
                           (oldest_kept,))

    def take_evicted(self, image_ids, since):
        """{image_id: evicted_at} of those evicted after ``since``.

        They are forgotten: an image cached again is counted once.
        """
        found = {}
        image_ids = list(image_ids)
        if not image_ids:
            return found        # no write, and nothing made
        with self._transaction() as db:
            for start in range(0, len(image_ids), 500):
                chunk = image_ids[start:start + 500]
                marks = ','.join('?' * len(chunk))
                found.update(db.execute(
                    'SELECT image_id, evicted_at FROM evictions WHERE '
                    'evicted_at >= ? AND image_id IN (%s)' % marks,
                    [since] + chunk).fetchall())
                db.execute('DELETE FROM evictions WHERE image_id IN (%s)'
                           % marks, chunk)
        return found

    def evicted_since(self, since):
        """{image_id: evicted_at} of the images evicted after ``since``."""
        return dict(self._read('SELECT image_id, evicted_at FROM evictions '
                               'WHERE evicted_at >= ?', (since,)))

    # -- the images seen in the cache (clean's look-ups) -----------------

    def known_images(self):
        """The ids remembered as seen in the cache."""
        return {row[0] for row in self._read(
            'SELECT image_id FROM known_images')}

    def update_known_images(self, memo_name, added=(), dropped=(),
                            memo=None, replace=False):
        """Remember ``added`` and forget ``dropped`` ids, in one go.

        ``replace`` forgets every other id first. ``memo`` (a small JSON
        value, as ``put``), if given, is kept under ``memo_name`` in the
        same transaction. Past MAX_KNOWN_IMAGES ids, all are forgotten,
        and the memo under ``memo_name`` too: it vouches for them.
        """
        added, dropped = sorted(added), sorted(dropped)
        with self._transaction() as db:
            if replace:
                db.execute('DELETE FROM known_images')
            for start in range(0, len(dropped), 500):
                chunk = dropped[start:start + 500]
                db.execute('DELETE FROM known_images WHERE image_id IN (%s)'
                           % ','.join('?' * len(chunk)), chunk)
            db.executemany('INSERT OR IGNORE INTO known_images VALUES (?)',
                           [(image_id,) for image_id in added])
            if memo is not None:
                _put(db, memo_name, memo)
            count, = db.execute(
                'SELECT count(*) FROM known_images').fetchone()
            if count > MAX_KNOWN_IMAGES:
                LOG.warning('More than %d image ids are remembered as seen '
                            'in the cache: all are forgotten',
                            MAX_KNOWN_IMAGES)
                db.execute('DELETE FROM known_images')
                db.execute('DELETE FROM service WHERE name = ?',
                           (memo_name,))

    # -- what the service says of itself --------------------------------

    def put(self, name, value):
        """Keep a small JSON value under ``name`` (the service's schedule)."""
        with self._transaction() as db:
            _put(db, name, value)

    def get(self, name, default=None):
        rows = self._read('SELECT value FROM service WHERE name = ?',
                          (name,))
        value = _loads(rows[0][0]) if rows else None
        return default if value is None else value

    # -- the database ---------------------------------------------------

    def _read(self, query, args=()):
        """The rows of a query; none where nothing was written yet.

        Reading creates nothing: a command that only looks (status, pins,
        a dry run), or a prune on a full disk, leaves no file behind.
        """
        self._refuse_links()
        if not os.path.exists(self.path):
            return []
        db = None
        try:
            try:
                db = sqlite3.connect(
                    'file:%s?mode=ro' % urllib.parse.quote(self.path),
                    uri=True, timeout=READ_TIMEOUT)
                return db.execute(query, args).fetchall()
            except sqlite3.OperationalError as e:
                if str(e).startswith('no such table'):
                    return []
                if db is not None:
                    db.close()
                # A journal left by a crash needs a writer to roll it
                # back first.
                db = sqlite3.connect(self.path, timeout=READ_TIMEOUT)
                return db.execute(query, args).fetchall()
        except sqlite3.Error as e:
            raise exception.StateError(
                'state database %s is not usable: %s' % (self.path, e))
        finally:
            if db is not None:
                db.close()

    @contextlib.contextmanager
    def _transaction(self):
        """A connection in a write transaction, closed after it.

        A connection per use, and no lock of this process's held while
        SQLite waits for another's: the state is used a few times a minute,
        and no descriptor stays open in the cache directory between uses
        (one would keep its filesystem from being unmounted).
        """
        db = None
        try:
            db = self._connect()
            with db:
                yield db
        except sqlite3.Error as e:
            self._ready = False
            raise exception.StateError(
                'state database %s is not usable: %s' % (self.path, e))
        finally:
            if db is not None:
                db.close()

    def _connect(self):
        """Open the database; make it first if it is not there.

        It may have gone since the last use: the cache directory it lives
        in by default may have been removed and made again.
        """
        self._refuse_links()
        if self._ready and os.path.exists(self.path):
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)
        self._make_directory()
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)
        try:
            with db:
                for statement in _SCHEMA:
                    db.execute(statement)
        except sqlite3.Error:
            db.close()
            raise
        self._hand_over(self.path)
        self._ready = True
        return db

    def _refuse_links(self):
        """Never follow a symlink planted as the directory or the file."""
        for path in (self.directory, self.path):
            if os.path.islink(path):
                raise exception.StateError(
                    '%s ([maintenance] state_dir) is a symbolic link; '
                    'cache-maint does not follow it' % path)

    def _hand_over(self, path):
        """Run as root, give what it made to the owner of the parent.

        So that the service, run as the cache's owner, can use the state
        that a root ``cache-maint-manage`` made first.
        """
        if os.geteuid() != 0:
            return
        try:
            owner = os.stat(os.path.dirname(self.directory))
            st = os.lstat(path)
            if st.st_uid == 0 and owner.st_uid != 0:
                os.chown(path, owner.st_uid, owner.st_gid,
                         follow_symlinks=False)
        except OSError as e:
            LOG.warning('Cannot give %s to the owner of its directory: %s',
                        path, e)

    def _make_directory(self):
        """Create the state directory (readable by its owner only).

        Only the directory itself: its parent, the cache directory by
        default, is glance-api's to create.
        """
        try:
            os.mkdir(self.directory, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise exception.StateError(
                'cannot create the state directory %s ([maintenance] '
                'state_dir): %s' % (self.directory, os.strerror(
                    e.errno or errno.EIO)))
        else:
            self._hand_over(self.directory)
        if not os.path.isdir(self.directory):
            raise exception.StateError(
                'the state directory %s ([maintenance] state_dir) is not a '
                'directory' % self.directory)

    def check_usable(self):
        """Raise StateError unless the state could be used; create nothing.

        What a reload checks before it takes a new ``state_dir``: the
        directory (or, while it is not made yet, its parent) writable, and
        an existing database readable.
        """
        where = self.directory
        if not os.path.lexists(where):
            where = os.path.dirname(where)
            if not os.path.isdir(where):
                raise exception.StateError(
                    'the parent of the state directory %s ([maintenance] '
                    'state_dir) does not exist' % self.directory)
        elif not os.path.isdir(where):
            raise exception.StateError(
                'the state directory %s ([maintenance] state_dir) is not a '
                'directory' % self.directory)
        if not os.access(where, os.W_OK | os.X_OK):
            raise exception.StateError(
                '%s is not writable by this process (uid %d): the state '
                'directory %s ([maintenance] state_dir) cannot be used'
                % (where, os.getuid(), self.directory))
        if os.path.exists(self.path):
            try:
                db = sqlite3.connect(
                    'file:%s?mode=ro' % urllib.parse.quote(self.path),
                    uri=True, timeout=BUSY_TIMEOUT)
                try:
                    db.execute('SELECT count(*) FROM sqlite_master')
                finally:
                    db.close()
            except sqlite3.Error as e:
                raise exception.StateError(
                    'state database %s is not usable: %s' % (self.path, e))

    def check(self):
        """Raise StateError unless the database can be read and written."""
        with self._transaction() as db:
            db.execute('SELECT count(*) FROM pins').fetchone()
            db.execute('INSERT OR REPLACE INTO service VALUES (?, ?)',
                       ('checked_at', json.dumps(time.time())))

    def close(self):
        """Nothing stays open between uses; kept for the Cache's close()."""


def _put(db, name, value):
    db.execute('INSERT OR REPLACE INTO service VALUES (?, ?)',
               (name, json.dumps(value, sort_keys=True)))


def _loads(text):
    """A JSON value this module wrote; None (and a warning) if mangled."""
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        LOG.warning('Ignoring a value of the state database that is not the '
                    'JSON cache-maint wrote: %r', str(text)[:80])
        return None


#: What every run record holds, and of which types: a record without them
#: (mangled, or written by something else) is left out.
_RECORD_FIELDS = {'id': int, 'task': str, 'trigger': str, 'outcome': str,
                  'started_at': (int, float), 'finished_at': (int, float)}


def _records(rows):
    """The run records of ``rows``, less any that is not one."""
    records = []
    for row in rows:
        record = _loads(row[0])
        if isinstance(record, dict) and all(
                isinstance(record.get(key), kind) and not isinstance(
                    record.get(key), bool)
                for key, kind in _RECORD_FIELDS.items()):
            records.append(record)
        elif record is not None:
            LOG.warning('Ignoring a run record of the state database that '
                        'lacks what cache-maint writes: %r', row[0][:80])
    return records


def _pin(image_id, pinned_at, note):
    return {'image_id': image_id, 'pinned_at': pinned_at, 'note': note}


def from_conf(conf):
    """The state store ``[maintenance] state_dir`` names."""
    return StateStore(maintenance.state_dir(conf))
