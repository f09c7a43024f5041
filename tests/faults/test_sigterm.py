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

import pytest
import requests

from cache_maint import locks
from tests import base
from tests.faults import conftest as faults
from tests.functional import helpers


def _post_quietly(daemon, task):
    try:
        return daemon.post(task)
    except requests.RequestException as e:
        return e


def _manage(config, *args):
    """Start ``cache-maint-manage``, in a process group of its own."""
    return subprocess.Popen(
        [helpers.console_script('cache-maint-manage'), '--config-file',
         config] + list(args), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


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
    helpers.wait_for(daemon.workers, 'a forked worker')

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        request = pool.submit(_post_quietly, daemon, 'prune')
        faults.freeze_mid_prune(daemon.process.pid, daemon.pids, workload,
                                len(survivors))
        daemon.send_signal(signal.SIGTERM)
        os.killpg(daemon.process.pid, signal.SIGCONT)
        try:
            status = daemon.process.wait(helpers.DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail('cache-maint did not exit within %s s of SIGTERM\n%s'
                        % (helpers.DEADLINE, daemon.diagnostics()))
        response = request.result(helpers.DEADLINE)

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
    assert helpers.run_script('cache-maint-manage', [
        '--config-file', config, 'prune']).returncode == 0
    workload.assert_exactly(survivors)


@pytest.mark.parametrize('kind', faults.KINDS)
def test_sigterm_to_manage_prune_mid_prune(kind, make_cache, tmp_path):
    """It stops at once, says so, and reports exactly what it removed."""
    workload = faults.Workload(make_cache(kind), faults.LARGE)
    max_size = workload.total // 4
    survivors = workload.survivors(max_size)
    config = faults.write_manage_config(
        tmp_path / 'manage.conf', workload.cache,
        image_cache_max_size=max_size, log_file=tmp_path / 'manage.log')
    conf = base.make_conf(workload.cache.path,
                          image_cache_driver=workload.cache.driver)
    lock_file = os.path.join(locks.lock_path(conf),
                             locks.TASK_LOCK_NAMES['prune'])

    process = _manage(config, 'prune')
    try:
        # Starting up runs free; from the moment it takes the lock, the
        # prune is run in slices and frozen halfway.
        helpers.wait_for(lambda: os.path.exists(lock_file)
                         or process.poll() is not None,
                         'cache-maint-manage to take the prune lock',
                         interval=0.001)
        assert process.poll() is None, process.communicate()
        faults.freeze_mid_prune(process.pid, [process.pid], workload,
                                len(survivors))
        process.send_signal(signal.SIGTERM)
        os.killpg(process.pid, signal.SIGCONT)
        stdout, stderr = process.communicate(timeout=helpers.DEADLINE)
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

    finished = helpers.run_script('cache-maint-manage',
                                  ['--config-file', config, 'prune'])
    assert finished.returncode == 0, finished.stderr
    workload.assert_exactly(survivors)
