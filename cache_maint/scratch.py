"""``cache-maint-manage scratch-cache``: a scratch cache to try things on.

It fills a new (or empty) cache directory in Glance's real format for the
configured driver, so that clean and prune have work without a glance-api:

* images with uuid4 ids, cached over the past days and read a varied number
  of times, recorded as that driver records them: rows of Glance's
  ``cached_images`` in ``cache.db`` (sqlite); ``user.hits`` and the atime of
  each file (xattr); rows of this node in Glance's ``node_reference`` and
  ``cached_images`` tables (centralized_db);
* two image files without a record, as a crash between file and record
  leaves them (with xattr, whose records are the files, two files without
  ``user.hits``);
* two fresh and two stalled partial downloads in ``incomplete/``, two failed
  ones in ``invalid/`` and two queued images in ``queue/``.

Files are sparse (``ftruncate``): Glance counts ``st_size``, and a scratch
cache of gigabytes takes next to no disk. ``random.Random(seed)`` draws
everything, so a seed makes the same cache again (its times are relative to
the moment it is made).

It never mixes with a real cache: it writes only to a directory it creates
(the last level of ``image_cache_dir``; its parent must exist) or to one
that holds an empty Glance layout and nothing else, and only to metadata
of its own: a sqlite database in that very directory, holding no record;
a centralized_db database with no record of any node and no node but this
one. A refusal writes nothing; a failure part-way (a full filesystem
included) takes back what was written, and either is one line. The build
holds Glance's clean and prune locks: no clean or prune (of a service,
glance-api or cache-maint-manage) runs between the files and their
records.
"""

import contextlib
import datetime
import decimal
import errno
import os
import random
import shutil
import sqlite3
import stat
import tempfile
import time
import typing
import urllib.parse
import uuid

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cache_maint import cachedir
from cache_maint.conf import maintenance as maintenance_opts
from cache_maint.conf import prune as prune_opts
from cache_maint.drivers import glance_tables
from cache_maint import exception
from cache_maint import locks
from cache_maint import state

KIB = 1024
MIB = 1024 ** 2
GIB = 1024 ** 3
TIB = 1024 ** 4

DEFAULT_IMAGES = 20
#: The most images a scratch cache holds: enough to see prune at work.
MAX_IMAGES = 10000
#: Bytes of the smallest scratch image.
MIN_IMAGE_SIZE = KIB
#: The default size is 1.5 times image_cache_max_size (so the first prune
#: has work), at most this much.
DEFAULT_SIZE_FACTOR = 1.5
DEFAULT_SIZE_CAP = 16 * GIB
#: The largest --size: no file of it can outgrow ext4's largest file (16
#: TiB less a block with 4 KiB blocks), and no cache to try things on
#: needs more.
MAX_SIZE = 16 * TIB

#: What a sparse file takes whatever its size, counted in blocks of the
#: filesystem: its inode's overflow and extended attributes, its directory
#: entry, its record.
BLOCKS_PER_FILE = 4
#: What else must stay free: the metadata database and its journal, the
#: lock files, and room for whatever else writes on the filesystem.
MARGIN = 16 * MIB
#: Inodes beyond one per file: the cache directory and its three
#: subdirectories, the database and its journal, the lock files, spares.
EXTRA_INODES = 16
#: Bytes of the sparse probe that tells whether the filesystem keeps
#: sparse files (written and removed, only when the logical size does not
#: fit).
PROBE_SIZE = MIB

#: Seconds the write of the records waits for a lock on the sqlite
#: database: it is the scratch cache's own, made moments before, and
#: only a glance-api starting on the directory might hold it a moment.
SQLITE_WRITE_TIMEOUT = 10

#: Rows a refusal counts, at most, in a database that is not empty.
COUNTED = 1000

#: How many of each extra there are: untracked images, fresh and stalled
#: partial downloads, failed downloads, queued images.
EXTRAS = 2

#: Images were cached over this many seconds before now.
SPREAD = 7 * 86400

#: Seconds to wait for a clean or prune run elsewhere to end.
LOCK_WAIT = 60

#: Glance creates files with open(path, 'wb'): 0o666 less the umask, 0o644
#: with the usual umask. Never more permissive than that.
FILE_MODE = 0o644

# The statement Glance's sqlite driver records a cached image with (its
# checksum column is never written).
_SQLITE_INSERT = ('INSERT INTO cached_images (image_id, last_accessed, '
                  'last_modified, hits, size) VALUES (?, ?, ?, ?, ?)')

# The error Glance's xattr driver leaves on a failed download (user.error):
# a checksum mismatch (glance/image_cache/__init__.py) or an aborted read.
_ERRORS = ("Checksum verification failed. Aborted caching of image '%s'.",
           'incomplete fetch')

#: Files Glance and cache-maint may leave in an empty cache directory: the
#: lock files of oslo.concurrency, when lock_path is the cache directory.
LOCK_FILES = frozenset((
    'glance-cache', 'glance-cache-clean', 'glance-cache-prune',
    'image_cache_db_init', 'sqlite_centralized_migrate',
    locks.SERVICE_LOCK_NAME))

#: What cache-maint's state directory in the cache directory may hold: its
#: state database, with SQLite's journal files.
STATE_FILES = frozenset(state.FILENAME + suffix
                        for suffix in ('', '-journal', '-wal', '-shm'))

#: Bytes of the service lock's content, the pid of the service that held it
#: last (with a newline), at most.
PID_BYTES = 32


class Image(typing.NamedTuple):
    """A cached image: cached (its mtime) and last read at epoch seconds."""

    image_id: str
    size: int
    cached_at: float
    last_accessed: float
    hits: int


class Partial(typing.NamedTuple):
    """A file of incomplete/ or invalid/, named by its image id."""

    image_id: str
    size: int
    mtime: float
    note: str       # 'fresh' or 'stalled'; for a failed one, its error


class Plan(typing.NamedTuple):
    """Everything a scratch cache holds."""

    images: list        # Images, recorded
    untracked: list     # Images, files without a record
    incomplete: list    # Partials, EXTRAS fresh then EXTRAS stalled
    invalid: list       # Partials, failed downloads
    queued: list        # (image_id, mtime), empty files

    def files(self):
        """How many files it writes."""
        return (len(self.images) + len(self.untracked)
                + len(self.incomplete) + len(self.invalid) + len(self.queued))

    def bytes(self):
        """Bytes of its files, as ``st_size`` counts them."""
        return sum(item.size for item in self.images + self.untracked
                   + self.incomplete + self.invalid)


def parse_size(text):
    """Bytes from ``1536M``, ``1.5G``, ``800K`` or whole bytes.

    The suffixes are [prune]'s (K, M, G, T, powers of 1024). A number with
    decimals needs one: bytes are whole, so ``1.5`` and ``5.0`` alike are
    refused, and a fraction of a byte (``0.3K``) is dropped. The arithmetic
    is exact (decimal), and a size beyond MAX_SIZE is refused. Raises
    ConfigError naming ``--size``.
    """
    text = str(text)
    number, suffix = _split_number(text.strip())
    try:
        scale = prune_opts.Bytes()('1' + suffix) if number else None
    except ValueError:
        scale = None
    if scale is None or (scale == 1 and '.' in number):
        raise exception.ConfigError(
            '--size %r is not a size (such as 1536M, 1.5G, 800K or whole '
            'bytes; a number with decimals needs a suffix)' % (_cut(text),))
    with decimal.localcontext() as context:
        # Digits enough for the product to be exact.
        context.prec = len(number) + len(str(scale)) + 1
        size = decimal.Decimal(number) * scale
    if size > MAX_SIZE:
        raise exception.ConfigError(
            '--size %r is more than a scratch cache holds: give at most %d '
            '(%dT)' % (_cut(text), MAX_SIZE, MAX_SIZE // TIB))
    return int(size)


def _split_number(text):
    """('1.5', 'G') from '1.5G'; ('', text) if it starts with no number."""
    end = 0
    while end < len(text) and (text[end].isdigit() and text[end].isascii()
                               or text[end] == '.' and '.' not in text[:end]):
        end += 1
    number = text[:end]
    if not number.strip('.'):
        return '', text
    return number, text[end:]


def _cut(text, most=40):
    """``text``, cut short to be quoted in a one-line message."""
    return text if len(text) <= most else text[:most - 3] + '...'


def default_size(conf, images):
    """1.5 times image_cache_max_size, within reason."""
    wanted = int(conf.image_cache_max_size * DEFAULT_SIZE_FACTOR)
    return max(min(wanted, DEFAULT_SIZE_CAP),
               (images + EXTRAS) * MIN_IMAGE_SIZE)


def check_counts(size, images):
    """Raise ConfigError unless ``size`` and ``images`` make a cache."""
    if not 1 <= images <= MAX_IMAGES:
        raise exception.ConfigError(
            '--images %d: give from 1 to %d images' % (images, MAX_IMAGES))
    if size <= 0:
        raise exception.ConfigError('--size %d: a cache of no bytes has '
                                    'nothing to prune' % size)
    if size > MAX_SIZE:
        raise exception.ConfigError(
            '--size %d is more than a scratch cache holds: give at most %d '
            '(%dT)' % (size, MAX_SIZE, MAX_SIZE // TIB))
    least = (images + EXTRAS) * MIN_IMAGE_SIZE
    if size < least:
        raise exception.ConfigError(
            '--size %d is too small for %d images and %d untracked files of '
            'at least %d bytes each: give at least %d, or fewer --images'
            % (size, images, EXTRAS, MIN_IMAGE_SIZE, least))


def plan(rng, size, images, now, stall_time):
    """What to write: ``images`` recorded images and the extras.

    The images and the untracked files add up to ``size`` bytes, in sizes
    of a log-normal spread. Each image was cached some time in the past
    SPREAD seconds; a quarter were never read since, the others read a
    long-tailed number of times, last at a time of their own: least
    recently used and least frequently used order them differently.
    """
    ids = set()

    def new_id():
        while True:
            image_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if image_id not in ids:
                ids.add(image_id)
                return image_id

    count = images + EXTRAS
    sizes = _spread(size, [rng.lognormvariate(0, 0.75) for _ in range(count)],
                    MIN_IMAGE_SIZE)
    cached = []
    for image_size in sizes[:images]:
        cached_at = now - rng.uniform(3600, SPREAD)
        hits = 0 if rng.random() < 0.25 else min(
            int(rng.paretovariate(0.8)), 999)
        last_accessed = (rng.uniform(cached_at, now - 60) if hits
                         else cached_at)
        cached.append(Image(new_id(), image_size, cached_at, last_accessed,
                            hits))
    untracked = []
    for image_size in sizes[images:]:
        # Left by a crash between a download and its record, days ago.
        written = now - rng.uniform(86400, 3 * 86400)
        untracked.append(Image(new_id(), image_size, written, written, 0))
    typical = max(1, size // count)

    def part():
        return max(1, int(typical * rng.uniform(0.05, 0.95)))

    # clean removes an incomplete file once its mtime is older than
    # max(stall_time, its in-flight grace of 10 s).
    stalled_after = max(stall_time, 10)
    fresh = [Partial(new_id(), part(),
                     now - rng.uniform(0, min(300, stalled_after / 2)),
                     'fresh') for _ in range(EXTRAS)]
    stalled = [Partial(new_id(), part(),
                       max(0, now - stalled_after - rng.uniform(3600,
                                                                2 * 86400)),
                       'stalled') for _ in range(EXTRAS)]
    invalid = []
    for n in range(EXTRAS):
        image_id = new_id()
        error = _ERRORS[n % len(_ERRORS)]
        invalid.append(Partial(image_id, part(),
                               now - rng.uniform(600, 2 * 86400),
                               error % image_id if '%s' in error else error))
    queued = sorted(((new_id(), now - rng.uniform(60, 3600))
                     for _ in range(EXTRAS)), key=lambda q: q[1])
    return Plan(cached, untracked, fresh + stalled, invalid, queued)


def _spread(total, weights, least):
    """``total`` split by ``weights``, at least ``least`` each, exactly."""
    rest = total - least * len(weights)
    whole = sum(weights)
    shares = [least + int(rest * w / whole) for w in weights]
    shares[weights.index(max(weights))] += total - sum(shares)
    return shares


def build(conf, cache, size=None, images=DEFAULT_IMAGES, seed=None,
          now=None):
    """Fill the scratch cache; return what it holds (see ``summary``).

    ``cache`` is a ``cache_maint.cache.Cache`` of ``conf``; its directory
    need not exist. Raises ConfigError, CacheDirError or MetadataError in
    one line, having written nothing, when the cache cannot be made there.
    """
    if size is None:
        size = default_size(conf, images)
    check_counts(size, images)
    if seed is None:
        seed = random.SystemRandom().randrange(2 ** 32)
    rng = random.Random(seed)
    now = time.time() if now is None else now
    content = plan(rng, size, images, now, conf.image_cache_stall_time)
    path = os.path.abspath(conf.image_cache_dir)
    records = _RECORDS[cache.metadata.name](conf, cache.metadata)
    exists = _check_place(path)
    if exists:
        _refuse_unless_empty(path, cache, records)
    records.check()
    _check_room(path if exists else os.path.dirname(path), content, size)
    try:
        _fill(conf, cache, content, records, path, exists)
    except OSError as e:
        # What the steps do not say themselves (a full filesystem), once
        # what was written is taken back.
        raise exception.CacheDirError(
            'cannot write the scratch cache %s: %s%s' % (
                path, e.strerror or e,
                ' (%s)' % cachedir.printable(str(e.filename))
                if e.filename else ''))
    return summary(conf, cache, content, seed)


def _fill(conf, cache, content, records, path, exists):
    """Write ``content`` under Glance's locks; take it back on a failure."""
    created = _make_directory(path, exists)
    try:
        cache.files.prepare()
        task_locks = locks.TaskLocks(conf)
        with task_locks.hold('clean', LOCK_WAIT), \
                task_locks.hold('prune', LOCK_WAIT):
            try:
                # A glance-api or another scratch-cache may have come
                # first: what is there now is not ours to take back.
                _refuse_unless_empty(path, cache, records)
                records.check()
            except exception.CacheMaintError:
                created = False
                raise
            records.prepare()
            written = _Written()
            try:
                _write_files(cache, content, records.in_files, written)
                records.write(content.images)
            except BaseException:
                written.undo(path)
                raise
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise


def _check_place(path):
    """True if ``path`` exists as a directory; raise if it cannot be one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            raise exception.CacheDirError(
                'cannot make the scratch cache %s: its parent directory %s '
                'does not exist (scratch-cache creates the last level only)'
                % (path, parent))
        if not os.access(parent, os.W_OK | os.X_OK):
            read_only = os.statvfs(parent).f_flag & os.ST_RDONLY
            raise exception.CacheDirError(
                'cannot create %s: its parent directory %s is not writable '
                '(%s)' % (path, parent, os.strerror(
                    errno.EROFS if read_only else errno.EACCES)))
        return False
    except OSError as e:
        raise exception.CacheDirError('cannot look at %s: %s' % (path, e))
    if stat.S_ISLNK(st.st_mode):
        raise exception.CacheDirError(
            'refusing to fill %s: it is a symlink (to %s); give '
            'image_cache_dir as the directory itself'
            % (path, os.readlink(path)))
    if not stat.S_ISDIR(st.st_mode):
        raise exception.CacheDirError(
            'refusing to fill %s: it exists and is not a directory' % path)
    return True


def _check_room(where, content, size):
    """Raise ConfigError unless the filesystem of ``where`` has room.

    The files are sparse (``ftruncate``): whatever its size, a file takes a
    few blocks of metadata (BLOCKS_PER_FILE) and an inode, so that is what
    is counted, with MARGIN and EXTRA_INODES beside: a scratch cache of
    150 MiB fits on a tmpfs of 200 MiB. Only on a filesystem that keeps
    no sparse file does each file take its size too; that is asked of the
    filesystem (one sparse probe file, removed at once) only when the
    logical size would not fit anyway.
    """
    try:
        st = os.statvfs(where)
    except OSError as e:
        raise exception.CacheDirError('cannot look at %s: %s' % (where, e))
    files = content.files()
    inodes = files + EXTRA_INODES
    # f_files is 0 where inodes are made as needed (btrfs): no limit.
    if st.f_files and inodes > st.f_favail:
        raise exception.ConfigError(
            'a scratch cache of %d files needs %d free inodes, and the '
            'filesystem of %s has %d: give fewer --images'
            % (files, inodes, where, st.f_favail))
    free = st.f_bavail * st.f_frsize
    needed = files * BLOCKS_PER_FILE * st.f_frsize + MARGIN
    if needed + content.bytes() <= free:
        return
    if _sparse_files(where):
        counted, remedy = ('a few blocks a file, as they are sparse, and a '
                           'margin of %d' % MARGIN), 'fewer --images'
    else:
        needed += content.bytes()
        counted, remedy = ('their size: the filesystem keeps no sparse '
                           'file'), 'a smaller --size'
    if needed > free:
        raise exception.ConfigError(
            'a scratch cache of %d files (%d bytes of images) needs %d bytes '
            'free on the filesystem of %s (%s), and it has %d: give %s'
            % (files, size, needed, where, counted, free, remedy))


def _sparse_files(where):
    """True if a file ``ftruncate`` makes in ``where`` takes no blocks."""
    try:
        fd, probe = tempfile.mkstemp(prefix='.scratch-cache-probe-',
                                     dir=where)
    except OSError as e:
        raise exception.CacheDirError('cannot write in %s: %s'
                                      % (where, e.strerror or e))
    try:
        os.ftruncate(fd, PROBE_SIZE)
        return os.fstat(fd).st_blocks * 512 < PROBE_SIZE // 2
    except OSError as e:
        raise exception.CacheDirError('cannot write in %s: %s'
                                      % (where, e.strerror or e))
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def _refuse_unless_empty(path, cache, records):
    """Raise unless ``path`` holds an empty Glance layout and nothing else.

    That is: empty incomplete/, invalid/ and queue/ directories, empty lock
    files (the service lock may hold the pid of the service that held it
    last), cache-maint's state directory holding its state database only,
    its lock directory holding such lock files only, and the metadata
    database when it holds no record. Nothing is followed: a symlink is
    foreign.
    """
    found = _foreign_entry(path, records.allowed_files())
    if found is not None:
        raise exception.CacheDirError(
            'refusing to fill %s: it is not empty (it holds %s); '
            'scratch-cache fills only a new directory or an empty Glance '
            'layout' % (path, found))


def _foreign_entry(path, allowed_files):
    """What is no part of an empty layout, printable, or None."""
    def top(directory, name, st):
        return _lock_file(directory, name, st) or (
            name in allowed_files and stat.S_ISREG(st.st_mode))

    subdirs = dict.fromkeys(cachedir.SUBDIRS, _no_entry)
    subdirs[maintenance_opts.DEFAULT_STATE_DIR_NAME] = _state_file
    subdirs[locks.XATTR_LOCK_DIR] = _lock_file
    return _first_foreign(path, top, subdirs)


def _no_entry(directory, name, st):
    return False


def _state_file(directory, name, st):
    return name in STATE_FILES and stat.S_ISREG(st.st_mode)


def _first_foreign(path, allowed, subdirs=None):
    """The first entry of ``path`` that ``allowed`` refuses, or None.

    ``allowed(path, name, lstat)`` says whether an entry belongs; a
    directory named in ``subdirs`` belongs if every entry of it does, as
    its own function there says.
    """
    subdirs = subdirs or {}
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if entry.name in subdirs and stat.S_ISDIR(st.st_mode):
                    inside = _first_foreign(entry.path, subdirs[entry.name])
                    if inside is not None:
                        return '%s/%s' % (cachedir.printable(entry.name),
                                          inside)
                elif not allowed(path, entry.name, st):
                    return cachedir.printable(entry.name) + _what(entry.name,
                                                                  st)
    except OSError as e:
        raise exception.CacheDirError('cannot list %s: %s' % (path, e))
    return None


def _what(name, st):
    """Why a symlink or a lock file is foreign, in a few words, or ''."""
    if stat.S_ISLNK(st.st_mode):
        return ' (a symlink)'
    if name in LOCK_FILES and stat.S_ISREG(st.st_mode) and st.st_size:
        return ' (a lock file of %d bytes)' % st.st_size
    return ''


def _lock_file(directory, name, st):
    """True for a lock file as the lock leaves it: empty and regular.

    cache-maint's service lock holds the pid of its last holder.
    """
    if name not in LOCK_FILES or not stat.S_ISREG(st.st_mode):
        return False
    if st.st_size == 0:
        return True
    if name != locks.SERVICE_LOCK_NAME or st.st_size > PID_BYTES:
        return False
    try:
        fd = os.open(os.path.join(directory, name), os.O_RDONLY
                     | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        held = os.read(fd, PID_BYTES + 1)
    except OSError:
        return False
    finally:
        os.close(fd)
    return held.rstrip(b'\n').isdigit() and held.count(b'\n') <= 1


def _make_directory(path, exists):
    """Create the cache directory unless it exists; True if created."""
    if exists:
        return False
    try:
        os.mkdir(path)      # the umask applies, as in Glance
    except FileExistsError:
        raise exception.CacheDirError(
            'refusing to fill %s: it appeared meanwhile' % path)
    except OSError as e:
        raise exception.CacheDirError('cannot create %s: %s'
                                      % (path, e.strerror or e))
    return True


class _Written:
    """The files written so far, to take back after a failure."""

    def __init__(self):
        self.paths = []

    def undo(self, path):
        for name in reversed(self.paths):
            try:
                os.unlink(os.path.join(path, name))
            except OSError:
                pass


def _write_files(cache, content, hits_in_files, written):
    """Write every file of ``content``, images last but for queued ones."""
    path = cache.path
    for partial in content.incomplete:
        _write(path, os.path.join(cachedir.INCOMPLETE, partial.image_id),
               partial.size, partial.mtime, partial.mtime, (), written)
    for partial in content.invalid:
        # Glance's xattr driver leaves the error on a failed download.
        error = ((('user.error', partial.note.encode()),) if hits_in_files
                 else ())
        _write(path, os.path.join(cachedir.INVALID, partial.image_id),
               partial.size, partial.mtime, partial.mtime, error, written)
    for image_id, mtime in content.queued:
        if not cache.files.queue_image(image_id):
            raise exception.CacheDirError('cannot queue %s in %s'
                                          % (image_id, path))
        written.paths.append(os.path.join(cachedir.QUEUE, image_id))
        os.utime(os.path.join(path, cachedir.QUEUE, image_id),
                 (mtime, mtime), follow_symlinks=False)
    for image in content.untracked:
        _write(path, image.image_id, image.size, image.last_accessed,
               image.cached_at, (), written)
    for image in content.images:
        hits = ((('user.hits', str(image.hits).encode()),) if hits_in_files
                else ())
        _write(path, image.image_id, image.size, image.last_accessed,
               image.cached_at, hits, written)


def _write(path, name, size, atime, mtime, xattrs, written):
    """A sparse file of ``size`` bytes with these times and xattrs."""
    where = os.path.join(path, name)
    try:
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                     | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as e:
        raise exception.CacheDirError('cannot create %s: %s'
                                      % (where, e.strerror or e))
    written.paths.append(name)
    try:
        os.ftruncate(fd, size)
        for key, value in xattrs:
            os.setxattr(fd, key, value)
        os.utime(fd, (atime, mtime))
    except OSError as e:
        raise exception.CacheDirError('cannot write %s: %s'
                                      % (where, e.strerror or e))
    finally:
        os.close(fd)


class _Records:
    """How a driver's records of a scratch cache are checked and written."""

    #: True if the records are the files' own (xattr).
    in_files = False

    def __init__(self, conf, driver):
        self.conf = conf
        self.driver = driver

    def allowed_files(self):
        """Names of the metadata files an empty cache directory may hold."""
        return frozenset()

    def check(self):
        """Raise unless the metadata holds no record; write nothing."""

    def prepare(self):
        """Create the metadata store, as glance-api would at its start."""

    def write(self, images):
        """Record ``images`` as Glance's driver does."""


class _SqliteRecords(_Records):
    """Rows of Glance's cached_images, in the cache's own cache.db."""

    def _inside(self):
        """True if the database lies in the cache directory itself.

        Links resolved: Glance joins image_cache_sqlite_db to the cache
        directory, so an absolute path, ``..`` or a symlink may land on
        another cache's database.
        """
        return os.path.dirname(os.path.realpath(self.driver.db_path)) == (
            os.path.realpath(self.conf.image_cache_dir))

    def allowed_files(self):
        if self._inside():
            return frozenset((os.path.basename(self.driver.db_path),))
        return frozenset()

    def check(self):
        db_path = self.driver.db_path
        if not self._inside():
            raise exception.ConfigError(
                'refusing to fill the cache: its database %s ([DEFAULT] '
                'image_cache_sqlite_db) lands on %s, outside image_cache_dir '
                '%s; a scratch cache keeps its records in its own directory'
                % (db_path, os.path.realpath(db_path),
                   os.path.realpath(self.conf.image_cache_dir)))
        self.driver.check()
        if not os.path.lexists(db_path):
            return
        if not os.path.isfile(db_path):
            raise exception.CacheDirError(
                'refusing to fill the cache: its database %s is not a file'
                % db_path)
        try:
            recorded = self.driver.recorded_ids()
        except exception.MetadataError as e:
            raise exception.MetadataError(
                'refusing to fill the cache: its database %s is no empty '
                'Glance cache database (%s)' % (db_path, e))
        if recorded:
            raise exception.MetadataError(
                'refusing to fill the cache: its database %s records %d '
                'cached images' % (db_path, len(recorded)))

    def prepare(self):
        # Glance's schema, created under Glance's lock, as glance-api does.
        self.driver.setup()

    def write(self, images):
        uri = 'file:%s?mode=rw' % urllib.parse.quote(self.driver.db_path)
        try:
            conn = sqlite3.connect(uri, uri=True,
                                   timeout=SQLITE_WRITE_TIMEOUT,
                                   isolation_level=None)
            try:
                conn.execute('BEGIN IMMEDIATE')
                conn.executemany(_SQLITE_INSERT, [
                    (i.image_id, i.last_accessed, i.cached_at, i.hits,
                     i.size) for i in images])
                conn.execute('COMMIT')
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise exception.MetadataError(
                'cannot record the scratch images in %s: %s'
                % (self.driver.db_path, e))


class _XattrRecords(_Records):
    """user.hits and the atime of each file: written with the files."""

    in_files = True

    def prepare(self):
        # The driver's probe: user extended attributes must work here.
        self.driver.setup()


class _CentralRecords(_Records):
    """Rows of this node in Glance's node_reference and cached_images.

    Only in a database of their own: no Glance table, no row in
    cached_images (of any node), no node but this one in node_reference.
    """

    def __init__(self, conf, driver):
        super().__init__(conf, driver)
        self._missing = None

    @contextlib.contextmanager
    def _database(self, doing):
        """An error of the database as the driver words it: one line."""
        try:
            yield
        except sa_exc.SQLAlchemyError as e:
            raise self.driver.failure(e, doing)

    def check(self):
        if not self.conf.worker_self_reference_url:
            raise exception.ConfigError(
                '[DEFAULT] worker_self_reference_url is not set; the '
                'centralized_db driver records the scratch images under '
                "this node's URL")
        engine = self.driver.engine
        with self._database('read the schema'):
            present = set(sa.inspect(engine).get_table_names())
        glance = sorted(present & set(glance_tables.GLANCE_MARKERS))
        if glance:
            raise exception.ConfigError(
                'refusing to write scratch records in the database of '
                '[database] connection: it is a Glance database (it has '
                'the %s table); point [database] connection at a database '
                'of its own (such as sqlite:////tmp/cache-maint/cache.db)'
                % glance[0])
        self._missing = [t for t in glance_tables.TABLES
                         if t.name not in present]
        with self._database('read the cached images and nodes'), \
                engine.connect() as conn:
            self._refuse_others(conn, present)
        if not self._missing:
            self.driver.check()

    def _refuse_others(self, conn, present):
        """Raise unless the tables hold no record and no other node."""
        url = self.conf.worker_self_reference_url
        held = []
        if glance_tables.cached_images.name in present:
            rows = conn.execute(sa.select(sa.func.count()).select_from(
                sa.select(glance_tables.cached_images.c.id)
                .limit(COUNTED + 1).subquery())).scalar()
            if rows:
                held.append('%s cached image record%s' % (
                    _counted(rows), '' if rows == 1 else 's'))
        if glance_tables.node_reference.name in present:
            column = glance_tables.node_reference.c.node_reference_url
            # Compared here, exactly: MySQL's collations ignore case.
            others = [registered for registered in conn.execute(
                sa.select(column).order_by(column).limit(COUNTED + 2)
            ).scalars() if registered != url]
            if others:
                held.append('%s other node%s in node_reference (%s%s)' % (
                    _counted(len(others)), '' if len(others) == 1 else 's',
                    ', '.join(others[:3]), ', ...' if others[3:] else ''))
        if held:
            raise exception.ConfigError(
                'refusing to write scratch records in the database of '
                '[database] connection: it holds %s; a scratch cache goes '
                'only into an empty database, or one where this node (%s) '
                'alone is registered' % (' and '.join(held), url))

    def prepare(self):
        if self._missing:
            # db-sync's own code: it creates the tables that are missing.
            self.driver.sync_schema()

    def write(self, images):
        nodes = glance_tables.node_reference
        url = self.conf.worker_self_reference_url
        with self._database('record the scratch images'), \
                self.driver.engine.begin() as conn:
            # Again, in the transaction that writes: another node may have
            # come since the check.
            self._refuse_others(conn, {t.name for t in glance_tables.TABLES})
            node = conn.execute(
                sa.select(nodes.c.node_reference_id).where(
                    nodes.c.node_reference_url == url)).scalar()
            if node is None:
                # As glance-api registers itself at its start.
                node = conn.execute(nodes.insert().values(
                    node_reference_url=url)).inserted_primary_key[0]
            conn.execute(glance_tables.cached_images.insert(), [
                {'image_id': i.image_id,
                 'last_accessed': _naive_utc(i.last_accessed),
                 'last_modified': _naive_utc(i.cached_at),
                 'size': i.size, 'hits': i.hits, 'checksum': None,
                 'node_reference_id': node} for i in images])


def _counted(number):
    """``number``, or "more than COUNTED" if it went past that."""
    return 'more than %d' % COUNTED if number > COUNTED else str(number)


def _naive_utc(epoch):
    """An epoch as Glance stores its times: a naive UTC datetime."""
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).replace(tzinfo=None)


_RECORDS = {'sqlite': _SqliteRecords, 'xattr': _XattrRecords,
            'centralized_db': _CentralRecords}


def summary(conf, cache, content, seed):
    """What the scratch cache holds, as ``--format json`` prints it."""
    size = sum(i.size for i in content.images + content.untracked)
    limit = conf.image_cache_max_size
    stalled = [p for p in content.incomplete if p.note == 'stalled']
    return {
        'image_cache_dir': cache.path,
        'driver': cache.metadata.name,
        'seed': seed,
        'images': {'files': len(content.images),
                   'bytes': sum(i.size for i in content.images)},
        'untracked': {'files': len(content.untracked),
                      'bytes': sum(i.size for i in content.untracked)},
        'size_bytes': size,
        'max_size_bytes': limit,
        'over_limit_bytes': max(0, size - limit),
        'incomplete': {'files': len(content.incomplete),
                       'bytes': sum(p.size for p in content.incomplete),
                       'stalled': len(stalled),
                       'stalled_bytes': sum(p.size for p in stalled)},
        'invalid': {'files': len(content.invalid),
                    'bytes': sum(p.size for p in content.invalid)},
        'queued': {'files': len(content.queued), 'bytes': 0},
        'stall_time': conf.image_cache_stall_time,
    }
