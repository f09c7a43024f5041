"""Who may run a task: one run of clean and one of prune per cache.

Two locks guard each task. glance-api's own ``POST /v2/cache/clean|prune``
take the fcntl locks ``glance-cache-clean`` and ``glance-cache-prune`` in
``[oslo_concurrency] lock_path`` (the cache directory by default); holding
the same files keeps cache-maint, glance-api and the CLI apart. fcntl locks
belong to a process, not a thread, so an in-process lock keeps the timer and
the API threads of one process apart as well.
"""

import contextlib
import os
import threading
import time

from oslo_concurrency import lockutils
from oslo_log import log as logging

from cache_maint import exception

LOG = logging.getLogger(__name__)

#: Glance's external lock for each task (glance/api/v2/cached_images.py).
TASK_LOCK_NAMES = {'clean': 'glance-cache-clean',
                   'prune': 'glance-cache-prune'}

#: Glance's lock around creating the sqlite cache database.
DB_INIT_LOCK_NAME = 'image_cache_db_init'


def lock_path(conf):
    """Where lock files live: lock_path, else the cache dir (as Glance)."""
    return lockutils.get_lock_path(conf) or conf.image_cache_dir


def external_lock(conf, name):
    """An inter-process lock shared with glance-api.

    An operator's lock_path is created if missing, as oslo.concurrency
    does; the default, the cache directory, never is: recreating a cache
    directory that went away would hide the fault and touch its parent.
    """
    path = lock_path(conf)
    if path == conf.image_cache_dir and not os.path.isdir(path):
        raise exception.CacheDirError(
            'image cache directory %s (also the lock path) does not exist'
            % path)
    return lockutils.external_lock(name, lock_path=path)


class TaskLocks:
    """Both locks of every task of one cache, for one process.

    Waiting for a lock can be cut short by ``stop_event``: a service that is
    stopping must not sit in a wait of several minutes.
    """

    #: Seconds between two attempts at a taken lock.
    POLL = 0.05

    def __init__(self, conf, stop_event=None):
        self._conf = conf
        self._stop_event = stop_event or threading.Event()
        self._local = {task: threading.Lock() for task in TASK_LOCK_NAMES}

    @contextlib.contextmanager
    def hold(self, task, wait):
        """Hold the task's locks, or raise TaskInProgress.

        Waits at most ``wait`` seconds for them (None: forever, 0: not at
        all); raises ServiceStopping if a stop is requested meanwhile.
        """
        deadline = None if wait is None else time.monotonic() + wait
        local = self._local[task]
        if not self._wait_for(lambda: local.acquire(blocking=False),
                              deadline):
            raise exception.TaskInProgress(
                'a %s run is in progress in this process' % task,
                task=task, wait=wait)
        try:
            shared = external_lock(self._conf, TASK_LOCK_NAMES[task])
            if not self._wait_for(lambda: shared.acquire(blocking=False),
                                  deadline):
                raise exception.TaskInProgress(
                    'a %s run is in progress in another process (glance-api '
                    'or cache-maint), which holds the lock %s'
                    % (task, os.fsdecode(shared.path)), task=task, wait=wait)
            try:
                yield
            finally:
                shared.release()
        finally:
            local.release()

    def _wait_for(self, attempt, deadline):
        """Retry ``attempt`` until it succeeds or the deadline passes."""
        while not attempt():
            if self._stop_event.is_set():
                raise exception.ServiceStopping(
                    'gave up waiting for a lock: the service is stopping')
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self._stop_event.wait(self.POLL)
        return True
