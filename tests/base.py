"""Test helpers: a configuration, and Glance-format caches on real disks."""

import contextlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid

from oslo_config import cfg

from cache_maint.api import deploy
from cache_maint import cache as cm_cache
from cache_maint import cachedir
import cache_maint.cmd  # noqa: F401  (selects oslo.service's backend first)
from cache_maint import conf as cm_conf
from cache_maint.drivers import sqlite as sqlite_driver
from cache_maint import locks
from cache_maint import runs
from cache_maint import singleflight

KIB = 1024


def make_conf(cache_dir, args=(), **overrides):
    """A parsed ConfigOpts for ``cache_dir`` with the sqlite driver.

    ``group__name=value`` overrides an option of a group, ``name=value``
    one of [DEFAULT].
    """
    conf = cfg.ConfigOpts()
    cm_conf.register_opts(conf)
    conf(list(args), project='cache-maint', default_config_files=[])
    conf.set_override('image_cache_dir', str(cache_dir))
    conf.set_override('image_cache_driver', 'sqlite')
    for key, value in overrides.items():
        group, _, name = key.rpartition('__')
        conf.set_override(name, value, group=group or None)
    return conf


def make_app(conf):
    """The API application over the cache ``conf`` names, set up."""
    cache = cm_cache.Cache.from_conf(conf)
    cache.setup()
    runner = runs.TaskRunner(conf, cache)
    return deploy.loadapp(conf, cache, runner, singleflight.Flights(runner))


@contextlib.contextmanager
def read_only(path):
    """Make a directory unwritable for this process, even as root.

    Root ignores file modes, so as root the directory becomes a tmpfs
    mount holding a copy of its files, remounted read-only.
    """
    path = str(path)
    if os.getuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield
        finally:
            os.chmod(path, 0o755)
        return
    saved = path + '.saved'
    os.rename(path, saved)
    os.mkdir(path)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64m', 'tmpfs',
                    path], check=True)
    try:
        subprocess.run(['cp', '-a', saved + '/.', path], check=True)
        subprocess.run(['mount', '-o', 'remount,ro', path], check=True)
        yield
    finally:
        subprocess.run(['umount', path], check=True)
        os.rmdir(path)
        os.rename(saved, path)


@contextlib.contextmanager
def task_held(conf, task):
    """Hold a task's locks from another thread; yield a release Event."""
    inside, release = threading.Event(), threading.Event()

    def hold():
        with locks.TaskLocks(conf).hold(task, wait=0):
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(30)
    try:
        yield release
    finally:
        release.set()
        holder.join()


@contextlib.contextmanager
def lock_held_by_another_process(lock_path, name):
    """Hold an fcntl lock file the way glance-api does, from a process."""
    script = textwrap.dedent('''
        import sys
        from oslo_concurrency import lockutils
        lock = lockutils.external_lock(sys.argv[2], lock_path=sys.argv[1])
        lock.acquire()
        print('held', flush=True)
        sys.stdin.readline()
    ''')
    holder = subprocess.Popen(
        [sys.executable, '-c', script, str(lock_path), name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        yield
    finally:
        holder.communicate('\n', timeout=30)


def unlink_fails_for(monkeypatch, victim):
    """Make os.unlink refuse one name, as an immutable file would."""
    real_unlink = os.unlink

    def unlink(name, *args, **kwargs):
        if name == victim:
            raise PermissionError(1, 'Operation not permitted', name)
        return real_unlink(name, *args, **kwargs)

    monkeypatch.setattr(os, 'unlink', unlink)


def new_id():
    return str(uuid.uuid4())


class FileCache:
    """A Glance image cache directory, built file by file for a test.

    Subclasses record the metadata the way one Glance driver does.
    """

    driver = None
    #: True when a file carries its own metadata (atime and xattrs).
    records_in_files = False

    def __init__(self, path):
        self.path = str(path)
        for sub in ('incomplete', 'invalid', 'queue'):
            os.makedirs(os.path.join(self.path, sub), exist_ok=True)

    def conf(self, **overrides):
        """A configuration for this cache and its driver."""
        return make_conf(self.path, image_cache_driver=self.driver,
                         **overrides)

    def _write(self, path, size, mtime=None, atime=None):
        with open(path, 'wb') as f:
            f.write(b'x' * size)
        if mtime is not None or atime is not None:
            mtime = time.time() if mtime is None else mtime
            os.utime(path, (mtime if atime is None else atime, mtime))

    def add_image(self, size=KIB, last_accessed=None, hits=0,
                  tracked=True, mtime=None, image_id=None):
        """Cache an image: its file, and (if tracked) its record."""
        image_id = image_id or new_id()
        now = time.time()
        accessed = now if last_accessed is None else last_accessed
        path = os.path.join(self.path, image_id)
        self._write(path, size, now - 3600 if mtime is None else mtime,
                    accessed if self.records_in_files else None)
        if tracked:
            self.record([(image_id, accessed, size, hits)])
        return image_id

    def add_images(self, count, size=KIB, first_accessed=1000.0):
        """Many tracked images at once, accessed one second apart."""
        rows = [(new_id(), first_accessed + i, size, 0)
                for i in range(count)]
        mtime = time.time() - 3600
        for image_id, accessed, _size, _hits in rows:
            self._write(os.path.join(self.path, image_id), size, mtime,
                        accessed if self.records_in_files else None)
        self.record(rows)
        return [row[0] for row in rows]

    def add_row(self, image_id=None, size=KIB, last_accessed=None):
        """A record whose file does not exist."""
        image_id = image_id or new_id()
        accessed = time.time() if last_accessed is None else last_accessed
        self.record([(image_id, accessed, size, 0)])
        return image_id

    def add_invalid(self, size=KIB, name=None):
        name = name or new_id()
        self._write(os.path.join(self.path, 'invalid', name), size)
        return name

    def add_incomplete(self, size=KIB, age=0, name=None):
        name = name or new_id()
        self._write(os.path.join(self.path, 'incomplete', name), size,
                    time.time() - age)
        return name

    def queue(self, image_id=None, age=0):
        image_id = image_id or new_id()
        path = os.path.join(self.path, 'queue', image_id)
        self._write(path, 0, time.time() - age)
        return image_id

    def images(self):
        """Names of the regular files in the base dir that are image ids."""
        return {name for name in os.listdir(self.path)
                if cachedir.is_image_id(name)
                and os.path.isfile(os.path.join(self.path, name))}

    def listdir(self, sub=''):
        return set(os.listdir(os.path.join(self.path, sub)))

    def size(self):
        return sum(os.path.getsize(os.path.join(self.path, name))
                   for name in self.images())

    def record(self, rows):
        """Record (image_id, last_accessed, size, hits) rows."""
        raise NotImplementedError

    def rows(self):
        """{image_id: (last_accessed, size, hits)} of the records."""
        raise NotImplementedError


class SqliteCache(FileCache):
    """Recorded as Glance 33's sqlite driver does, in cache.db."""

    driver = 'sqlite'

    def __init__(self, path, db_name='cache.db'):
        super().__init__(path)
        self.db_path = os.path.join(self.path, db_name)
        with self._db() as conn:
            conn.executescript(sqlite_driver.SCHEMA)

    def _db(self):
        return sqlite3.connect(self.db_path, isolation_level=None)

    def record(self, rows):
        with self._db() as conn:
            conn.executemany(
                'INSERT INTO cached_images (image_id, last_accessed, '
                'last_modified, hits, size) VALUES (?, ?, ?, ?, ?)',
                [(image_id, accessed, accessed, hits, size)
                 for image_id, accessed, size, hits in rows])

    def rows(self):
        with self._db() as conn:
            return {r[0]: r[1:] for r in conn.execute(
                'SELECT image_id, last_accessed, size, hits '
                'FROM cached_images')}
