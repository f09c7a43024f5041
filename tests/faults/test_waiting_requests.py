"""Clean and prune requests waiting for a run elsewhere (issue 11, item 3).

glance-api holds its prune lock (the test holds the very lock file, as
glance-api's own ``POST /v2/cache/prune`` does) while twelve admins ask the
real ``cache-maint`` to prune. Waiting requests have threads of their own:
``/healthcheck``, ``/versions`` and ``GET /v2/cache`` keep answering in
time. Once the lock is free, the twelve share one run, whose counts they
all get; past ``[api] max_task_requests`` a request is a 503 with
``Retry-After`` at once instead of a thread taken.
"""

from concurrent import futures
import contextlib
import time

from oslo_concurrency import lockutils

from tests.support import caches
from tests.support import processes
from tests.support import running

#: Seconds an unrelated answer may take while requests wait: a deadline
#: far below the 20-40 s such requests once cost, not a measurement.
ANSWER_DEADLINE = 5

WAITERS = 12


@contextlib.contextmanager
def waiting(daemon, cache, task, count):
    """``count`` requests of ``task`` waiting for glance-api's lock.

    Yields their futures, unanswered, while the lock is held; once the
    block ends the lock is let go and the answers awaited.
    """
    held = lockutils.external_lock('glance-cache-%s' % task,
                                   lock_path=cache.path)
    held.acquire()
    with futures.ThreadPoolExecutor(max_workers=count) as pool:
        try:
            requests_sent = [pool.submit(daemon.request, 'POST',
                                         '/v2/cache/%s' % task,
                                         token='admin')
                             for _ in range(count)]
            processes.wait_for(lambda: _waiting(daemon) >= count,
                               'the %s requests to wait' % task)
            yield requests_sent
            assert not any(future.done() for future in requests_sent)
        finally:
            held.release()
        for future in requests_sent:
            future.result(processes.DEADLINE)


def answers_in_time(daemon):
    """The other requests answer, within the deadline, while they wait."""
    for path in ('/healthcheck', '/versions', '/v2/cache'):
        response = daemon.request('GET', path, token='admin',
                                  timeout=ANSWER_DEADLINE)
        assert response.status_code == 200, (path, response)


def test_waiting_requests_share_one_run_and_block_nobody(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    images = [cache.add_image(last_accessed=1000.0 + i) for i in range(6)]
    with running.daemon(tmp_path, cache.path,
                        image_cache_max_size=3 * caches.KIB,
                        api={'threads': 2}) as daemon:
        with waiting(daemon, cache, 'prune', WAITERS) as requests_sent:
            for _ in range(3):
                answers_in_time(daemon)
        answers = [future.result() for future in requests_sent]
        api_runs = [run for run in _runs(daemon)
                    if run['task'] == 'prune' and run['trigger'] == 'API']

    assert {a.status_code for a in answers} == {200}
    assert {a.text for a in answers} == {
        '{"total_files_pruned": 3, "total_bytes_pruned": %d}'
        % (3 * caches.KIB)}
    assert cache.images() == set(images[3:])
    assert len(api_runs) == 1, api_runs


def test_past_their_threads_requests_queue_and_block_nobody(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    cache.add_image()
    with running.daemon(tmp_path, cache.path,
                        api={'max_task_requests': 2}) as daemon:
        with waiting(daemon, cache, 'clean', 6) as requests_sent:
            answers_in_time(daemon)
    assert {f.result().status_code for f in requests_sent} == {200}


def _waiting(daemon):
    """Connections to the daemon's API established now (/proc/net/tcp).

    A request waiting for its run is a connection that stays open with no
    answer; the test polls until all it sent are there, then gives the
    server a moment to read them.
    """
    established = 0
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(':')[1], 16)
            if local_port == daemon.port and fields[3] == '01':
                established += 1
    if established:
        time.sleep(0.5)
    return established


def _runs(daemon):
    response = daemon.request('GET', '/v2/cache/runs', token='admin')
    assert response.status_code == 200
    return response.json()['runs']


def test_a_requester_out_of_time_gets_a_409_and_the_run_is_dropped(
        tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    cache.add_image()
    with running.daemon(tmp_path, cache.path,
                        image_cache_max_size=0,
                        api={'task_wait_timeout': 1}) as daemon:
        held = lockutils.external_lock('glance-cache-prune',
                                       lock_path=cache.path)
        held.acquire()
        try:
            response = daemon.request('POST', '/v2/cache/prune',
                                      token='admin')
            assert response.status_code == 409, response.text
            time.sleep(1)
        finally:
            held.release()
        time.sleep(1)
        # Nobody wanted that run any more: it never happened.
        assert [run for run in _runs(daemon) if run['trigger'] == 'API'] == []
        assert len(cache.images()) == 1
