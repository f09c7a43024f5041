"""Metrics for Prometheus: the cache and its maintenance, as a snapshot.

An ``Observer`` looks at the cache every ``[metrics] refresh_interval``
seconds, in a thread of its own (``Exporter``): it reads the runs every
process recorded in the state since its previous look, and scans the cache
directory only when the directory changed (or every ``RESCAN`` seconds).
What it found is one immutable ``Snapshot``; a scrape is served the latest
one, so it never scans the directory, never waits for a look, and sees the
values of one look, never half of two.

The metrics are served on a listener of their own (``[metrics]``), by the
admin API's hardened server with small limits: a scraper needs no token and
never reaches the admin API. They follow Prometheus's conventions: base
units, ``_total`` counters, no image ids as labels; counters count from the
worker's start (a reload starts a new worker, which Prometheus sees as a
counter reset), except ``glance_cache_maint_last_success_timestamp_seconds``,
read from the state's history, which survives restarts.
"""

import threading

from cache_maint.api import server
from cache_maint.metrics import exposition
from cache_maint.metrics import observer as metrics_observer

#: Seconds ``Exporter.stop`` waits for a look in progress to end.
STOP_WAIT = 30


class Exporter:
    """An Observer looking in a thread, its metrics served on [metrics].

    ``listener`` is the metrics socket the launcher bound; without one,
    the server binds its own.
    """

    def __init__(self, conf, cache, listener=None):
        self.observer = metrics_observer.Observer(conf, cache)
        self.registry = exposition.make_registry(conf, self.observer)
        self._interval = conf.metrics.refresh_interval
        self._server = server.MetricsServer(
            conf, exposition.make_app(self.registry), listener)
        self._wake = threading.Event()
        self._stopping = False
        self._thread = None

    @property
    def address(self):
        return self._server.address

    def start(self):
        self._thread = threading.Thread(target=self._loop,
                                        name='metrics-observer', daemon=True)
        self._thread.start()
        self._server.start()
        return self

    def poke(self):
        """Look again now (a run just ended), rather than at the next tick."""
        self._wake.set()

    def _loop(self):
        while not self._stopping:
            self.observer.look()
            self._wake.wait(self._interval)
            self._wake.clear()

    def stop(self):
        """Stop serving and looking; a look in progress is waited for."""
        self._stopping = True
        self._wake.set()
        self._server.stop()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)
            self._thread = None
