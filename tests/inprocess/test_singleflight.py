"""Runs shared by the requests that want one (cache_maint.singleflight)."""

from concurrent import futures
import threading

import pytest

from cache_maint import cache as cm_cache
from cache_maint import exception
from cache_maint import runs
from cache_maint import singleflight

from tests.support import caches


class Task:
    """A run_task whose lock the test holds, then lets go."""

    def __init__(self):
        self.locked = threading.Event()
        self.locked.set()
        self.runs = 0
        self.failure = None

    def __call__(self, on_start, give_up):
        while self.locked.is_set():
            if give_up():
                raise exception.TaskInProgress('busy', task='t', wait=0)
            threading.Event().wait(0.01)
        on_start()
        self.runs += 1
        if self.failure:
            raise self.failure
        return self.runs


def test_requests_while_a_run_waits_share_it():
    task = Task()
    flight = singleflight.SingleFlight('prune', task)
    with futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = [pool.submit(flight.run, None) for _ in range(12)]
        threading.Event().wait(0.2)
        task.locked.clear()
        assert [r.result(10) for r in results] == [1] * 12
    assert task.runs == 1


def test_a_request_after_the_start_gets_the_next_run():
    task = Task()
    task.locked.clear()
    flight = singleflight.SingleFlight('prune', task)
    assert flight.run() == 1
    assert flight.run() == 2


def test_a_requester_out_of_time_gives_up_and_so_does_the_run():
    task = Task()
    flight = singleflight.SingleFlight('prune', task)
    with pytest.raises(exception.TaskInProgress):
        flight.run(wait=0.1)
    task.locked.clear()
    threading.Event().wait(0.2)
    assert task.runs == 0, 'a run nobody waited for still ran'


def test_a_failure_reaches_every_requester():
    task = Task()
    task.failure = exception.MetadataError('database gone')
    flight = singleflight.SingleFlight('clean', task)
    with futures.ThreadPoolExecutor(max_workers=3) as pool:
        results = [pool.submit(flight.run, None) for _ in range(3)]
        threading.Event().wait(0.2)
        task.locked.clear()
        for result in results:
            with pytest.raises(exception.MetadataError, match='gone'):
                result.result(10)


def test_closed_flights_start_no_shared_run(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    conf = cache.conf()
    subject = cm_cache.Cache.from_conf(conf)
    subject.setup()
    flights = singleflight.Flights(runs.TaskRunner(conf, subject))
    assert flights.run('prune').to_dict() == {'total_files_pruned': 0,
                                              'total_bytes_pruned': 0}
    flights.close()
    with pytest.raises(exception.ServiceStopping):
        flights.run('prune')
