"""Task locks held from elsewhere: another thread, or another process."""

import contextlib
import subprocess
import sys
import textwrap
import threading

from cache_maint import locks


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
def held_by_another_process(lock_path, name):
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
