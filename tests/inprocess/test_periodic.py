"""The periodic tasks: built from the configuration, failures survived."""

import threading

import pytest

from cache_maint import exception
from cache_maint import periodic

from tests.support import processes
from tests.support import settings


class FakeRunner:
    """Stands in for TaskRunner only; the tasks under test are real."""

    def __init__(self, failures=0, busy=0):
        self.calls = []
        self.failures = failures
        self.busy = busy
        self.enough = threading.Event()

    def _run(self, task, wait, trigger):
        self.calls.append((task, wait, trigger))
        if len(self.calls) >= 3:
            self.enough.set()
        if self.busy:
            self.busy -= 1
            raise exception.TaskInProgress('busy', task=task, wait=wait)
        if self.failures:
            self.failures -= 1
            raise exception.MetadataError('the cache database is locked')

    def clean(self, wait=None, trigger=None):
        self._run('clean', wait, trigger)

    def scheduled(self, task, when):
        pass

    def prune(self, wait=None, trigger=None):
        self._run('prune', wait, trigger)


@pytest.mark.parametrize('clean, prune, expected', [
    (0, 0, []), (0, 60, ['periodic_prune']), (30, 0, ['periodic_clean']),
    (30, 60, ['periodic_clean', 'periodic_prune'])])
def test_zero_disables_a_task(tmp_path, clean, prune, expected):
    conf = settings.make_conf(tmp_path, cache_clean_interval=clean,
                              cache_prune_interval=prune)
    built = periodic.build_callables(conf, FakeRunner())
    assert [fn.__name__ for fn, _args, _kwargs in built] == expected
    spacing = [fn._periodic_spacing for fn, _args, _kwargs in built]
    assert spacing == [v for v in (clean, prune) if v]


def run_worker(tmp_path, runner):
    conf = settings.make_conf(tmp_path, cache_clean_interval=0,
                              cache_prune_interval=1)
    tasks = periodic.PeriodicTasks(conf, runner)
    tasks.start()
    try:
        assert runner.enough.wait(30), runner.calls
    finally:
        tasks.stop()
        tasks.wait(30)


def test_a_failing_run_does_not_stop_the_schedule(tmp_path, caplog):
    runner = FakeRunner(failures=2)
    run_worker(tmp_path, runner)
    assert [c[0] for c in runner.calls[:3]] == ['prune'] * 3
    # The periodic timer never waits for a run held elsewhere.
    assert all(call[1:] == (0, 'periodic') for call in runner.calls)


def test_a_busy_task_is_skipped_not_failed(tmp_path, caplog):
    caplog.set_level('INFO', logger='cache_maint.periodic')
    runner = FakeRunner(busy=1)
    run_worker(tmp_path, runner)
    assert any('Periodic prune skipped' in r.getMessage()
               for r in caplog.records)


def test_each_task_runs_once_at_start(tmp_path):
    """A restart or SIGHUP must not push a daily clean a day further."""
    conf = settings.make_conf(tmp_path, cache_clean_interval=86400,
                              cache_prune_interval=86400)
    runner = FakeRunner()
    tasks = periodic.PeriodicTasks(conf, runner)
    tasks.start()
    try:
        processes.wait_for(lambda: len(runner.calls) == 2, 'the first runs')
    finally:
        tasks.stop()
        tasks.wait(30)
    assert sorted(call[0] for call in runner.calls) == ['clean', 'prune']
