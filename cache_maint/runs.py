"""Run a maintenance task the one way everyone runs it.

The timer, the API and ``cache-maint-manage`` all call a TaskRunner: it
takes the task's locks (so no two runs of a task ever overlap, whoever asked
for them), runs the task function from ``cache_maint.maintenance`` with the
current configuration, logs how the run went, and keeps a record of it.

The record of runs is the service's own account of what it did: when each
run started and finished, who asked, how it ended, what it removed and why,
and what it kept. It is kept in the cache's state (``cache_maint.state``), so
that the runs of the timer, the watcher, the API and ``cache-maint-manage``
are one history that survives restarts and reloads; while the state cannot
be written, the records are kept in memory. It is what an operator
(``GET /v2/cache/runs``) and the tests read to see that runs of a task never
overlap and that a failed run was reported.
"""

import collections
import contextlib
import dataclasses
import os
import threading
import time

from oslo_log import log as logging

from cache_maint import exception
from cache_maint import locks
from cache_maint import maintenance
from cache_maint import state
from cache_maint import status
from cache_maint import targets

LOG = logging.getLogger(__name__)

#: How many of the most recent runs the record keeps, all tasks together.
RUN_HISTORY = state.RUN_HISTORY

#: Ids a log line lists: the removed ids are logged in lines of this many.
IDS_PER_LOG_LINE = 50


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
    #: {reason: {'files': n, 'bytes': b}} of what it removed.
    by_reason: dict = None
    #: The first IDS_PER_RUN image ids (prune) or paths (clean) removed,
    #: and how many more there were.
    removed: tuple = ()
    removed_omitted: int = 0
    #: Images prune kept although a target would have evicted them.
    skipped_in_use: int = 0
    skipped_pinned: int = 0
    skipped_young: int = 0
    pid: int = None
    #: How a clean looked at its records: {'checked', 'forgotten',
    #: 'full_reconciliation'} (``maintenance.CleanResult``); None for a
    #: prune, or a clean that did not get to them.
    records: dict = None

    def to_dict(self):
        return dict(dataclasses.asdict(self), removed=list(self.removed),
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
        #: Called with no argument once a run is recorded and its locks
        #: are free (the metrics look again).
        self.after_run = None
        # This process's runs; and those the state could not take yet,
        # written there as soon as it takes a record again.
        self._runs = collections.deque(maxlen=RUN_HISTORY)
        self._unsaved = collections.deque(maxlen=RUN_HISTORY)
        self._runs_lock = threading.Lock()

    def runs(self, task=None, limit=RUN_HISTORY):
        """The record of recent runs (dicts), oldest first.

        Every process's runs, from the state, with this process's that the
        state could not take; this process's alone if the state cannot be
        read.
        """
        unsaved, mine = self._in_memory()
        try:
            # In the order they were recorded, whatever the clock said.
            records = self.cache.state.runs(task=task, limit=limit) + unsaved
        except exception.StateError as e:
            LOG.warning('Showing only the runs of this process: %s', e)
            records = mine
        return [r for r in records if task in (None, r['task'])][-limit:]

    def last_runs(self):
        """{task: its most recent run record (a dict)}, for those that ran."""
        unsaved, mine = self._in_memory()
        try:
            last = self.cache.state.last_runs()
        except exception.StateError:
            last, unsaved = {}, mine
        for record in unsaved:
            known = last.get(record['task'])
            if known is None or known['finished_at'] <= record['finished_at']:
                last[record['task']] = record
        return last

    def _in_memory(self):
        """(the records the state has not taken yet, this process's)."""
        with self._runs_lock:
            return ([r.to_dict() for r in self._unsaved],
                    [r.to_dict() for r in self._runs])

    def last_run(self):
        """This process's most recent RunRecord, or None."""
        with self._runs_lock:
            return self._runs[-1] if self._runs else None

    def scheduled(self, task, when):
        """The timer runs ``task`` next at ``when``: for the status."""
        status.record_next_run(self.cache, task, when)

    def preview(self, task):
        """What ``task`` would remove now: a dry run, with no lock taken.

        It reads only, so it neither waits for a run nor holds one up; a
        run in progress meanwhile may make it out of date at once.
        """
        result = self._work(task, dry_run=True)()
        LOG.info('Dry run of %s: it would remove %d files (%d bytes)', task,
                 getattr(result, 'files', 0), getattr(result, 'bytes', 0))
        return result

    def clean(self, wait=None, trigger='request', **hooks):
        """Run clean; wait at most ``wait`` s (None: forever) for the lock.

        ``hooks`` are those of ``_run``.
        """
        return self._run('clean', wait, trigger, self._work('clean'),
                         **hooks)

    def prune(self, wait=None, trigger='request', **hooks):
        """Run prune; wait at most ``wait`` s (None: forever) for the lock.

        ``hooks`` are those of ``_run``.
        """
        return self._run('prune', wait, trigger, self._work('prune'),
                         **hooks)

    def _work(self, task, dry_run=False):
        """The task function, with the configuration, ready to call."""
        if task == 'clean':
            return lambda: maintenance.clean(
                self.cache, self.conf.image_cache_stall_time,
                stop_event=self.stop_event, dry_run=dry_run,
                reconcile_interval=(
                    self.conf.maintenance.reconcile_interval))
        return lambda: maintenance.prune(
            self.cache, self.conf.image_cache_max_size,
            stop_event=self.stop_event,
            targets=targets.Targets.from_conf(self.conf),
            idle_since=self.idle_since,
            max_delete_rate=self.conf.prune.max_delete_rate,
            dry_run=dry_run, policy=self.conf.prune.eviction_policy)

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
                # What it removed before it failed (prune says).
                partial = getattr(e, 'partial', None)
                self._record(task, trigger, started, 'failed', error=e,
                             result=partial)
                if partial is not None:
                    self._after(task, partial)
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
                         else 'succeeded', result=result)
        self._after(task, result)
        LOG.debug('%s run (%s) took %.3f s', task.capitalize(), trigger,
                  time.monotonic() - clock)
        return result

    def _after(self, task, result):
        """Once the locks are free: log what went, remember the evicted."""
        _log_removed(task, result.removed_ids())
        if task == 'prune' and result.removed:
            self._remember_evicted(result.removed)
        if self.after_run is not None:
            self.after_run()

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
                result=None):
        """Keep the record of a run, in the state and in memory."""
        details = {}
        if result is not None:
            removed = result.removed_ids()
            details = dict(
                result=result.to_dict(), failures=result.failures,
                by_reason=result.by_reason,
                removed=tuple(removed[:state.IDS_PER_RUN]),
                removed_omitted=max(0, len(removed) - state.IDS_PER_RUN),
                skipped_in_use=getattr(result, 'skipped_in_use', 0),
                skipped_pinned=getattr(result, 'skipped_pinned', 0),
                skipped_young=getattr(result, 'skipped_young', 0),
                records=(result.records_report()
                         if hasattr(result, 'records_report') else None))
        record = RunRecord(
            task=task, trigger=trigger, started_at=started,
            finished_at=time.time(), outcome=outcome,
            error=_public_error(error), pid=os.getpid(), **details)
        with self._runs_lock:
            self._runs.append(record)
        self._keep(record)

    def _remember_evicted(self, evicted):
        """What prune evicted, for the refetches; once its lock is free."""
        try:
            self.cache.state.remember_evicted(evicted)
        except exception.StateError as e:
            LOG.warning('The images this prune evicted are not remembered: '
                        '%s', e)

    def _keep(self, record):
        """Write the record to the state, after any it could not take.

        A state that cannot be written costs the history, never the run:
        the records wait in memory (``runs()`` shows them) and go to the
        state, in order, once it takes them again. The fault is logged
        once.
        """
        with self._runs_lock:
            self._unsaved.append(record)
            failing = len(self._unsaved) > 1
            try:
                while self._unsaved:
                    self.cache.state.add_run(self._unsaved[0].to_dict())
                    self._unsaved.popleft()
            except exception.StateError as e:
                if not failing:
                    LOG.warning('The record of this run is kept in memory '
                                'until the state database takes it: %s', e)
                return
        if failing:
            LOG.info('The state database is writable again: the runs kept '
                     'in memory are in it')


def _log_removed(task, ids):
    """Log what a run removed, at INFO, in lines of a few ids each."""
    verb = 'evicted' if task == 'prune' else 'removed'
    for start in range(0, len(ids), IDS_PER_LOG_LINE):
        LOG.info('%s %s: %s', task.capitalize(), verb,
                 ', '.join(ids[start:start + IDS_PER_LOG_LINE]))


def _public_error(error):
    """What the record may say of an error: never a host path or trace."""
    if error is None:
        return None
    if isinstance(error, exception.CacheMaintError):
        return error.public_message
    return 'unexpected %s; the service log has the details' % (
        type(error).__name__)
