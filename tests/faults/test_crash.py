"""kill -9 in the middle of a prune of 20,000 images (issue 6, item 1).

The service is frozen at a moment when its prune has deleted some images
and not yet all it must (and, where records are apart from the files, the
records of some images it has not unlinked yet), and is then killed with
SIGKILL, master and
worker at once: no handler runs, no transaction commits, the sqlite
journal is left hot. A new service then runs one prune and one clean, and
the cache must be exactly what an uninterrupted prune would have left.
"""

import concurrent.futures
import os
import signal

import pytest
import requests

from tests.faults import conftest as faults
from tests.support import processes


def _post_quietly(daemon, task):
    """POST a task; a connection the kill cuts is expected, not an error."""
    try:
        return daemon.post(task)
    except requests.RequestException as e:
        return e


@pytest.mark.parametrize('kind', faults.KINDS)
def test_kill_9_mid_prune_then_prune_and_clean(kind, make_cache, daemons,
                                               tmp_path):
    """After the next prune and clean, exactly the MRU images that fit."""
    workload = faults.Workload(make_cache(kind), faults.LARGE)
    max_size = workload.total // 4
    survivors = workload.survivors(max_size)
    options = dict(image_cache_max_size=max_size, cache_prune_interval=0,
                   cache_clean_interval=0, debug='false')
    daemon = daemons(workload.cache, workdir=tmp_path / 'killed',
                     **options).start()
    processes.wait_for(daemon.workers, 'a forked worker')

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        request = pool.submit(_post_quietly, daemon, 'prune')
        left = faults.freeze_mid_prune(daemon.process.pid, daemon.pids,
                                       workload, len(survivors),
                                       unrecorded=kind != 'xattr')
        daemon.kill9()
        assert not isinstance(request.result(processes.DEADLINE),
                              requests.Response), 'the prune answered'

    # The kill left images whose records are gone (records go first, files
    # after), never the reverse, and only LRU images went. Those files are
    # untracked now: the next prune evicts them first.
    files = workload.files()
    assert len(files) == left
    assert survivors <= files, 'the prune evicted a recently used image'
    if kind == 'xattr':
        assert files == set(workload.rows())
    else:
        assert set(workload.rows()) < files, workload.state()

    restarted = daemons(workload.cache, workdir=tmp_path / 'restarted',
                        **options).start()
    pruned = restarted.post('prune')
    assert pruned.status_code == 200, pruned.text
    assert pruned.json() == {
        'total_files_pruned': left - len(survivors),
        'total_bytes_pruned': sum(workload.sizes[i]
                                  for i in files - survivors)}
    cleaned = restarted.post('clean')
    assert cleaned.status_code == 200, cleaned.text

    workload.assert_exactly(survivors)
    assert sum(workload.sizes[i] for i in workload.files()) <= max_size
    if kind == 'sqlite':
        assert not os.path.exists(workload.cache.db_path + '-journal')
    assert 'Traceback' not in restarted.log(), restarted.diagnostics()
    restarted.send_signal(signal.SIGTERM)
    assert restarted.process.wait(processes.DEADLINE) == 0
