"""Who may run a task: one run of clean and one of prune per cache.

Two locks guard each task. glance-api's own ``POST /v2/cache/clean|prune``
take the fcntl locks ``glance-cache-clean`` and ``glance-cache-prune`` in
the lock path (oslo.concurrency's external locks); holding the same files
keeps cache-maint, glance-api and the CLI apart. fcntl locks belong to a
process, not to a thread, so each lock file also has one in-process lock,
shared by every thread of the process (the timer, the API).
"""

import contextlib
import errno
import fcntl
import os
import threading
import time

from oslo_concurrency import lockutils
from oslo_config import cfg
from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint import exception

LOG = logging.getLogger(__name__)

#: Glance's external lock for each task (glance/api/v2/cached_images.py).
TASK_LOCK_NAMES = {'clean': 'glance-cache-clean',
                   'prune': 'glance-cache-prune'}

#: Glance's lock around creating the sqlite cache database.
DB_INIT_LOCK_NAME = 'image_cache_db_init'

#: Held by a running cache-maint service for as long as it runs.
SERVICE_LOCK_NAME = 'cache-maint-service'

#: Seconds between two attempts at a taken lock.
POLL = 0.05

_process_locks = {}
_process_locks_guard = threading.Lock()


class LockBusy(Exception):
    """The lock stayed taken for the whole wait."""

    def __init__(self, path, elsewhere):
        super().__init__(path)
        self.path = path
        self.elsewhere = elsewhere


#: With the xattr driver and no lock_path, locks live here, in the cache.
XATTR_LOCK_DIR = '.cache-maint-locks'


def lock_path(conf):
    """Where the lock files live.

    An operator's ``[oslo_concurrency] lock_path`` wins. Otherwise, for the
    sqlite and centralized_db drivers, it is the cache directory: glance-api
    replaces oslo.concurrency's own default (``$OSLO_LOCK_PATH``) with it, so
    we must as well, or the two would lock different files. Glance's xattr
    driver keeps oslo.concurrency's default (``$OSLO_LOCK_PATH``, without
    which its clean and prune endpoints fail) and lists every regular file
    of the cache directory as an image, lock files included; so with xattr
    and no lock path at all, they go in a subdirectory, which Glance never
    lists.
    """
    lockutils.get_lock_path(conf)    # registers the option if needed
    location = conf.get_location('lock_path', 'oslo_concurrency')
    if location is not None and (
            location.location.is_user_controlled
            or location.location == cfg.Locations.set_override):
        return conf.oslo_concurrency.lock_path
    if conf.image_cache_driver.lower() == 'xattr':
        # glance-api keeps oslo.concurrency's default for xattr.
        return (conf.oslo_concurrency.lock_path
                or os.path.join(conf.image_cache_dir, XATTR_LOCK_DIR))
    return conf.image_cache_dir


def _process_lock(path):
    with _process_locks_guard:
        return _process_locks.setdefault(path, threading.Lock())


def _retry(attempt, deadline, stop_event, give_up=None):
    """Call ``attempt`` until it succeeds (True) or the deadline passes.

    ``give_up()`` returning True ends the wait as the deadline does. A
    stopping service takes no lock at all.
    """
    while stop_event is None or not stop_event.is_set():
        if attempt():
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if give_up is not None and give_up():
            return False
        if stop_event is None:
            time.sleep(POLL)
        else:
            stop_event.wait(POLL)
    raise exception.ServiceStopping(
        'gave up waiting for a lock: the service is stopping')


@contextlib.contextmanager
def hold(conf, name, wait=None, stop_event=None, give_up=None):
    """Hold lock ``name`` against this process and every other one.

    Waits at most ``wait`` seconds (None: forever, 0: not at all), or until
    ``give_up()`` returns True, then raises LockBusy; a set ``stop_event``
    ends the wait with ServiceStopping. A lock file that cannot be opened
    or locked is a CacheDirError. An operator's lock path is created if
    missing, as oslo.concurrency does; the default one, the cache
    directory, never is: recreating a cache directory that went away would
    hide the fault.
    """
    directory = lock_path(conf)
    path = os.path.join(directory, name)
    if (cachedir.is_inside(conf.image_cache_dir, directory)
            and not os.path.isdir(conf.image_cache_dir)):
        raise exception.CacheDirError(
            'image cache directory %s (which holds the lock path) does not '
            'exist' % conf.image_cache_dir)
    deadline = None if wait is None else time.monotonic() + wait
    local = _process_lock(path)
    if not _retry(lambda: local.acquire(blocking=False), deadline,
                  stop_event, give_up):
        raise LockBusy(path, elsewhere=False)
    try:
        shared = lockutils.external_lock(name, lock_path=directory)
        try:
            if not _retry(lambda: shared.acquire(blocking=False), deadline,
                          stop_event, give_up):
                raise LockBusy(path, elsewhere=True)
        except (OSError, threading.ThreadError) as e:
            raise exception.CacheDirError('cannot take the lock %s: %s'
                                          % (path, e))
        finally:
            if not shared.acquired and shared.lockfile is not None:
                # Closing this descriptor later, at garbage collection,
                # would drop the fcntl lock another thread may hold by
                # then: fcntl locks belong to the process.
                shared.lockfile.close()
        try:
            yield
        finally:
            shared.release()
    finally:
        local.release()


class TaskLocks:
    """The locks of the clean and prune tasks of one cache."""

    def __init__(self, conf, stop_event=None):
        self._conf = conf
        self._stop_event = stop_event

    @contextlib.contextmanager
    def hold(self, task, wait, give_up=None):
        """Hold the task's locks, or raise TaskInProgress.

        Waits at most ``wait`` seconds for them (None: forever, 0: not at
        all) or until ``give_up()`` is True; raises ServiceStopping if a stop
        is requested meanwhile.
        """
        try:
            with hold(self._conf, TASK_LOCK_NAMES[task], wait,
                      self._stop_event, give_up):
                yield
        except LockBusy as e:
            where = ('another process (glance-api or cache-maint), which '
                     'holds the lock %s' % e.path if e.elsewhere
                     else 'this process')
            raise exception.TaskInProgress(
                'a %s run is in progress in %s' % (task, where),
                task=task, wait=wait)


class ServiceLock:
    """One cache-maint service per cache: the launcher holds this lock.

    The lock file, in the lock path, holds the pid of the holder, so that a
    second service can say which one maintains the cache already. fcntl
    locks go with their process: a launcher killed by any means releases it.
    """

    def __init__(self, conf):
        directory = lock_path(conf)
        self.path = os.path.join(directory, SERVICE_LOCK_NAME)
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise exception.CacheDirError('cannot open the lock %s: %s'
                                          % (self.path, e))
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.read(fd, 32).decode('ascii', 'replace').strip()
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise exception.CacheDirError('cannot take the lock %s: %s'
                                              % (self.path, e))
            raise exception.AlreadyRunning(
                'another cache-maint service (pid %s) already maintains '
                'this cache: it holds %s' % (holder or '?', self.path))
        os.ftruncate(fd, 0)
        os.write(fd, b'%d\n' % os.getpid())
        self._fd = fd

    def covers(self, conf):
        """True if this is the lock ``conf``'s service would take."""
        return self.path == os.path.join(lock_path(conf), SERVICE_LOCK_NAME)

    def replace(self, other):
        """Hold ``other`` instead; release this one."""
        old, self._fd, self.path = self._fd, other._fd, other.path
        os.close(old)

    def release(self):
        os.close(self._fd)


def service_running(conf):
    """True if a cache-maint service holds this cache's service lock.

    Only looks: the lock file is opened for reading and never made, and
    a shared lock is tried (the service holds an exclusive one). None if
    that cannot be told.
    """
    path = os.path.join(lock_path(conf), SERVICE_LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return True if e.errno in (errno.EAGAIN, errno.EACCES) else None
    finally:
        os.close(fd)        # closing releases the shared lock
    return False
