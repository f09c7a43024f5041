"""The cache directory misbehaves under a running service (item 4).

Read-only, removed, a file that cannot be unlinked, a full disk: each is
inflicted on the real directory of a running ``cache-maint``. Each must
give a clear error (the log names the cause; the API answers JSON that
names no host path), leave the service up and answering, be reported in
the service's record of runs, and change nothing it should not.
"""

import contextlib
import errno
import os
import shutil
import subprocess
import time

import pytest

from tests.faults import conftest as faults
from tests.support import caches
from tests.support import env
from tests.support import fs
from tests.support import locking
from tests.support import processes

NOT_USABLE = 'The image cache directory is not usable'


def _failed_runs(daemon, task, since=0):
    return [run for run in daemon.runs(task)
            if run['outcome'] == 'failed' and run['started_at'] >= since]


def _succeeded_runs(daemon, task, since):
    return [run for run in daemon.runs(task)
            if run['outcome'] == 'succeeded' and run['started_at'] >= since]


def _assert_clear_json_error(response, status, message, tmp_path):
    assert response.status_code == status, response.text
    error = response.json()['error']
    assert error['code'] == status
    assert message in error['message']
    assert str(tmp_path) not in response.text
    assert 'Traceback' not in response.text


def _assert_answers(daemon, worker):
    """The service is up, the same worker, and its API answers."""
    assert daemon.process.poll() is None
    assert daemon.workers() == worker, 'the worker was replaced'
    assert daemon.request('GET', '/versions').status_code == 200


def test_read_only_cache_dir(tmp_path, daemons):
    """Runs fail on EROFS, reported; nothing moves; then they succeed."""
    workload = faults.Workload(caches.SqliteCache(tmp_path / 'cache'), 40)
    max_size = workload.total // 2
    survivors = workload.survivors(max_size)
    # glance-api holds the prune lock while the service starts: nothing is
    # pruned before the directory turns read-only.
    with locking.held_by_another_process(workload.cache.path,
                                         'glance-cache-prune'):
        daemon = daemons(workload.cache, image_cache_max_size=max_size,
                         cache_prune_interval=1,
                         cache_clean_interval=1).start()
        worker = processes.wait_for(daemon.workers, 'a forked worker')
        processes.wait_for(
            lambda: daemon.log_lines('Periodic prune skipped'),
            'a periodic prune to find the lock taken',
            diagnostics=daemon.diagnostics)

        with fs.read_only(workload.cache.path):
            turned = time.time()
            processes.wait_for(
                lambda: _failed_runs(daemon, 'prune', turned)
                and _failed_runs(daemon, 'clean', turned),
                'a failed periodic prune and clean in the record',
                diagnostics=daemon.diagnostics)
            response = daemon.post('prune')
            _assert_clear_json_error(response, 500, NOT_USABLE, tmp_path)
            _assert_answers(daemon, worker)
            listing = daemon.request('GET', '/v2/cache', token='admin')
            assert listing.status_code == 200, listing.text
            assert len(listing.json()['cached_images']) == 40

        failed = _failed_runs(daemon, 'prune', turned)
        assert {run['trigger'] for run in failed} >= {'periodic', 'API'}
        assert all(NOT_USABLE in run['error'] for run in failed)
        lines = daemon.log_lines('ERROR', 'Prune run (periodic) failed',
                                 'Read-only file system')
        assert lines, daemon.diagnostics()
        assert workload.files() == set(workload.ids)
        assert set(workload.rows()) == set(workload.ids)

    # Writable again and the lock released: the next run prunes.
    mended = time.time()
    processes.wait_for(lambda: workload.files() == survivors,
                       'the next periodic prune',
                       diagnostics=daemon.diagnostics)
    processes.wait_for(lambda: _succeeded_runs(daemon, 'prune', mended),
                       'a succeeded prune in the record')
    workload.assert_exactly(survivors)
    _assert_answers(daemon, worker)
    assert 'Traceback' not in daemon.log()


def test_cache_dir_removed_while_running(tmp_path, daemons):
    """Runs fail and are reported; a cache put back is pruned again."""
    cache = caches.SqliteCache(tmp_path / 'cache')
    faults.Workload(cache, 20)      # 20 to 260 bytes: within the limit
    max_size = 2000
    daemon = daemons(cache, image_cache_max_size=max_size,
                     cache_prune_interval=1, cache_clean_interval=1).start()
    worker = processes.wait_for(daemon.workers, 'a forked worker')
    processes.wait_for(lambda: daemon.runs('prune') and daemon.runs('clean'),
                       'the first runs', diagnostics=daemon.diagnostics)

    removed = time.time()
    shutil.rmtree(cache.path)
    processes.wait_for(
        lambda: _failed_runs(daemon, 'prune', removed)
        and _failed_runs(daemon, 'clean', removed),
        'a failed periodic prune and clean in the record',
        diagnostics=daemon.diagnostics)
    for task in ('prune', 'clean'):
        lines = daemon.log_lines('ERROR', '%s run (periodic) failed'
                                 % task.capitalize(), cache.path)
        assert lines, daemon.diagnostics()
        assert all(NOT_USABLE in run['error']
                   for run in _failed_runs(daemon, task, removed))
        _assert_clear_json_error(daemon.post(task), 500, NOT_USABLE,
                                 tmp_path)
    listing = daemon.request('GET', '/v2/cache', token='admin')
    assert listing.status_code >= 500
    assert str(tmp_path) not in listing.text
    _assert_answers(daemon, worker)
    assert not os.path.exists(cache.path), 'the service recreated the dir'

    # The operator puts back a cache, now over the limit (built aside and
    # moved into place at once): the same worker's next prune maintains it.
    aside = caches.SqliteCache(tmp_path / 'aside')
    workload = faults.Workload(aside, 40, size_of=lambda i: 100)
    survivors = workload.survivors(max_size)
    mended = time.time()
    os.rename(aside.path, cache.path)
    workload.cache = cache      # the same path, now holding the new cache
    processes.wait_for(lambda: workload.files() == survivors,
                       'the cache put back to be pruned',
                       diagnostics=daemon.diagnostics)
    processes.wait_for(lambda: _succeeded_runs(daemon, 'prune', mended),
                       'a succeeded prune in the record')
    workload.assert_exactly(survivors)
    _assert_answers(daemon, worker)


@contextlib.contextmanager
def immutable(path):
    """Make a file that nobody, not even root, can unlink (chattr +i)."""
    result = subprocess.run(['chattr', '+i', path], capture_output=True,
                            text=True)
    if result.returncode != 0:
        message = 'cannot make %s immutable: %s' % (path, result.stderr)
        if env.in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield
    finally:
        subprocess.run(['chattr', '-i', path], check=True)


def test_file_that_cannot_be_unlinked(tmp_path, daemons):
    """It is named in the log and passed over; prune still fits."""
    workload = faults.Workload(caches.SqliteCache(tmp_path / 'cache'), 40)
    max_size = workload.total // 2
    stuck = workload.ids[0]     # the first image prune would evict
    survivors = workload.survivors(max_size, kept={stuck})
    evicted = set(workload.ids) - survivors
    invalid = [workload.cache.add_invalid() for _ in range(3)]
    daemon = daemons(workload.cache, image_cache_max_size=max_size,
                     cache_prune_interval=0, cache_clean_interval=0).start()
    worker = processes.wait_for(daemon.workers, 'a forked worker')

    with immutable(os.path.join(workload.cache.path, stuck)), \
            immutable(os.path.join(workload.cache.path, 'invalid',
                                   invalid[0])):
        pruned = daemon.post('prune')
        cleaned = daemon.post('clean')
        assert pruned.status_code == 200, pruned.text
        assert pruned.json() == {
            'total_files_pruned': len(evicted),
            'total_bytes_pruned': sum(workload.sizes[i] for i in evicted)}
        assert cleaned.status_code == 200, cleaned.text
        assert cleaned.json()['total_files_cleaned'] == 2
        workload.assert_exactly(survivors)
        assert stuck in survivors
        assert sum(workload.sizes[i] for i in survivors) <= max_size
        assert workload.cache.listdir('invalid') == {invalid[0]}
        for name in (stuck, invalid[0]):
            lines = daemon.log_lines('WARNING', 'Cannot remove', name,
                                     'Operation not permitted')
            assert len(lines) == 1, daemon.diagnostics()
        prune_run, clean_run = daemon.runs('prune')[-1], daemon.runs(
            'clean')[-1]
        assert prune_run['result'] == pruned.json()
        assert clean_run['result'] == cleaned.json()
        _assert_answers(daemon, worker)


def _fill(path):
    """Write to ``path`` until the filesystem is full."""
    chunk = b'\0' * 65536
    with open(path, 'wb', buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[:len(chunk) // 2]


def test_full_disk(tmp_path, tmpfs, daemons):
    """A clean that cannot write fails clearly; prune still frees space."""
    cache = caches.SqliteCache(tmpfs('cache', 4 * 1024 * 1024))
    workload = faults.Workload(cache, 40, size_of=lambda i: 1000 + i)
    stale = [cache.add_row() for _ in range(30)]
    max_size = workload.total // 2
    survivors = workload.survivors(max_size)
    daemon = daemons(cache, image_cache_max_size=max_size,
                     cache_prune_interval=0, cache_clean_interval=0).start()
    worker = processes.wait_for(daemon.workers, 'a forked worker')
    filler = os.path.join(cache.path, 'filler')
    _fill(filler)
    assert os.statvfs(cache.path).f_bavail == 0

    # The records of the missing files cannot be deleted: no room for
    # sqlite's journal.
    full = time.time()
    _assert_clear_json_error(daemon.post('clean'), 503,
                             'metadata is not usable', tmp_path)
    lines = daemon.log_lines('ERROR', 'Clean run (API) failed',
                             'database or disk is full')
    assert len(lines) == 1, daemon.diagnostics()
    (failed,) = _failed_runs(daemon, 'clean', full)
    assert 'metadata is not usable' in failed['error']
    assert set(stale) <= set(cache.rows())
    listing = daemon.request('GET', '/v2/cache', token='admin')
    assert listing.status_code == 200, listing.text
    _assert_answers(daemon, worker)

    # Prune, which frees space before it writes, still works on it.
    pruned = daemon.post('prune')
    assert pruned.status_code == 200, pruned.text
    assert workload.files() == survivors
    assert set(cache.rows()) == survivors | set(stale)

    # With room again, the next clean deletes the records it could not.
    os.unlink(filler)
    cleaned = daemon.post('clean')
    assert cleaned.status_code == 200, cleaned.text
    workload.assert_exactly(survivors)
    assert _succeeded_runs(daemon, 'clean', full)
    assert 'Traceback' not in daemon.log()
