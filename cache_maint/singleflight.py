"""Runs of a task asked for by many, shared: one waits, one runs.

Clean and prune requests can arrive faster than runs finish, and a run may
wait a long time for its task's lock while glance-api or the command line
holds it. Requests that arrive while a run still waits for its lock share
that run; requests that arrive once it has started share the next one. So
any number of requests make at most two runs of a task at a time, one
running and one waiting, and each request gets the counts of a run that
started after it arrived. Runs happen in threads of the flight's own: a
requester only waits for the outcome.

Each requester waits for the run to start at most as long as it said; the
run stops waiting for its lock once every requester has given up.
"""

import threading
import time

from oslo_log import log as logging

from cache_maint import exception

LOG = logging.getLogger(__name__)


class _Requester:
    """One request for a run, until the run starts or it gives up."""

    def __init__(self, wait):
        self.deadline = None if wait is None else time.monotonic() + wait
        self.wait = wait
        self.woken = threading.Event()  # the run started, ended or gave up
        self.expired = False


class _Run:
    """One run, from the first request that asked for it to its end."""

    def __init__(self):
        self.requesters = []    # those still waiting for it to start
        self.started = False
        self.done = threading.Event()
        self.result = None
        self.error = None


class SingleFlight:
    """Shares the runs of one task between the requests that want one.

    ``run_task(on_start, give_up)`` makes one run: it calls ``on_start``
    once it holds the task's locks, and, while it waits for them, asks
    ``give_up()`` whether to stop waiting.
    """

    def __init__(self, task, run_task):
        self.task = task
        self._run_task = run_task
        self._guard = threading.Lock()
        self._next = None       # the run new requests join: not started
        self._closed = False

    def run(self, wait=None):
        """The result of a run that starts after this call.

        Waits at most ``wait`` seconds (None: for ever) for the run to get
        the task's locks, held by a run elsewhere, then raises
        TaskInProgress; once started, the run is waited for to its end. Its
        error, if it fails, is raised to every requester.
        """
        requester = _Requester(wait)
        with self._guard:
            if self._closed:
                raise exception.ServiceStopping(
                    'refused a %s request: the service is stopping'
                    % self.task)
            run = self._next
            if run is None:
                run = self._next = _Run()
                threading.Thread(target=self._fly, args=(run,), daemon=True,
                                 name='%s-run' % self.task).start()
            run.requesters.append(requester)
        requester.woken.wait()
        if requester.expired:
            raise exception.TaskInProgress(
                'a %s run is in progress and did not finish within %s s'
                % (self.task, wait), task=self.task, wait=wait)
        run.done.wait()
        if run.error is not None:
            raise run.error
        return run.result

    def _fly(self, run):
        try:
            run.result = self._run_task(lambda: self._start(run),
                                        lambda: self._give_up(run))
        except Exception as e:
            run.error = e
        finally:
            self._start(run)
            run.done.set()

    def _start(self, run):
        """The run holds its locks (or ended): its requesters go on."""
        with self._guard:
            run.started = True
            if self._next is run:
                self._next = None
            for requester in run.requesters:
                requester.woken.set()
            run.requesters = []

    def _give_up(self, run):
        """Release the requesters out of time; True once none is left."""
        now = time.monotonic()
        with self._guard:
            for requester in run.requesters:
                deadline = requester.deadline
                if deadline is not None and now >= deadline:
                    requester.expired = True
                    requester.woken.set()
            run.requesters = [r for r in run.requesters if not r.expired]
            if run.requesters:
                return False
            if self._next is run:
                self._next = None
            return True

    def close(self):
        """Start no other run; the one in progress ends on its own."""
        with self._guard:
            self._closed = True


class Flights:
    """A SingleFlight per task over a TaskRunner: what the API runs."""

    def __init__(self, runner, tasks=('clean', 'prune')):
        self._flights = {
            task: SingleFlight(task, self._runner_of(runner, task))
            for task in tasks}

    @staticmethod
    def _runner_of(runner, task):
        run = getattr(runner, task)
        return lambda on_start, give_up: run(
            wait=None, trigger='API', on_start=on_start, give_up=give_up)

    def run(self, task, wait=None):
        """The result of a shared run of ``task`` (see SingleFlight.run)."""
        return self._flights[task].run(wait=wait)

    def close(self):
        """Start no more runs: the service is stopping."""
        for flight in self._flights.values():
            flight.close()
