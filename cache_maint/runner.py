"""Run a maintenance task the one way everyone runs it.

The timer, the API and ``cache-maint-manage`` all call a TaskRunner: it
takes the task's locks (so no two runs of a task ever overlap, whoever asked
for them), runs the task function from ``cache_maint.maintenance`` with the
current configuration, and logs how the run went.
"""

import time

from oslo_log import log as logging

from cache_maint import exception
from cache_maint import locks
from cache_maint import maintenance

LOG = logging.getLogger(__name__)


class TaskRunner:
    """Runs clean and prune on one driver, one run of each at a time."""

    def __init__(self, conf, driver, stop_event=None):
        self.conf = conf
        self.driver = driver
        self.stop_event = stop_event
        self._locks = locks.TaskLocks(conf, stop_event)

    def clean(self, wait=None, trigger='request'):
        """Run clean; wait at most ``wait`` s (None: forever) for the lock."""
        return self._run('clean', wait, trigger, lambda: maintenance.clean(
            self.driver, self.conf.image_cache_stall_time,
            stop_event=self.stop_event))

    def prune(self, wait=None, trigger='request'):
        """Run prune; wait at most ``wait`` s (None: forever) for the lock."""
        return self._run('prune', wait, trigger, lambda: maintenance.prune(
            self.driver, self.conf.image_cache_max_size,
            stop_event=self.stop_event))

    def _run(self, task, wait, trigger, work):
        with self._locks.hold(task, wait):
            started = time.monotonic()
            try:
                result = work()
            except exception.CacheMaintError as e:
                LOG.error('%s run (%s) failed: %s', task.capitalize(),
                          trigger, e)
                raise
            except Exception:
                LOG.exception('%s run (%s) failed unexpectedly',
                              task.capitalize(), trigger)
                raise
        LOG.debug('%s run (%s) took %.3f s', task.capitalize(), trigger,
                  time.monotonic() - started)
        return result
