"""Run a maintenance task the one way everyone runs it.

The timer, the API and ``cache-maint-manage`` all call a TaskRunner: it
takes the task's locks (so no two runs of a task ever overlap, whoever asked
for them), runs the task function from ``cache_maint.maintenance`` with the
current configuration, logs how the run went, and keeps a record of it.

The record of recent runs is the service's own account of what it did: when
each run started and finished, who asked, and how it ended. It is what an
operator (``GET /v2/cache/runs``) and the tests read to see that runs of a
task never overlap and that a failed run was reported.
"""

import collections
import contextlib
import dataclasses
import threading
import time

from oslo_log import log as logging

from cache_maint import exception
from cache_maint import locks
from cache_maint import maintenance
from cache_maint import targets

LOG = logging.getLogger(__name__)

#: How many of the most recent runs the record keeps, all tasks together.
RUN_HISTORY = 200


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run of a task, as it ended."""

    task: str
    trigger: str
    started_at: float       # epoch seconds, once the task's lock was held
    finished_at: float
    outcome: str            # succeeded, stopped or failed
    error: str = None
    result: dict = None
    failures: int = 0       # files the run could not remove
    #: Prune: {reason: {'files': n, 'bytes': b}} of what it evicted.
    by_reason: dict = None

    def to_dict(self):
        return dict(dataclasses.asdict(self),
                    duration=round(self.finished_at - self.started_at, 6))


class TaskRunner:
    """Runs clean and prune on one cache, one run of each at a time."""

    def __init__(self, conf, cache, stop_event=None, idle_since=None):
        self.conf = conf
        self.cache = cache
        #: The service's start: no image is idle from before it.
        self.idle_since = idle_since
        self.stop_event = stop_event
        self._locks = locks.TaskLocks(conf, stop_event)
        self._runs = collections.deque(maxlen=RUN_HISTORY)
        self._runs_lock = threading.Lock()

    def runs(self):
        """The record of recent runs, oldest first."""
        with self._runs_lock:
            return list(self._runs)

    def last_runs(self):
        """{task: its most recent RunRecord}, for the tasks that ran."""
        return {record.task: record for record in self.runs()}

    def clean(self, wait=None, trigger='request', **hooks):
        """Run clean; wait at most ``wait`` s (None: forever) for the lock.

        ``hooks`` are those of ``_run``.
        """
        return self._run('clean', wait, trigger, lambda: maintenance.clean(
            self.cache, self.conf.image_cache_stall_time,
            stop_event=self.stop_event), **hooks)

    def prune(self, wait=None, trigger='request', **hooks):
        """Run prune; wait at most ``wait`` s (None: forever) for the lock.

        ``hooks`` are those of ``_run``.
        """
        return self._run('prune', wait, trigger, lambda: maintenance.prune(
            self.cache, self.conf.image_cache_max_size,
            stop_event=self.stop_event,
            targets=targets.Targets.from_conf(self.conf),
            idle_since=self.idle_since,
            max_delete_rate=self.conf.prune.max_delete_rate), **hooks)

    def _run(self, task, wait, trigger, work, on_start=None, give_up=None):
        """Run ``work`` under the task's locks, and record how it went.

        ``on_start`` is called once the locks are held; ``give_up()``
        returning True ends the wait for them with TaskInProgress.
        """
        with contextlib.ExitStack() as held:
            self._take_locks(held, task, wait, trigger, give_up)
            if on_start is not None:
                on_start()
            started, clock = time.time(), time.monotonic()
            try:
                result = work()
            except exception.CacheMaintError as e:
                LOG.error('%s run (%s) failed: %s', task.capitalize(),
                          trigger, e)
                self._record(task, trigger, started, 'failed', error=e)
                raise
            except Exception as e:
                LOG.exception('%s run (%s) failed unexpectedly',
                              task.capitalize(), trigger)
                self._record(task, trigger, started, 'failed', error=e)
                raise
            # Recorded while the lock is still held, so that the record
            # of one run always ends before the next run's begins.
            self._record(task, trigger, started,
                         'stopped' if getattr(result, 'stopped', False)
                         else 'succeeded', result=result.to_dict(),
                         failures=result.failures,
                         by_reason=getattr(result, 'by_reason', None))
        LOG.debug('%s run (%s) took %.3f s', task.capitalize(), trigger,
                  time.monotonic() - clock)
        return result

    def _take_locks(self, stack, task, wait, trigger, give_up=None):
        """Hold the task's locks for the rest of ``stack``.

        The lock files live in the cache directory: when it is gone or
        read-only, the run fails before it starts, and is logged and
        recorded like any failed run. A run held elsewhere, or a stop
        requested while waiting, is no run and is not recorded.
        """
        try:
            stack.enter_context(self._locks.hold(task, wait, give_up))
        except exception.CacheDirError as e:
            LOG.error('%s run (%s) failed: %s', task.capitalize(), trigger,
                      e)
            self._record(task, trigger, time.time(), 'failed', error=e)
            raise

    def _record(self, task, trigger, started, outcome, error=None,
                result=None, failures=0, by_reason=None):
        record = RunRecord(
            task=task, trigger=trigger, started_at=started,
            finished_at=time.time(), outcome=outcome,
            error=_public_error(error), result=result, failures=failures,
            by_reason=by_reason)
        with self._runs_lock:
            self._runs.append(record)


def _public_error(error):
    """What the record may say of an error: never a host path or trace."""
    if error is None:
        return None
    if isinstance(error, exception.CacheMaintError):
        return error.public_message
    return 'unexpected %s; the service log has the details' % (
        type(error).__name__)
