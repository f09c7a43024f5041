"""One run of a task at a time: across threads, and across processes
through Glance's own lock files.
"""

import os
import threading

import pytest

from cache_maint import exception
from cache_maint import locks

from tests.support import locking
from tests.support import settings


@pytest.fixture
def task_locks(tmp_path):
    return locks.TaskLocks(settings.make_conf(tmp_path))


def test_lock_files_are_glances(tmp_path, task_locks):
    with task_locks.hold('clean', wait=0):
        pass
    with task_locks.hold('prune', wait=0):
        pass
    assert {'glance-cache-clean', 'glance-cache-prune'} <= {
        p.name for p in tmp_path.iterdir()}


def test_lock_path_option_wins(tmp_path):
    conf = settings.make_conf(tmp_path / 'cache',
                              oslo_concurrency__lock_path=str(tmp_path / 'lk'))
    with locks.TaskLocks(conf).hold('prune', wait=0):
        assert (tmp_path / 'lk' / 'glance-cache-prune').exists()


def test_same_task_never_overlaps_in_one_process(tmp_path, task_locks):
    with locking.task_held(settings.make_conf(tmp_path), 'prune'):
        with pytest.raises(exception.TaskInProgress) as caught:
            with task_locks.hold('prune', wait=0.1):
                pass
        assert caught.value.code == 409
        # The other task is independent.
        with task_locks.hold('clean', wait=0):
            pass


def test_a_waiter_runs_after_the_holder(task_locks):
    """The waiter gets in once the holder is out, never while it is in.

    The holder stays in until the waiter gets in or a second has passed:
    without the lock, the waiter would get in first and be seen doing so.
    """
    order = []
    holder_in, waiter_in = threading.Event(), threading.Event()

    def holder():
        with task_locks.hold('clean', wait=0):
            order.append('holder in')
            holder_in.set()
            waiter_in.wait(1)
            order.append('holder out')

    def waiter():
        holder_in.wait(10)
        with task_locks.hold('clean', wait=30):
            order.append('waiter in')
            waiter_in.set()

    threads = [threading.Thread(target=waiter),
               threading.Thread(target=holder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order == ['holder in', 'holder out', 'waiter in']


def test_another_process_holding_glances_lock(tmp_path, task_locks):
    # What glance-api's POST /v2/cache/prune does: hold the fcntl lock.
    with locking.held_by_another_process(tmp_path, 'glance-cache-prune'):
        with pytest.raises(exception.TaskInProgress, match='another process'):
            with task_locks.hold('prune', wait=0.3):
                pass
    with task_locks.hold('prune', wait=5):
        pass


def test_a_stop_request_ends_the_wait(tmp_path):
    stop = threading.Event()
    conf = settings.make_conf(tmp_path)
    task_locks = locks.TaskLocks(conf, stop)
    with locking.task_held(conf, 'clean'):
        threading.Timer(0.2, stop.set).start()
        with pytest.raises(exception.ServiceStopping) as caught:
            with task_locks.hold('clean', wait=None):
                pass
        assert caught.value.code == 503


def test_lock_path_from_a_file_wins(tmp_path):
    conf_file = tmp_path / 'c.conf'
    conf_file.write_text('[oslo_concurrency]\nlock_path = %s\n'
                         % (tmp_path / 'locks'))
    conf = settings.make_conf(tmp_path / 'cache',
                              args=['--config-file', str(conf_file)])
    assert locks.lock_path(conf) == str(tmp_path / 'locks')


def test_oslo_lock_path_environment_does_not_split_the_locks(tmp_path,
                                                             monkeypatch):
    # glance-api ignores $OSLO_LOCK_PATH for its cache locks: so do we.
    monkeypatch.setenv('OSLO_LOCK_PATH', str(tmp_path / 'elsewhere'))
    conf = settings.make_conf(tmp_path)
    assert locks.lock_path(conf) == str(tmp_path)


def test_two_runners_in_one_process_share_the_guard(tmp_path):
    conf = settings.make_conf(tmp_path)
    first, second = locks.TaskLocks(conf), locks.TaskLocks(conf)
    with first.hold('prune', wait=0):
        with pytest.raises(exception.TaskInProgress, match='this process'):
            with second.hold('prune', wait=0):
                pass


def test_an_unusable_lock_file_is_a_clear_error(tmp_path):
    os.mkdir(tmp_path / 'glance-cache-prune')    # a directory, not a file
    with pytest.raises(exception.CacheDirError, match='cannot take the lock'):
        with locks.TaskLocks(settings.make_conf(tmp_path)).hold('prune', 0):
            pass


def test_a_failed_wait_does_not_keep_the_lock_file_open(tmp_path):
    task_locks = locks.TaskLocks(settings.make_conf(tmp_path))
    with locking.held_by_another_process(tmp_path, 'glance-cache-clean'):
        fds_before = set(os.listdir('/proc/self/fd'))
        with pytest.raises(exception.TaskInProgress):
            with task_locks.hold('clean', wait=0.1):
                pass
        assert set(os.listdir('/proc/self/fd')) == fds_before


def test_a_vanished_cache_dir_is_not_recreated_for_a_lock(tmp_path):
    """A lock path inside the cache dir, reached through a dangling link.

    The link is resolved: the lock path lies in the cache directory, which
    is gone, and recreating it (as taking the lock would) would hide the
    fault.
    """
    target = tmp_path / 'gone'
    (tmp_path / 'cache').symlink_to(target)
    conf = settings.make_conf(tmp_path / 'cache',
                              oslo_concurrency__lock_path=str(target / 'lk'))
    with pytest.raises(exception.CacheDirError, match='does not exist'):
        with locks.TaskLocks(conf).hold('prune', wait=0):
            pass
    assert not target.exists()
