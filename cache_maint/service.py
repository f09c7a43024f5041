"""The cache-maint service: periodic tasks and the admin API in one process.

Under oslo.service's threading backend the launcher forks a worker process
and, on SIGHUP, re-reads the configuration and forks a fresh worker; it
never calls ``reset()``. So ``__init__`` keeps the configuration only, and
everything with state (the cache, threads, sockets) is made in ``start()``
and torn down in ``stop()``.
"""

import threading
import time

from oslo_log import log as logging
from oslo_service import service

from cache_maint.api import deploy
from cache_maint.api import server
from cache_maint import cache
from cache_maint import exception
from cache_maint import metrics
from cache_maint import periodic
from cache_maint import runs
from cache_maint import singleflight
from cache_maint import startup
from cache_maint import status
from cache_maint import targets
from cache_maint import version
from cache_maint import watcher

LOG = logging.getLogger(__name__)


class MaintenanceService(service.Service):
    """Clean and prune one image cache on a timer and on request."""

    def __init__(self, conf, listener=None, metrics_listener=None):
        super().__init__()
        self.conf = conf
        #: The API's socket, bound by the launcher and inherited by every
        #: worker; without one, the worker binds its own. The same for the
        #: metrics' (unbound while [metrics] is off).
        self.listener = listener
        self.metrics_listener = metrics_listener
        self._stopped = threading.Event()
        # cotyledon may call stop() from its signal thread while start() is
        # still running: the two never interleave.
        self._lifecycle = threading.Lock()
        self._cache = self._api = self._periodic = self._stop_runs = None
        self._runner = self._flights = self._watcher = None
        self._metrics = None

    def start(self):
        with self._lifecycle:
            self._start()

    def _start(self):
        super().start()
        self._stopped.clear()
        self._stop_runs = threading.Event()
        self._cache = cache.Cache.from_conf(self.conf)
        try:
            self._cache.setup()
        except exception.CacheMaintError as e:
            # It was usable when the launcher checked it. Keep serving: each
            # run reports the fault until it is mended, then runs succeed.
            LOG.error('The image cache is not usable at the moment: %s', e)
        self._runner = runs.TaskRunner(self.conf, self._cache,
                                       stop_event=self._stop_runs,
                                       idle_since=time.time())
        self._flights = singleflight.Flights(self._runner)
        self._api = server.APIServer(
            self.conf, deploy.loadapp(self.conf, self._cache, self._runner,
                                      self._flights, self._watching),
            self.listener)
        self._api.start()
        if self.conf.metrics.enabled:
            self._serve_metrics()
        status.record_schedule(self._cache, self.conf)
        self._periodic = periodic.PeriodicTasks(self.conf, self._runner)
        self._periodic.start()
        if self.conf.prune.watch:
            self._watch()
        status.record_start(self._cache, self._watching())
        startup.freeze_start_up_objects()
        LOG.info('cache-maint %s is maintaining %s with the %s driver '
                 '(limit %d bytes)', version.version_string(),
                 self.conf.image_cache_dir,
                 self._cache.metadata.name,
                 self.conf.image_cache_max_size)

    def _serve_metrics(self):
        try:
            self._metrics = metrics.Exporter(self.conf, self._cache,
                                             self.metrics_listener).start()
            # A run's outcome shows at once, not at the next look.
            self._runner.after_run = self._metrics.poke
        except exception.CacheMaintError as e:
            # Only a worker without the launcher's socket binds its own.
            LOG.error('Not serving metrics: %s', e)

    def _watch(self):
        """Prune within react_delay of a target crossed (watcher)."""
        runner = self._runner
        try:
            self._watcher = watcher.CacheWatcher(
                self._cache.files, targets.Targets.from_conf(self.conf),
                lambda: runner.prune(wait=0, trigger='watch'),
                self.conf.prune.react_delay).start()
        except exception.CacheMaintError as e:
            LOG.error('Not watching the image cache (%s); the periodic prune '
                      'goes on', e)

    def _watching(self):
        return self._watcher is not None and self._watcher.active

    def stop(self, graceful=True):
        """Stop the timer and the API.

        A run in progress stops at its next safe point, between two batches
        of deletions.
        """
        with self._lifecycle:
            self._stop(graceful)

    def _stop(self, graceful):
        LOG.info('cache-maint is stopping')
        if self._stop_runs is not None:
            self._stop_runs.set()
        if self._flights is not None:
            self._flights.close()
        if self._watcher is not None:
            self._watcher.stop()
        if self._periodic is not None:
            self._periodic.stop()
        if self._api is not None:
            self._api.stop()
        if self._metrics is not None:
            self._metrics.stop()
        if self._periodic is not None:
            self._periodic.wait()
        if self._cache is not None:
            status.record_stop(self._cache)
            self._cache.close()
        self._cache = self._api = self._periodic = None
        self._runner = self._flights = self._watcher = None
        self._metrics = None
        startup.unfreeze()
        super().stop(graceful)
        self._stopped.set()

    def wait(self):
        self._stopped.wait()

    def reset(self):
        """Nothing to do: a reload arrives as a new worker process."""
