"""SIGTERM during a prune of 20,000 images (issue 6, item 9).

The process is frozen in the middle of its prune, SIGTERM is queued, and
it is let go: the signal arrives mid-run by construction. The service must
exit with status 0, ``cache-maint-manage prune`` must say it stopped before
finishing (non-zero status, by design), both within a generous deadline,
and files and records must agree exactly when they are gone; the next
prune then finishes the work.
"""

import concurrent.futures
import json
import os
import signal
import subprocess

from oslo_concurrency import lockutils
import pytest
import requests

from cache_maint import locks
from tests.faults import conftest as faults
from tests.support import processes
from tests.support import running
from tests.support import settings


def _post_quietly(daemon, task):
    try:
        return daemon.post(task)
    except requests.RequestException as e:
        return e


def _assert_stopped_in_agreement(workload, survivors):
    """Files and records agree; only LRU images went, not all of them."""
    files = workload.files()
    assert files == set(workload.rows()), workload.state()
    assert survivors < files, (
        'the prune finished before SIGTERM reached it' if files == survivors
        else 'the prune evicted a recently used image')
    return set(workload.ids) - files


@pytest.mark.parametrize('kind', faults.KINDS)
def test_sigterm_to_the_daemon_mid_prune(kind, make_cache, daemons,
                                         tmp_path):
    """Exit 0; what the stopped prune removed is exactly what it forgot."""
    workload = faults.Workload(make_cache(kind), faults.LARGE)
    max_size = workload.total // 4
    survivors = workload.survivors(max_size)
    daemon = daemons(workload.cache, image_cache_max_size=max_size,
                     cache_prune_interval=0, cache_clean_interval=0,
                     debug='false').start()
    processes.wait_for(daemon.workers, 'a forked worker')

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        request = pool.submit(_post_quietly, daemon, 'prune')
        faults.freeze_mid_prune(daemon.process.pid, daemon.pids, workload,
                                len(survivors))
        daemon.send_signal(signal.SIGTERM)
        os.killpg(daemon.process.pid, signal.SIGCONT)
        try:
            status = daemon.process.wait(processes.DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail('cache-maint did not exit within %s s of SIGTERM\n%s'
                        % (processes.DEADLINE, daemon.diagnostics()))
        response = request.result(processes.DEADLINE)

    assert status == 0, daemon.diagnostics()
    evicted = _assert_stopped_in_agreement(workload, survivors)
    # The request that started the prune was answered with what it did.
    assert isinstance(response, requests.Response), response
    assert response.status_code == 200, response.text
    assert response.json() == {
        'total_files_pruned': len(evicted),
        'total_bytes_pruned': sum(workload.sizes[i] for i in evicted)}
    assert daemon.log_lines('Prune stopped early on request')
    assert 'Traceback' not in daemon.log(), daemon.diagnostics()

    # The next prune finishes the work.
    config = faults.write_manage_config(
        tmp_path / 'manage.conf', workload.cache,
        image_cache_max_size=max_size)
    assert processes.run_script('cache-maint-manage', [
        '--config-file', config, 'prune']).returncode == 0
    workload.assert_exactly(survivors)


def _has_open(pid, path):
    """True once process ``pid`` has ``path`` open.

    A waiter for a lock file keeps it open between its attempts.
    """
    fd_dir = '/proc/%d/fd' % pid
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == path:
                return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize('kind', faults.KINDS)
def test_sigterm_to_manage_prune_mid_prune(kind, make_cache, tmp_path):
    """It stops at once, says so, and reports exactly what it removed."""
    workload = faults.Workload(make_cache(kind), faults.LARGE)
    max_size = workload.total // 4
    survivors = workload.survivors(max_size)
    # The lock path is set, not derived: a library imported earlier in this
    # process (Glance's) may have changed oslo.concurrency's default here.
    lock_dir = tmp_path / 'locks'
    lock_dir.mkdir()
    sections = settings.cache_sections(
        workload.cache, image_cache_max_size=max_size,
        log_file=tmp_path / 'manage.log')
    sections['oslo_concurrency'] = {'lock_path': lock_dir}
    config = settings.write_config(tmp_path / 'manage.conf', sections)
    name = locks.TASK_LOCK_NAMES['prune']
    lock_file = os.path.realpath(lock_dir / name)

    # Starting up runs free, up to the prune lock, held here; the process
    # is frozen there, and from the moment the lock is free the prune is
    # run in slices and frozen halfway, however fast the disk.
    held = lockutils.external_lock(name, lock_path=str(lock_dir))
    held.acquire()
    process = running.start_manage(config, 'prune')
    try:
        try:
            processes.wait_for(lambda: _has_open(process.pid, lock_file)
                               or process.poll() is not None,
                               'cache-maint-manage to wait for the lock')
            assert process.poll() is None, process.communicate()
            faults.freeze(process.pid, [process.pid])
        finally:
            held.release()
        faults.freeze_mid_prune(process.pid, [process.pid], workload,
                                len(survivors))
        process.send_signal(signal.SIGTERM)
        os.killpg(process.pid, signal.SIGCONT)
        stdout, stderr = process.communicate(timeout=processes.DEADLINE)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()

    assert process.returncode == 1, stderr
    assert ('stopped by a signal before it finished; the next prune '
            'finishes the work') in stderr
    assert 'Traceback' not in stderr
    evicted = _assert_stopped_in_agreement(workload, survivors)
    assert json.loads(stdout) == {
        'total_files_pruned': len(evicted),
        'total_bytes_pruned': sum(workload.sizes[i] for i in evicted)}

    finished = processes.run_script('cache-maint-manage',
                                    ['--config-file', config, 'prune'])
    assert finished.returncode == 0, finished.stderr
    workload.assert_exactly(survivors)
