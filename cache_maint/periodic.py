"""The periodic clean and prune tasks, run by a futurist PeriodicWorker.

futurist fixes a task's spacing when its decorator runs, so the periodic
callables are built here, when the service starts, from the configuration
it was given (a SIGHUP restarts the worker process with the new one).
"""

import threading
import time

import futurist
from futurist import periodics
from oslo_log import log as logging

from cache_maint import exception

LOG = logging.getLogger(__name__)


def _periodic(task, interval, runner):
    """A futurist periodic callable running ``task`` every ``interval`` s.

    A run that finds the task already running elsewhere is skipped: the
    other run does the same work. Any other failure propagates to futurist,
    which logs it through ``_on_failure`` and keeps the schedule.
    """
    run = getattr(runner, task)

    # The first run comes right at start: a new worker is forked at every
    # restart and SIGHUP, and waiting a whole interval first would let
    # frequent reloads postpone a daily clean forever.
    @periodics.periodic(interval, run_immediately=True)
    def periodic_task():
        # futurist spaces runs from their starts.
        runner.scheduled(task, time.time() + interval)
        try:
            run(wait=0, trigger='periodic')
        except (exception.TaskInProgress, exception.ServiceStopping) as e:
            LOG.info('Periodic %s skipped: %s', task, e)

    # futurist names tasks by their qualified name in its logs and stats.
    periodic_task.__name__ = periodic_task.__qualname__ = 'periodic_%s' % task
    return periodic_task


def _on_failure(callback, kind, spacing, exc_info, traceback=None):
    # Our own errors were already logged with their cause by the runner;
    # anything else gets its traceback. The next run stays on schedule.
    error = exc_info[1]
    if not isinstance(error, exception.CacheMaintError):
        LOG.error('Periodic task %s failed: %s', callback.__name__, error,
                  exc_info=exc_info)
    LOG.info('Next %s run in %s s', callback.__name__, spacing)


def build_callables(conf, runner):
    """(callable, args, kwargs) for every enabled task; 0 disables one."""
    callables = []
    for task, interval in (('clean', conf.cache_clean_interval),
                           ('prune', conf.cache_prune_interval)):
        if interval > 0:
            callables.append((_periodic(task, interval, runner), (), {}))
            LOG.info('Periodic %s every %d s', task, interval)
        else:
            LOG.info('Periodic %s is disabled', task)
    return callables


class PeriodicTasks:
    """A PeriodicWorker in its own thread.

    Its executor is a thread pool, so clean and prune never wait for each
    other.
    """

    def __init__(self, conf, runner):
        self._worker = periodics.PeriodicWorker(
            build_callables(conf, runner),
            executor_factory=lambda: futurist.ThreadPoolExecutor(
                max_workers=2),
            on_failure=_on_failure)
        self._thread = None

    def start(self):
        self._thread = threading.Thread(
            target=self._worker.start, kwargs={'allow_empty': True},
            name='periodic-tasks', daemon=True)
        self._thread.start()

    def stop(self):
        """Ask the worker to stop; runs in progress finish on their own."""
        self._worker.stop()

    def wait(self, timeout=None):
        self._worker.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
