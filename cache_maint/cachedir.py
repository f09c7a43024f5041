"""Glance's on-disk cache layout: which files are images, and removing them.

Every driver shares this layout (design.md section 4)::

    <image_id>              a complete cached image
    incomplete/<image_id>   a download in progress, renamed into place after
    invalid/<image_id>      a failed or aborted download
    queue/<image_id>        an empty file: the image is queued for caching

Only regular files in the base directory whose name is an image id are
images; the sqlite database, its journal and the lock files are not. Files
are reached through an open descriptor of their directory (subdirectories
opened with O_NOFOLLOW) and never through a symlink, so a symlink planted
anywhere in the cache can be removed but is never followed out of it.
"""

from concurrent import futures
import contextlib
import errno
import functools
import os
import re
import stat
import threading
import typing

from oslo_log import log as logging

from cache_maint import exception
from cache_maint import pacing
from cache_maint import removal

LOG = logging.getLogger(__name__)

INCOMPLETE = 'incomplete'
INVALID = 'invalid'
QUEUE = 'queue'
SUBDIRS = (INCOMPLETE, INVALID, QUEUE)

# A subdirectory that is a symlink is refused, never followed.
_SUBDIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW

# Glance's ids are canonical, lower-case UUIDs. Upper case is refused: a
# MySQL utf8 column compares without case, so an upper-case twin of an id
# would reach the lower-case image's record.
_IMAGE_ID = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')


def is_image_id(name):
    """True if ``name`` is a well-formed image id (a lower-case UUID)."""
    return isinstance(name, str) and _IMAGE_ID.fullmatch(name) is not None


def check_image_id(image_id):
    """Return ``image_id``; raise InvalidImageId unless it is well-formed.

    Every id that comes from a request goes through here before it names
    a file or a record.
    """
    if not is_image_id(image_id):
        raise exception.InvalidImageId('malformed image id %r'
                                       % (image_id,))
    return image_id


def printable(name):
    """A file name fit for a log line and for JSON: escaped, one line.

    A name that is no UTF-8 (kept by Python as lone surrogates) or holds
    control characters (a newline would forge a log line) is written with
    backslash escapes.
    """
    text = name.encode('utf-8', 'surrogateescape').decode(
        'utf-8', 'backslashreplace')
    if text.isprintable():
        return text
    return ''.join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def is_inside(directory, path):
    """True if ``path`` is ``directory`` or lies under it, links resolved.

    Where a configured path really lands: ``..`` and symlinks included.
    """
    directory = os.path.realpath(directory)
    return os.path.commonpath([directory, os.path.realpath(path)]) == directory


class CachedFile(typing.NamedTuple):
    """A cached image file as the directory scan found it.

    A named tuple: a scan makes one per image, and a frozen dataclass
    costs several times as much to build.
    """

    image_id: str
    size: int
    mtime: float
    atime: float


#: Threads that unlink many files, and the fewest files worth them. An
#: unlink mostly waits on the disk (freeing blocks, and discarding them on
#: SSDs); several in flight overlap those waits.
UNLINK_THREADS = 16
PARALLEL_FROM = 32

_pool = None
_pool_guard = threading.Lock()


def _unlink_pool():
    """The process's unlink threads, made at first use (after any fork)."""
    global _pool
    with _pool_guard:
        if _pool is None:
            _pool = futures.ThreadPoolExecutor(
                max_workers=UNLINK_THREADS, thread_name_prefix='unlink')
        return _pool


def _each(work, items):
    """[work(item) for item in items], from the unlink threads if many.

    The items go to the threads in a few chunks each, not one by one: a
    future per file would cost about as much as the unlink itself.
    """
    if len(items) < PARALLEL_FROM:
        return [work(item) for item in items]
    size = -(-len(items) // (UNLINK_THREADS * 4))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    results = []
    for done in _unlink_pool().map(
            lambda chunk: [work(item) for item in chunk], chunks):
        results.extend(done)
    return results


def _unlink(dir_fd, name, size):
    """(name, error or None, size) of unlinking ``name`` of ``size`` bytes."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError as e:
        return name, e, size
    return name, None, size


def _unlink_image(base, image_id):
    """As _unlink, for an image named by id: only a regular file goes.

    Anything else under that name is left alone, reported as NotAFile.
    """
    try:
        st = os.stat(image_id, dir_fd=base, follow_symlinks=False)
    except OSError as e:
        return image_id, e, 0
    if not stat.S_ISREG(st.st_mode):
        return image_id, removal.NotAFile(image_id), 0
    return _unlink(base, image_id, st.st_size)


def _exists(name, dir_fd):
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


class CacheDir:
    """One Glance image cache directory."""

    def __init__(self, path):
        self.path = path

    def prepare(self):
        """Check the cache directory and create its subdirectories.

        The base directory itself must already exist: creating it would
        touch something outside the cache.
        """
        self.check_usable()
        with self._open_base() as base:
            for name in SUBDIRS:
                try:
                    os.mkdir(name, dir_fd=base)  # umask applies, as in Glance
                except FileExistsError:
                    pass
                except OSError as e:
                    raise exception.CacheDirError(
                        'cannot create %s in image_cache_dir %s: %s'
                        % (name, self.path, e))

    def check_usable(self):
        """Raise ConfigError unless the base directory is there to use.

        Creates nothing, so that a start refused for another setting
        leaves the cache directory as it was.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise exception.ConfigError(
                'image_cache_dir %s does not exist; create it (glance-api '
                'creates it on start) or fix [DEFAULT] image_cache_dir'
                % self.path)
        except OSError as e:
            raise exception.ConfigError(
                'image_cache_dir %s cannot be read: %s' % (self.path, e))
        if not stat.S_ISDIR(st.st_mode):
            raise exception.ConfigError(
                'image_cache_dir %s is not a directory' % self.path)
        if not os.access(self.path, os.R_OK | os.W_OK | os.X_OK):
            raise exception.ConfigError(
                'image_cache_dir %s is not writable by this process (uid %d)'
                % (self.path, os.getuid()))

    def check(self, writable=False):
        """Raise CacheDirError unless the cache directory is still there.

        With ``writable``, it must also take unlinks: a run that deletes
        records before files must know first that the files can go.
        """
        with self._open_base() as base:
            if writable and not os.access(self.path, os.W_OK | os.X_OK):
                read_only = os.fstatvfs(base).f_flag & os.ST_RDONLY
                raise exception.CacheDirError(
                    'cannot remove files from %s: %s' % (
                        self.path, os.strerror(errno.EROFS if read_only
                                               else errno.EACCES)))

    @contextlib.contextmanager
    def _open_base(self):
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise exception.CacheDirError(
                'cannot open image cache directory %s: %s' % (self.path, e))
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _open_subdir(self, name):
        """Open a subdirectory; yield None if it is absent or not a dir."""
        with self._open_base() as base:
            try:
                fd = os.open(name, _SUBDIR_FLAGS, dir_fd=base)
            except FileNotFoundError:
                yield None
                return
            except OSError as e:
                if e.errno in (errno.ENOTDIR, errno.ELOOP):
                    LOG.warning('%s/%s is not a directory; ignoring it',
                                self.path, name)
                    yield None
                    return
                raise exception.CacheDirError(
                    'cannot open %s/%s: %s' % (self.path, name, e))
            try:
                yield fd
            finally:
                os.close(fd)

    def _scan(self, dir_fd):
        """Yield (entry, lstat) for every entry of an open directory."""
        try:
            with os.scandir(dir_fd) as entries:
                for entry in entries:
                    try:
                        yield entry, entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue    # removed while we scanned
        except OSError as e:
            raise exception.CacheDirError(
                'cannot list image cache directory %s: %s' % (self.path, e))

    def scan_images(self):
        """Return {image_id: CachedFile} for every cached image."""
        images = {}
        is_id = _IMAGE_ID.fullmatch
        with self._open_base() as base:
            for entry, st in self._scan(base):
                if stat.S_ISREG(st.st_mode) and is_id(entry.name):
                    images[entry.name] = CachedFile(
                        entry.name, st.st_size, st.st_mtime, st.st_atime)
        return images

    def filesystem(self):
        """(free bytes, size in bytes) of the cache's filesystem, now.

        Free is what an unprivileged writer such as glance-api may use.
        """
        with self._open_base() as base:
            st = os.fstatvfs(base)
        return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize

    def sync(self):
        """Make the unlinks done so far durable (fsync of the directory)."""
        with self._open_base() as base:
            try:
                os.fsync(base)
            except OSError as e:
                if e.errno != errno.EINVAL:   # no fsync of directories here
                    raise exception.CacheDirError(
                        'cannot sync image cache directory %s: %s'
                        % (self.path, e))

    def has_image(self, image_id):
        """True if a cached image file of that id is there right now."""
        with self._open_base() as base:
            try:
                st = os.stat(image_id, dir_fd=base, follow_symlinks=False)
            except FileNotFoundError:
                return False
        return stat.S_ISREG(st.st_mode)

    def remove_images(self, image_ids):
        """Unlink cached images by id.

        Only a regular file is removed, and only its link in the cache
        directory; anything else under an image's name is left alone.
        """
        outcome = removal.Outcome()
        with self._open_base() as base:
            results = _each(functools.partial(_unlink_image, base),
                            list(image_ids))
        for result in results:
            outcome.record(*result, self.path)
        return outcome.removal()

    def evict(self, files, pacer=None):
        """Unlink images the directory scan found, by their scanned entry.

        The scan saw each as a regular file, so there is no second stat: a
        check made before the unlink proves nothing about the name at the
        unlink itself, and it is one more system call per victim. Whatever
        is under the name by then, unlink removes that one name from the
        cache directory: it follows no symlink and removes no directory.
        The bytes freed are the scanned sizes. With a ``pacing.Pacer``,
        the files go at its rate (see ``_evict_paced``).
        """
        outcome = removal.Outcome()
        with self._open_base() as base:
            if pacer is not None:
                self._evict_paced(base, files, pacer, outcome)
                return outcome.removal()
            results = _each(lambda f: _unlink(base, f.image_id, f.size),
                            list(files))
        for result in results:
            outcome.record(*result, self.path)
        return outcome.removal()

    def _evict_paced(self, base, files, pacer, outcome):
        """evict, one by one, at most ``pacer.rate`` bytes a second.

        Files no larger than a step go a step's worth at a time; larger
        ones are held open, unlinked, then released in steps. On a stop
        request, or an error that dooms the directory, the files not yet
        reached stay.
        """
        small = 0
        for cached in files:
            if pacer.stopping:
                break
            held = pacing.hold(base, cached.image_id) \
                if cached.size > pacer.step else None
            result = _unlink(base, cached.image_id, cached.size)
            if not outcome.record(*result, self.path):
                pacing.close(held)
                break
            unlinked = result[1] is None
            if held is not None:
                if unlinked:
                    pacing.release(held, pacer)
                else:
                    pacing.close(held)
            elif unlinked:
                small += cached.size
                if small >= pacer.step:
                    pacer.freed(small)
                    small = 0
        if small:
            pacer.freed(small)

    def list_from(self, subdir, select=lambda st: True):
        """[(name, bytes)] of what ``remove_from`` would unlink now."""
        with self._open_subdir(subdir) as fd:
            if fd is None:
                return []
            return self._select(fd, select)

    def usage(self):
        """{subdirectory: {'files': n, 'bytes': b}} of its entries now."""
        found = {}
        for subdir in SUBDIRS:
            listed = self.list_from(subdir)
            found[subdir] = {'files': len(listed),
                             'bytes': sum(size for _, size in listed)}
        return found

    def _select(self, fd, select):
        return [(entry.name, removal.size_of(st))
                for entry, st in self._scan(fd)
                if not stat.S_ISDIR(st.st_mode) and select(st)]

    def remove_from(self, subdir, select=lambda st: True):
        """Unlink the non-directory entries of a subdirectory.

        ``select`` sees each entry's lstat and says whether it goes.
        Symlinks are removed themselves, never followed.
        """
        outcome = removal.Outcome()
        where = os.path.join(self.path, subdir)
        with self._open_subdir(subdir) as fd:
            if fd is None:
                return removal.Removal()
            doomed = self._select(fd, select)

            def unlink(entry):
                return _unlink(fd, *entry)

            # The first alone: if the directory refuses every unlink
            # (read-only, permissions), that is known after one attempt.
            if doomed and outcome.record(*unlink(doomed[0]), where):
                for result in _each(unlink, doomed[1:]):
                    outcome.record(*result, where)
        return outcome.removal()

    def queue_image(self, image_id):
        """Queue an image for caching, as Glance does.

        Returns False if it is already cached, being cached, or queued.
        """
        # The one place a name from a request becomes a new file.
        if self.has_image(check_image_id(image_id)):
            return False
        with self._open_subdir(INCOMPLETE) as incomplete:
            if incomplete is not None and _exists(image_id, incomplete):
                return False
        with self._open_subdir(QUEUE) as queue:
            if queue is None:
                raise exception.CacheDirError(
                    'the queue directory of %s is missing' % self.path)
            try:
                os.close(os.open(image_id, os.O_WRONLY | os.O_CREAT
                                 | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                                 dir_fd=queue))
            except FileExistsError:
                return False
        return True

    def unqueue(self, image_id):
        """Remove an image from the queue; False if it was not queued."""
        with self._open_subdir(QUEUE) as queue:
            if queue is None:
                return False
            try:
                st = os.stat(image_id, dir_fd=queue, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if not stat.S_ISREG(st.st_mode):
                return False
            outcome = removal.Outcome()
            outcome.record(*_unlink(queue, image_id, removal.size_of(st)),
                           os.path.join(self.path, QUEUE))
        if outcome.fatal:
            raise exception.CacheDirError(outcome.fatal)
        return bool(outcome.removed)

    def queued_images(self):
        """Return the ids queued for caching, oldest first (Glance's order)."""
        with self._open_subdir(QUEUE) as fd:
            if fd is None:
                return []
            queued = [(st.st_mtime, entry.name)
                      for entry, st in self._scan(fd)
                      if stat.S_ISREG(st.st_mode) and is_image_id(entry.name)]
        return [name for _mtime, name in sorted(queued)]
