"""Load: many API clients at once while the periodic tasks run every second.

    python -m bench.load [--clients 64] [--seconds 60] [--driver sqlite]

A cache is built (bench.workload) over its size limit, and the real
``cache-maint`` daemon is started on it with ``cache_clean_interval`` and
``cache_prune_interval`` set to 1 s. A feeder thread plays glance-api: it
keeps caching new images (a file renamed into place, then its record) and
leaving failed downloads in ``invalid/``, so that every prune and clean has
real work. Meanwhile N clients, each a thread with its own keep-alive
``http.client`` connection, send a weighted mix of the API's requests for
S seconds, and a monitor keeps reading ``GET /v2/cache/runs``.

It reports throughput, p50/p99/max latency and status counts per
operation, the runs the service recorded, and what it checked: no 5xx, no
transport error, no client stuck after the end, no two runs of a task
overlapping, periodic and API-triggered runs both present, and, after a
final prune and clean, records and files agreeing and the cache under its
limit. A failed check makes it exit 1; timings are reported, never judged.
"""

import argparse
import collections
import dataclasses
import http.client
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid

from bench import tables
from bench import workload

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

    def __init__(self, copy, ids, seed, rate=FEED_RATE,
                 invalid_rate=INVALID_RATE, tick=0.1):
        super().__init__(name='feeder', daemon=True)
        self.copy = copy
        self.ids = ids
        # Not the plan's seed: its ids would come again.
        self.rnd = random.Random('feeder-%s' % seed)
        self.per_tick = max(1, int(rate * tick))
        self.invalid_per_tick = max(1, int(invalid_rate * tick))
        self.tick = tick
        self.added = self.invalid = 0
        self.lock_timeouts = []
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
            sizes = [self.rnd.randint(workload.MIN_SIZE, workload.MAX_SIZE)
                     for _ in ids]
            for image_id, size in zip(ids, sizes):
                incomplete = os.path.join(self.copy.path, 'incomplete',
                                          image_id)
                with open(incomplete, 'wb') as f:
                    f.write(b'\0' * size)
                os.rename(incomplete, os.path.join(self.copy.path, image_id))
                self._record(image_id, size)
            self.added += len(ids)
            self.ids.add(ids)
            for _ in range(self.invalid_per_tick):
                with open(os.path.join(self.copy.path, 'invalid',
                                       self._new()), 'wb') as f:
                    f.write(b'\0' * workload.MIN_SIZE)
                self.invalid += 1

    def _record(self, image_id, size):
        if self.copy.driver == 'xattr':
            os.setxattr(os.path.join(self.copy.path, image_id), 'user.hits',
                        b'0')
            return
        now = time.time()
        conn = sqlite3.connect(self.copy.db_path,
                               timeout=GLANCE_SQL_TIMEOUT,
                               isolation_level=None)
        try:
            conn.execute('INSERT INTO cached_images (image_id, '
                         'last_accessed, last_modified, hits, size) '
                         'VALUES (?, ?, ?, 0, ?)', (image_id, now, now, size))
        except sqlite3.OperationalError as e:
            self.lock_timeouts.append(str(e))
        finally:
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


def overlapping(runs):
    """Pairs of runs of one task where one began before the other ended."""
    found = []
    for task in sorted({run['task'] for run in runs}):
        mine = sorted((run for run in runs if run['task'] == task),
                      key=lambda run: run['started_at'])
        for before, after in zip(mine, mine[1:]):
            if after['started_at'] < before['finished_at']:
                found.append((before, after))
    return found


def percentile(sorted_values, fraction):
    """The nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, int(round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclasses.dataclass
class Result:
    """Everything one load run saw; ``failures()`` is what went wrong."""

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

    def server_errors(self):
        return sum(count for (_, status), count in self.unexpected().items()
                   if status >= 500)

    def failures(self):
        """What this run shows to be wrong, as sentences; empty if none."""
        found = []
        if self.server_errors():
            found.append('%d responses were 5xx' % self.server_errors())
        if self.unexpected():
            found.append('unexpected statuses: %s' % self.unexpected())
        if self.errors:
            found.append('transport errors: %s' % dict(self.errors))
        if self.stuck_clients:
            found.append('%d clients had not finished %d s after the end '
                         '(a deadlock?): %s' % (
                             len(self.stuck_clients), FINISH_DEADLINE,
                             self.stuck_clients[:5]))
        for before, after in overlapping(self.runs):
            found.append('two %s runs overlapped: %s and %s'
                         % (before['task'], before, after))
        for task in ('clean', 'prune'):
            for trigger in ('periodic', 'API'):
                if not [r for r in self.runs if r['task'] == task
                        and r['trigger'] == trigger]:
                    found.append('no %s run with trigger %s was recorded'
                                 % (task, trigger))
        failed = [r for r in self.runs if r['outcome'] == 'failed']
        if failed:
            found.append('%d runs failed, e.g. %s' % (len(failed),
                                                      failed[:3]))
        if self.monitor_errors:
            found.append('GET /v2/cache/runs failed: %s'
                         % dict(self.monitor_errors))
        if self.feeder_crashed:
            found.append('the feeder (glance-api) crashed: %s'
                         % self.feeder_crashed)
        if self.feeder_lock_timeouts:
            found.append('glance-api (the feeder) could not record %d '
                         'images within its sqlite timeout: %s' % (
                             len(self.feeder_lock_timeouts),
                             self.feeder_lock_timeouts[:3]))
        final = self.final
        if final:
            if final['statuses'] != [200, 200]:
                found.append('the final prune and clean answered %s'
                             % final['statuses'])
            if final['records'] != final['files']:
                found.append(
                    'after a final prune and clean, %d records have no '
                    'file and %d files no record' % (
                        len(final['records'] - final['files']),
                        len(final['files'] - final['records'])))
            if final['size'] > self.limit:
                found.append('the cache is %d bytes, over its limit of %d'
                             % (final['size'], self.limit))
            if final['invalid']:
                found.append('%d failed downloads are left after the final '
                             'clean' % final['invalid'])
        return found

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
                _ms(percentile(latencies, 0.5)),
                _ms(percentile(latencies, 0.99)),
                _ms(latencies[-1] if latencies else None),
                ' '.join('%s:%d' % item for item in sorted(
                    sample.statuses.items()))))
        return rows


def _ms(seconds):
    return None if seconds is None else 1000 * seconds


def run_load(workdir, clients=64, seconds=60, driver='sqlite', seed=1,
             api_threads=None, task_wait_timeout=None, images=IMAGES,
             keep=KEEP, feed_rate=FEED_RATE, log=None):
    """Build a cache, start the daemon, run the load; return a Result.

    The daemon is stopped with SIGTERM at the end; its exit status is in
    ``result.final['exit_status']``.
    """
    from tests.functional import helpers

    log = log or (lambda message: print(message, file=sys.stderr,
                                        flush=True))
    cache_dir = os.path.join(workdir, 'cache')
    os.makedirs(cache_dir)
    planned = workload.plan(images, seed=seed, now=time.time())
    limit, _ = workload.limit_keeping(planned, keep)
    copy = workload.Copy(cache_dir, driver).build(planned)
    api = {}
    if api_threads:
        api['threads'] = api_threads
    if task_wait_timeout is not None:
        api['task_wait_timeout'] = task_wait_timeout
    daemon = helpers.Daemon(
        os.path.join(workdir), cache_dir, api=api,
        image_cache_driver=driver, image_cache_max_size=limit,
        cache_clean_interval=1, cache_prune_interval=1, debug='false')
    result = Result(clients=clients, seconds=seconds, limit=limit)
    daemon.start()
    try:
        _drive(daemon, copy, planned, result, clients, seconds, seed,
               feed_rate, log)
    finally:
        daemon.stop()
    result.final['exit_status'] = daemon.process.returncode
    result.final['log'] = daemon.log()
    return result


def _drive(daemon, copy, planned, result, clients, seconds, seed, feed_rate,
           log):
    ids = IdPool(i.image_id for i in planned)
    feeder = Feeder(copy, ids, seed, rate=feed_rate)
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
    result.feeder_crashed = feeder.crashed
    log('load: done; a final prune and clean')
    result.final.update(settle(daemon, copy))


def settle(daemon, copy):
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
    files = copy.image_files()
    size = sum(os.stat(os.path.join(copy.path, image_id)).st_size
               for image_id in files)
    return {'statuses': statuses, 'records': copy.recorded(),
            'files': files, 'size': size,
            'invalid': len(copy.files_in('invalid'))}


def table(result):
    header = ('operation', 'requests', 'req/s', 'p50 ms', 'p99 ms',
              'max ms', 'statuses')
    return tables.grid(header, [
        (name, str(count), '%.1f' % rate, tables.fmt(p50, '%.1f'),
         tables.fmt(p99, '%.1f'), tables.fmt(top, '%.1f'), statuses)
        for name, count, rate, p50, p99, top, statuses in result.rows()])


def runs_summary(result):
    """Per task and trigger: runs, outcomes, files removed, longest run."""
    groups = collections.defaultdict(list)
    for run in result.runs:
        groups[run['task'], run['trigger']].append(run)
    lines = []
    for (task, trigger), runs in sorted(groups.items()):
        outcomes = collections.Counter(run['outcome'] for run in runs)
        removed = sum((run['result'] or {}).get(
            'total_files_%sed' % ('prun' if task == 'prune' else 'clean'), 0)
            for run in runs)
        lines.append('  %-6s %-9s %5d runs  %s  files removed %d, longest '
                     '%.3f s' % (task, trigger, len(runs), dict(outcomes),
                                 removed,
                                 max(run['duration'] for run in runs)))
    return '\n'.join(lines)


def report(result):
    """The whole report, as text."""
    lines = [
        '%d clients, %.0f s (elapsed %.1f s); slowest client finished '
        '%s s after the end' % (result.clients, result.seconds,
                                result.elapsed,
                                tables.fmt(result.last_finish, '%.2f')),
        table(result),
        'runs recorded by the service (GET /v2/cache/runs, read every '
        '%.1f s; %d windows did not overlap the previous one):'
        % (MONITOR_INTERVAL, result.monitor_gaps),
        runs_summary(result),
        'feeder (glance-api): %d images cached, %d failed downloads left'
        % (result.fed, result.invalid_fed),
    ]
    final = result.final
    if 'records' in final:
        lines.append('after a final prune and clean: %d records, %d files, '
                     '%d bytes (limit %d); daemon exit status %s' % (
                         len(final['records']), len(final['files']),
                         final['size'], result.limit,
                         final.get('exit_status')))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.load',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--clients', type=int, default=64)
    parser.add_argument('--seconds', type=float, default=60)
    parser.add_argument('--driver', choices=('sqlite', 'xattr'),
                        default='sqlite')
    parser.add_argument('--api-threads', type=int, default=None,
                        help="the daemon's [api] threads (default: its own "
                             'default)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--workdir', default=None,
                        help='where to build the cache (default: a new '
                             'temporary directory, removed afterwards)')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix='cache-maint-load-', dir=args.workdir)
    try:
        result = run_load(workdir, args.clients, args.seconds, args.driver,
                          seed=args.seed, api_threads=args.api_threads)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(result))
    failures = result.failures()
    if result.final.get('exit_status') != 0:
        failures.append('cache-maint exited with status %s after SIGTERM'
                        % result.final.get('exit_status'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'rows': result.rows(), 'runs': result.runs,
                       'failures': failures}, f, indent=2)
    if failures:
        print('\nCHECK FAILED:\n  ' + '\n  '.join(failures))
        return 1
    print('\nevery check passed; timings are reported, not judged')
    return 0


if __name__ == '__main__':
    sys.exit(main())
