"""Load: many API clients at once while the periodic tasks run every second.

A cache is built over its size limit, and the real ``cache-maint`` daemon
is started on it with ``cache_clean_interval`` and ``cache_prune_interval``
set to 1 s. A feeder thread plays glance-api: it keeps caching new images
(a file renamed into place, then its record) and leaving failed downloads
in ``invalid/``, so that every prune and clean has real work. Meanwhile N
clients, each a thread with its own keep-alive ``http.client``
connection, send a weighted mix of the API's requests for S seconds, and
a monitor keeps reading ``GET /v2/cache/runs``.

``run_load`` returns a ``Result``: what every client saw, the runs the
service recorded, what the feeder did, and the cache after a final prune
and clean. ``tests/faults/test_load.py`` judges it; ``python -m
bench.load`` reports it.
"""

import collections
import dataclasses
import http.client
import json
import os
import random
import sqlite3
import sys
import threading
import time
import uuid

from tests.support import caches
from tests.support import plans
from tests.support import running

#: The mix of requests: (name, weight, method, path maker, expected codes).
#: 404 is Glance's answer to deleting an image that is neither cached nor
#: queued (many are pruned first); 409 is documented for clean and prune
#: only if the wait for a run in progress runs out.
OPS = (
    ('list', 25, 'GET', lambda ids, rnd: '/v2/cache', (200,)),
    ('queue', 15, 'PUT', lambda ids, rnd: '/v2/cache/%s' % ids.pick(rnd),
     (202,)),
    ('delete', 15, 'DELETE',
     lambda ids, rnd: '/v2/cache/%s' % ids.pick(rnd), (204, 404)),
    ('clean', 5, 'POST', lambda ids, rnd: '/v2/cache/clean', (200, 409)),
    ('prune', 5, 'POST', lambda ids, rnd: '/v2/cache/prune', (200, 409)),
    ('versions', 35, 'GET', lambda ids, rnd: '/versions', (200,)),
)

#: Images in the cache at the start, and how many of them fit the limit.
IMAGES, KEEP = 2000, 1000

#: Images the feeder caches per second (and failed downloads it leaves).
FEED_RATE, INVALID_RATE = 100, 10

#: Seconds one request may take before the client gives up on it.
REQUEST_TIMEOUT = 600

#: Seconds, after the end, by which every client must have finished.
FINISH_DEADLINE = 300

#: Seconds between two reads of GET /v2/cache/runs by the monitor.
MONITOR_INTERVAL = 0.5

#: Glance's own sqlite timeout (DEFAULT_SQL_CALL_TIMEOUT).
GLANCE_SQL_TIMEOUT = 2

TOKEN = {'X-Auth-Token': 'admin'}


class IdPool:
    """Ids the clients pick from: every image ever cached, and some new."""

    def __init__(self, ids):
        self._ids = list(ids)
        self._lock = threading.Lock()

    def add(self, ids):
        with self._lock:
            self._ids.extend(ids)

    def pick(self, rnd):
        if rnd.random() < 0.1:
            return str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        with self._lock:
            return rnd.choice(self._ids)


@dataclasses.dataclass
class Sample:
    """What one client saw of one operation."""

    latencies: list = dataclasses.field(default_factory=list)
    statuses: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)


class Client(threading.Thread):
    """One API client: a keep-alive connection, requests until the end."""

    def __init__(self, index, port, ids, end, seed):
        super().__init__(name='load-client-%d' % index, daemon=True)
        self.port = port
        self.ids = ids
        self.end = end
        self.rnd = random.Random(seed * 1000 + index)
        self.samples = collections.defaultdict(Sample)
        self.errors = collections.Counter()
        self.finished_at = None

    def run(self):
        names = [op[0] for op in OPS]
        weights = [op[1] for op in OPS]
        by_name = {op[0]: op for op in OPS}
        conn = None
        try:
            while time.monotonic() < self.end:
                name = self.rnd.choices(names, weights)[0]
                _, _, method, path, _ = by_name[name]
                if conn is None:
                    conn = http.client.HTTPConnection(
                        '127.0.0.1', self.port, timeout=REQUEST_TIMEOUT)
                started = time.perf_counter()
                try:
                    conn.request(method, path(self.ids, self.rnd),
                                 headers=TOKEN)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as e:
                    # Counted, never hidden: the check fails on any.
                    self.errors['%s %s' % (name, type(e).__name__)] += 1
                    conn.close()
                    conn = None
                    continue
                sample = self.samples[name]
                sample.latencies.append(time.perf_counter() - started)
                sample.statuses[response.status] += 1
        finally:
            if conn is not None:
                conn.close()
            self.finished_at = time.monotonic()


class Feeder(threading.Thread):
    """glance-api caching images: file renamed into place, then recorded.

    New images are the most recently used, so each prune evicts older
    ones. A record that cannot be written within Glance's own sqlite
    timeout is what glance-api would fail a request for: it is counted.
    """

    def __init__(self, cache, ids, seed, rate=FEED_RATE,
                 invalid_rate=INVALID_RATE, tick=0.1):
        super().__init__(name='feeder', daemon=True)
        self.cache = cache
        self.ids = ids
        # Not the plan's seed: its ids would come again.
        self.rnd = random.Random('feeder-%s' % seed)
        self.per_tick = max(1, int(rate * tick))
        self.invalid_per_tick = max(1, int(invalid_rate * tick))
        self.tick = tick
        self.added = self.invalid = 0
        self.lock_timeouts = []
        #: Seconds each record took to write, lock wait included.
        self.record_seconds = []
        self.crashed = None
        self._stop_event = threading.Event()

    def _new(self):
        return str(uuid.UUID(int=self.rnd.getrandbits(128), version=4))

    def run(self):
        try:
            self._feed()
        except Exception as e:
            self.crashed = '%s: %s' % (type(e).__name__, e)
            raise

    def _feed(self):
        while not self._stop_event.wait(self.tick):
            ids = [self._new() for _ in range(self.per_tick)]
            sizes = [self.rnd.randint(plans.MIN_SIZE, plans.MAX_SIZE)
                     for _ in ids]
            for image_id, size in zip(ids, sizes):
                incomplete = os.path.join(self.cache.path, 'incomplete',
                                          image_id)
                with open(incomplete, 'wb') as f:
                    f.write(b'\0' * size)
                os.rename(incomplete, os.path.join(self.cache.path, image_id))
                self._record(image_id, size)
            self.added += len(ids)
            self.ids.add(ids)
            for _ in range(self.invalid_per_tick):
                with open(os.path.join(self.cache.path, 'invalid',
                                       self._new()), 'wb') as f:
                    f.write(b'\0' * plans.MIN_SIZE)
                self.invalid += 1

    def _record(self, image_id, size):
        if self.cache.driver == 'xattr':
            os.setxattr(os.path.join(self.cache.path, image_id), 'user.hits',
                        b'0')
            return
        now = time.time()
        conn = sqlite3.connect(self.cache.db_path,
                               timeout=GLANCE_SQL_TIMEOUT,
                               isolation_level=None)
        began = time.monotonic()
        try:
            conn.execute('INSERT INTO cached_images (image_id, '
                         'last_accessed, last_modified, hits, size) '
                         'VALUES (?, ?, ?, 0, ?)', (image_id, now, now, size))
        except sqlite3.OperationalError as e:
            self.lock_timeouts.append('%s at %.3f' % (e, time.time()))
        finally:
            self.record_seconds.append(time.monotonic() - began)
            conn.close()

    def stop(self):
        self._stop_event.set()
        self.join()


class RunsMonitor(threading.Thread):
    """Reads GET /v2/cache/runs all along: the record keeps the last 200."""

    def __init__(self, port, interval=MONITOR_INTERVAL):
        super().__init__(name='runs-monitor', daemon=True)
        self.port = port
        self.interval = interval
        self.runs = {}
        self.errors = collections.Counter()
        self.gaps = 0
        self._stop_event = threading.Event()

    def poll(self):
        """Merge the service's current record into what was seen."""
        conn = http.client.HTTPConnection('127.0.0.1', self.port,
                                          timeout=REQUEST_TIMEOUT)
        try:
            conn.request('GET', '/v2/cache/runs', headers=TOKEN)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as e:
            self.errors[type(e).__name__] += 1
            return
        finally:
            conn.close()
        if response.status != 200:
            self.errors['status %d' % response.status] += 1
            return
        runs = json.loads(body)['runs']
        # If none of these was seen before, runs may have been missed.
        keys = [_key(run) for run in runs]
        if self.runs and keys and not any(k in self.runs for k in keys):
            self.gaps += 1
        for key, run in zip(keys, runs):
            self.runs[key] = run

    def run(self):
        while not self._stop_event.wait(self.interval):
            self.poll()

    def stop(self):
        self._stop_event.set()
        self.join()
        self.poll()


def _key(run):
    return run['task'], run['trigger'], run['started_at']


def percentile(sorted_values, fraction):
    """The nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, int(round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclasses.dataclass
class Result:
    """Everything one load run saw."""

    clients: int
    seconds: float
    elapsed: float = 0.0
    samples: dict = dataclasses.field(default_factory=dict)
    errors: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    stuck_clients: list = dataclasses.field(default_factory=list)
    last_finish: float = None     # s after the end, the slowest client
    runs: list = dataclasses.field(default_factory=list)
    monitor_errors: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)
    monitor_gaps: int = 0
    fed: int = 0
    invalid_fed: int = 0
    feeder_lock_timeouts: list = dataclasses.field(default_factory=list)
    feeder_record_seconds: list = dataclasses.field(default_factory=list)
    feeder_crashed: str = None
    final: dict = dataclasses.field(default_factory=dict)
    limit: int = 0

    def unexpected(self):
        """{(operation, status): count} of statuses outside the op's own."""
        expected = {op[0]: op[4] for op in OPS}
        return {(name, status): count
                for name, sample in self.samples.items()
                for status, count in sample.statuses.items()
                if status not in expected[name]}

    def feeder_record_ms(self):
        """p50, p99 and max ms the feeder took to write one record."""
        took = sorted(self.feeder_record_seconds)
        return (ms(percentile(took, 0.5)), ms(percentile(took, 0.99)),
                ms(took[-1] if took else None))

    def total(self):
        merged = Sample()
        for sample in self.samples.values():
            merged.latencies.extend(sample.latencies)
            merged.statuses.update(sample.statuses)
        return merged

    def rows(self):
        """(operation, requests, req/s, p50 ms, p99 ms, max ms, statuses)."""
        rows = []
        named = [(op[0], self.samples.get(op[0], Sample())) for op in OPS]
        for name, sample in named + [('total', self.total())]:
            latencies = sorted(sample.latencies)
            rows.append((
                name, len(latencies), len(latencies) / self.elapsed,
                ms(percentile(latencies, 0.5)),
                ms(percentile(latencies, 0.99)),
                ms(latencies[-1] if latencies else None),
                ' '.join('%s:%d' % item for item in sorted(
                    sample.statuses.items()))))
        return rows


def ms(seconds):
    """Seconds as milliseconds; None stays None."""
    return None if seconds is None else 1000 * seconds


def run_load(workdir, clients=64, seconds=60, driver='sqlite', seed=1,
             api_threads=None, task_wait_timeout=None, images=IMAGES,
             keep=KEEP, feed_rate=FEED_RATE, log=None):
    """Build a cache, start the daemon, run the load; return a Result.

    The daemon is stopped with SIGTERM at the end; its exit status is in
    ``result.final['exit_status']``.
    """
    log = log or (lambda message: print(message, file=sys.stderr,
                                        flush=True))
    cache_dir = os.path.join(workdir, 'cache')
    os.makedirs(cache_dir)
    planned = plans.plan(images, seed=seed, now=time.time())
    limit, _ = plans.limit_keeping(planned, keep)
    cache = caches.make(driver, cache_dir)
    cache.add_planned(planned)
    api = {}
    if api_threads:
        api['threads'] = api_threads
    if task_wait_timeout is not None:
        api['task_wait_timeout'] = task_wait_timeout
    daemon = running.Daemon(
        os.path.join(workdir), cache_dir, api=api,
        image_cache_driver=driver, image_cache_max_size=limit,
        cache_clean_interval=1, cache_prune_interval=1, debug='false')
    result = Result(clients=clients, seconds=seconds, limit=limit)
    daemon.start()
    try:
        _drive(daemon, cache, planned, result, clients, seconds, seed,
               feed_rate, log)
    finally:
        daemon.stop()
    result.final['exit_status'] = daemon.process.returncode
    result.final['log'] = daemon.log()
    return result


def _drive(daemon, cache, planned, result, clients, seconds, seed, feed_rate,
           log):
    ids = IdPool(i.image_id for i in planned)
    feeder = Feeder(cache, ids, seed, rate=feed_rate)
    monitor = RunsMonitor(daemon.port)
    log('load: %d clients for %d s on port %d'
        % (clients, seconds, daemon.port))
    started = time.monotonic()
    end = started + seconds
    threads = [Client(i, daemon.port, ids, end, seed)
               for i in range(clients)]
    feeder.start()
    monitor.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, end + FINISH_DEADLINE - time.monotonic()))
    result.elapsed = max(time.monotonic() - started, 1e-9)
    result.stuck_clients = [t.name for t in threads if t.is_alive()]
    finished = [t.finished_at for t in threads if t.finished_at is not None]
    result.last_finish = max(finished) - end if finished else None
    feeder.stop()
    monitor.stop()
    for thread in threads:
        for name, sample in list(thread.samples.items()):
            merged = result.samples.setdefault(name, Sample())
            merged.latencies.extend(sample.latencies)
            merged.statuses.update(sample.statuses)
        result.errors.update(thread.errors)
    result.runs = sorted(monitor.runs.values(),
                         key=lambda run: run['started_at'])
    result.monitor_errors = monitor.errors
    result.monitor_gaps = monitor.gaps
    result.fed, result.invalid_fed = feeder.added, feeder.invalid
    result.feeder_lock_timeouts = feeder.lock_timeouts
    result.feeder_record_seconds = feeder.record_seconds
    result.feeder_crashed = feeder.crashed
    log('load: done; a final prune and clean')
    result.final.update(settle(daemon, cache))


def settle(daemon, cache):
    """A final prune and clean; then the records, the files, the size."""
    statuses = []
    for task in ('prune', 'clean'):
        conn = http.client.HTTPConnection('127.0.0.1', daemon.port,
                                          timeout=REQUEST_TIMEOUT)
        try:
            conn.request('POST', '/v2/cache/%s' % task, headers=TOKEN)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        finally:
            conn.close()
    files = cache.images()
    size = sum(os.stat(os.path.join(cache.path, image_id)).st_size
               for image_id in files)
    return {'statuses': statuses, 'records': set(cache.rows()),
            'files': files, 'size': size,
            'invalid': len(cache.listdir('invalid'))}
