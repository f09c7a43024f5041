"""The metrics as Prometheus reads them: families, registry, WSGI app.

Made at each scrape from the observer's latest snapshot
(``cache_maint.metrics.observer``), with prometheus_client's families, on a
registry of the service's own.
"""

import prometheus_client
from prometheus_client import metrics_core
from prometheus_client import registry as prom_registry
from prometheus_client import utils as prom_utils

from cache_maint.metrics import observer
from cache_maint import targets as evict_targets
from cache_maint import version


class Collector:
    """The metric families of an Observer's snapshot, for a registry."""

    def __init__(self, conf, observer):
        self._observer = observer
        targets = evict_targets.Targets.from_conf(conf)
        self._limits = (targets.max_size, targets.high_mark,
                        targets.low_mark)
        self._build = {'version': version.version_string(),
                       'driver': conf.image_cache_driver}

    def describe(self):
        return self._families(observer.Snapshot())

    def collect(self):
        return self._families(self._observer.snapshot)

    def _families(self, snap):
        max_size, high_mark, low_mark = self._limits
        families = []

        def gauge(name, documentation, value=None, labels=(), samples=()):
            family = metrics_core.GaugeMetricFamily(
                name, documentation, value=value, labels=labels or None)
            for label_values, sample in samples:
                family.add_metric(label_values, sample)
            families.append(family)

        def counter(name, documentation, value=None, labels=(),
                    samples=()):
            family = metrics_core.CounterMetricFamily(
                name, documentation, value=value, labels=labels or None)
            for label_values, sample in samples:
                family.add_metric(label_values, sample)
            families.append(family)

        usage = snap.usage or {}
        gauge('glance_cache_size_bytes',
              'Bytes of the files in the cache, by state: cached images, '
              'downloads in progress (incomplete), failed ones (invalid), '
              'queued images.', labels=('state',),
              samples=[((state,), usage[state][1]) for state in observer.STATES
                       if state in usage])
        gauge('glance_cache_files', 'Files in the cache, by state.',
              labels=('state',),
              samples=[((state,), usage[state][0]) for state in observer.STATES
                       if state in usage])
        gauge('glance_cache_max_size_bytes',
              'image_cache_max_size: the size prune keeps the cache under.',
              value=max_size)
        gauge('glance_cache_high_watermark_bytes',
              'The cached bytes above which prune starts.', value=high_mark)
        gauge('glance_cache_low_watermark_bytes',
              'The cached bytes down to which prune evicts, once started.',
              value=low_mark)
        gauge('glance_cache_filesystem_avail_bytes',
              "Bytes free for glance-api on the cache's filesystem.",
              value=snap.filesystem_avail)
        gauge('glance_cache_pins', 'Pinned images (prune never evicts them).',
              value=snap.pins)
        counter('glance_cache_evictions',
                'Files removed by prune and clean, by reason.',
                labels=('reason',), samples=[
                    ((reason,), snap.evictions.get(reason, (0, 0))[0])
                    for reason in _reasons(snap.evictions)])
        counter('glance_cache_evicted_bytes',
                'Bytes removed by prune and clean, by reason.',
                labels=('reason',), samples=[
                    ((reason,), snap.evictions.get(reason, (0, 0))[1])
                    for reason in _reasons(snap.evictions)])
        counter('glance_cache_fills', 'Images glance-api cached.',
                value=snap.fills)
        counter('glance_cache_filled_bytes', 'Bytes of the images '
                'glance-api cached.', value=snap.filled_bytes)
        counter('glance_cache_refetches',
                'Images cached again less than %d s after this node evicted '
                'them.' % observer.REFETCH_WINDOW, value=snap.refetches)
        counter('glance_cache_refetched_bytes',
                'Bytes of the images cached again less than %d s after this '
                'node evicted them.' % observer.REFETCH_WINDOW,
                value=snap.refetched_bytes)
        counter('glance_cache_maint_runs',
                'Runs of clean and prune, whoever started them, by outcome.',
                labels=('task', 'outcome'), samples=[
                    ((task, outcome), snap.runs.get((task, outcome), 0))
                    for task, outcome in _runs(snap.runs)])
        families.append(self._durations(snap))
        gauge('glance_cache_maint_last_success_timestamp_seconds',
              'When the latest successful run of each task ended.',
              labels=('task',), samples=[
                  ((task,), when)
                  for task, when in sorted(snap.last_success.items())])
        build = metrics_core.InfoMetricFamily(
            'glance_cache_maint_build', 'The version of cache-maint and its '
            'metadata driver.')
        build.add_metric([], self._build)
        families.append(build)
        return families

    def _durations(self, snap):
        family = metrics_core.HistogramMetricFamily(
            'glance_cache_maint_run_duration_seconds',
            'How long the runs of clean and prune took.', labels=('task',))
        tasks = observer.TASKS + tuple(
            sorted(set(snap.durations) - set(observer.TASKS)))
        for task in tasks:
            counts, total = snap.durations.get(
                task, ((0,) * len(observer.DURATION_BUCKETS), 0.0))
            family.add_metric(
                [task], [(prom_utils.floatToGoString(bound), count)
                         for bound, count in zip(observer.DURATION_BUCKETS,
                                                 counts)],
                total)
        return family


def _reasons(evictions):
    return observer.REASONS + tuple(
        sorted(set(evictions) - set(observer.REASONS)))


def _runs(runs):
    known = [(task, outcome) for task in observer.TASKS
             for outcome in observer.OUTCOMES]
    return known + sorted(set(runs) - set(known))


def make_registry(conf, observer):
    """A registry of its own: the observer's metrics and the process's.

    Not prometheus_client's global one, and no ``_created`` series: the
    families are made at each scrape from the snapshot, with none.
    """
    registry = prom_registry.CollectorRegistry()
    registry.register(Collector(conf, observer))
    prometheus_client.ProcessCollector(registry=registry)
    return registry


def make_app(registry):
    """The WSGI application: ``GET``/``HEAD /metrics``, and nothing else."""
    exposition = prometheus_client.make_wsgi_app(registry)

    def application(environ, start_response):
        if environ.get('PATH_INFO') != '/metrics':
            return _plain(start_response, '404 Not Found',
                          'Nothing here: the metrics are at /metrics.\n')
        method = environ.get('REQUEST_METHOD')
        if method == 'GET':
            return exposition(environ, start_response)
        if method != 'HEAD':
            return _plain(start_response, '405 Method Not Allowed',
                          'GET or HEAD only.\n', [('Allow', 'GET, HEAD')])
        answered = []
        body = b''.join(exposition(
            dict(environ, REQUEST_METHOD='GET'),
            lambda status, headers, exc_info=None: answered.append(
                (status, headers))))
        status, headers = answered[0]
        start_response(status, list(headers) + [
            ('Content-Length', str(len(body)))])
        return []

    return application


def _plain(start_response, status, text, headers=()):
    body = text.encode('utf-8')
    start_response(status, [('Content-Type', 'text/plain; charset=utf-8'),
                            ('Content-Length', str(len(body)))]
                   + list(headers))
    return [body]
