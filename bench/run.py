"""Run the benchmark: every case, side by side with Glance 33, in one run.

    python -m bench            # the full run behind
                               # doc/source/contributor/performance.rst
    python -m bench --quick    # small caches: correctness only (CI)

Each case builds identical copies of one planned cache
(``tests.support.plans`` and ``caches``), lets Glance 33 work on one copy
and the real ``cache-maint-manage`` on another, and a bare scan-and-unlink
on a third (the floor). A timing compares like with like only if both
sides did the same work: a case whose two sides did not leave the images
the plan says (``plans.limit_keeping``) is reported as not comparable and
the run exits 1. Whether cache-maint is right is the tests' business (the
compat suite holds the same victims to Glance's); timings are reported,
never asserted: the targets of issue 5 are printed as met or missed.
"""

import argparse
import configparser
import dataclasses
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from bench import measure
from bench import tables
from cache_maint import cachedir
from tests.support import caches
from tests.support import databases
from tests.support import plans
from tests.support import running

MIB = 1024 * 1024


@dataclasses.dataclass
class Row:
    case: str
    driver: str
    images: int
    victims: int
    glance: float = None        # seconds, Glance 33
    ours: float = None          # seconds, cache-maint
    floor: float = None         # seconds, bare scan and unlink
    unlinks: float = None       # seconds, the victims' unlinks alone
    glance_rss: float = None    # MiB
    ours_rss: float = None
    note: str = ''

    @property
    def ratio(self):
        if self.glance is None or not self.ours:
            return None
        return self.glance / self.ours

    @property
    def per_victim_ms(self):
        return 1000 * self.ours / self.victims if self.victims else None

    @property
    def unlinks_ratio(self):
        """Glance's time over the unlinks alone (the most to gain here)."""
        if self.glance is None or not self.unlinks:
            return None
        return self.glance / self.unlinks

    @property
    def floor_ratio(self):
        if self.floor is None or not self.floor:
            return None
        return self.ours / self.floor


class NotComparable(Exception):
    """The two sides of a case did not do the same work: no ratio."""


def same_work(condition, message):
    """Go on only if both sides did what the plan says they must."""
    if not condition:
        raise NotComparable(message)


# Sizes of each case: (images, victims) or a count of files.
FULL = {
    'sqlite': (20000, 10000), 'xattr': (5000, 2500),
    'postgresql': (20000, 10000), 'mysql': (20000, 10000),
    'scale': (200000, 100000), 'clean': 100000, 'clean_images': 2000,
    'list': 20000,
}
QUICK = {
    'sqlite': (600, 300), 'xattr': (200, 100),
    'postgresql': (600, 300), 'mysql': (600, 300),
    'scale': (3000, 1500), 'clean': 1000, 'clean_images': 100,
    'list': 600,
}


class Bench:
    def __init__(self, workdir, sizes, glance_at_scale=False):
        self.workdir = workdir
        self.sizes = sizes
        self.glance_at_scale = glance_at_scale
        self.now = time.time()
        self.rows = []
        self.notes = {}
        self._serial = 0

    def _dir(self, name):
        self._serial += 1
        path = os.path.join(self.workdir, '%02d-%s' % (self._serial, name))
        os.makedirs(path)
        return path

    def _config(self, copy, **options):
        path = os.path.join(self.workdir, 'cache-maint-%d.conf' % (
            self._serial))
        self._serial += 1
        parser = configparser.ConfigParser(interpolation=None)
        parser['DEFAULT'] = {
            'image_cache_dir': copy.path,
            'image_cache_driver': copy.driver,
            'image_cache_stall_time': '86400',
            'worker_self_reference_url': caches.NODE_URL,
            'cache_clean_interval': '0', 'cache_prune_interval': '0',
            **{k: str(v) for k, v in options.items()
               if not k.startswith('api_')}}
        parser['api'] = {k[4:]: str(v) for k, v in options.items()
                         if k.startswith('api_')}
        if copy.driver == 'centralized_db':
            parser['database'] = {'connection': copy.url}
        with open(path, 'w') as f:
            parser.write(f)
        return path

    def _copies(self, name, kind, images, count, urls=(), files_only=0,
                invalid=(), stalled=()):
        """``count`` identical copies; the last ``files_only``, files only.

        A centralized_db copy (``kind`` postgresql or mysql) has a
        database of its own from ``urls``, holding as many rows of
        another node as of this one.
        """
        urls = list(urls) + [None] * count
        copies = []
        for i in range(count):
            path = self._dir('%s-%d' % (name, i))
            if i >= count - files_only:
                copy = caches.FileCache(path)
            else:
                copy = caches.make(kind, path, urls[i])
            copy.add_planned(images)
            caches.write_files(os.path.join(path, 'invalid'), invalid)
            caches.write_files(os.path.join(path, 'incomplete'), stalled)
            if copy.driver == 'centralized_db':
                copy.record(plans.plan(len(images), seed=len(images) + 1,
                                       now=self.now),
                            node_url=caches.OTHER_NODE_URL)
            copies.append(copy)
        os.sync()   # every copy on disk, as a cache in service would be
        return copies

    # Prune, over and under the limit.

    def prune(self, case, kind, count, victims, with_glance=True):
        images = plans.plan(count, seed=count, now=self.now)
        max_size, survivors = plans.limit_keeping(images, count - victims)
        total = sum(i.size for i in images)
        urls = []
        if kind in ('postgresql', 'mysql'):
            # psycopg2 for PostgreSQL: the driver Glance's oslo.db uses.
            dbapi = 'psycopg2' if kind == 'postgresql' else None
            urls = [databases.create_database(kind, dbapi)
                    for _ in range(2)]
        copies = []
        try:
            copies = self._copies(case, kind, images, 4, urls, files_only=2)
            self._prune_under_limit(case, *copies[:2], total, count,
                                    with_glance)
            self._prune_over_limit(case, *copies, images, max_size,
                                   survivors, victims, with_glance)
        finally:
            for copy in copies:
                copy.close()
            for url in urls:
                databases.drop_database(url)

    def _prune_under_limit(self, case, glance_copy, ours_copy, total, count,
                           with_glance, repeat=3):
        """A prune with nothing to do, best of ``repeat`` runs each."""
        row = Row('prune, under limit', glance_copy.driver, count, 0,
                  note=case)
        config = self._config(ours_copy, image_cache_max_size=2 * total)
        runs = [measure.cache_maint('prune', config) for _ in range(repeat)]
        same_work(all(result['total_files_pruned'] == 0
                      for _, result, _ in runs),
                  '%s: cache-maint pruned under its limit' % case)
        row.ours = min(seconds for seconds, _, _ in runs)
        row.ours_rss = max(rss for _, _, rss in runs)
        if with_glance or glance_copy.driver == 'sqlite':
            seconds, result, row.glance_rss = measure.glance(
                'prune', glance_copy, max_size=2 * total, repeat=repeat)
            row.glance = min(seconds)
            same_work(result == [0, 0], '%s: Glance pruned under its limit'
                      % case)
        self.rows.append(row)

    def _prune_over_limit(self, case, glance_copy, ours_copy, floor_copy,
                          unlinks_copy, images, max_size, survivors, victims,
                          with_glance):
        row = Row('prune', glance_copy.driver, len(images), victims,
                  note=case)
        if with_glance:
            seconds, result, row.glance_rss = measure.glance(
                'prune', glance_copy, max_size=max_size,
                node_url=caches.NODE_URL)
            row.glance = seconds[0]
            same_work(glance_copy.images() == survivors,
                      '%s: Glance did not leave the planned images' % case)
        config = self._config(ours_copy, image_cache_max_size=max_size)
        row.ours, result, row.ours_rss = measure.cache_maint('prune', config)
        same_work(ours_copy.images() == survivors,
                  '%s: cache-maint did not leave the planned images' % case)
        evicted = {i.image_id for i in images} - survivors
        row.floor = measure.floor(floor_copy.path, evicted)
        row.unlinks = measure.unlinks_alone(unlinks_copy.path, evicted,
                                            cachedir.UNLINK_THREADS)
        self.rows.append(row)

    # Clean.

    def clean(self, junk_count, image_count):
        images = plans.plan(image_count, seed=7, now=self.now)
        invalid = plans.junk(junk_count // 2, seed=1, age=3600)
        stalled = plans.junk(junk_count - len(invalid), seed=2,
                             age=2 * plans.DAY)
        glance_copy, ours_copy, floor_copy = self._copies(
            'clean', 'sqlite', images, 3, files_only=1, invalid=invalid,
            stalled=stalled)
        row = Row('clean', 'sqlite', image_count + junk_count, junk_count,
                  note='%d invalid + %d stalled' % (len(invalid),
                                                    len(stalled)))
        seconds, _, row.glance_rss = measure.glance('clean', glance_copy,
                                                    stall_time=86400)
        row.glance = seconds[0]
        row.ours, result, row.ours_rss = measure.cache_maint(
            'clean', self._config(ours_copy))
        for copy, who in ((glance_copy, 'Glance'), (ours_copy, 'cache-maint')):
            same_work(not copy.listdir('invalid')
                      and not copy.listdir('incomplete'),
                      'clean: %s left failed or stalled downloads' % who)
        row.floor = sum(
            measure.floor(os.path.join(floor_copy.path, subdir),
                          [i.image_id for i in junk])
            for subdir, junk in (('invalid', invalid),
                                 ('incomplete', stalled)))
        self.rows.append(row)

    # GET /v2/cache against Glance's own listing.

    def listing(self, count, repeat=9):
        images = plans.plan(count, seed=count + 3, now=self.now)
        [copy] = self._copies('list', 'sqlite', images, 1)
        row = Row('GET /v2/cache', 'sqlite', count, 0,
                  note='median of %d' % repeat)
        seconds, listed, row.glance_rss = measure.glance(
            'list', copy, repeat=repeat)
        row.glance = statistics.median(seconds)
        row.ours, body = self._http_listing(copy, repeat)
        same_work(listed == len(json.loads(body)['cached_images']) == count,
                  'Glance and cache-maint did not both list every image')
        self.rows.append(row)

    def _http_listing(self, copy, repeat):
        """Median seconds of GET /v2/cache over HTTP, and the last body."""
        daemon = running.Daemon(
            self._dir('list-daemon'), copy.path, api={},
            cache_clean_interval=0, cache_prune_interval=0,
            image_cache_max_size=10 ** 12, debug='false')
        daemon.start()
        try:
            conn = http.client.HTTPConnection('127.0.0.1', daemon.port,
                                              timeout=120)
            seconds = []
            for _ in range(repeat + 1):     # the first one warms up
                started = time.perf_counter()
                conn.request('GET', '/v2/cache',
                             headers={'X-Auth-Token': 'admin'})
                response = conn.getresponse()
                body = response.read()
                seconds.append(time.perf_counter() - started)
                same_work(response.status == 200, 'GET /v2/cache answered '
                          '%d' % response.status)
            conn.close()
        finally:
            daemon.stop()
        return statistics.median(seconds[1:]), body

    # A glance-api writing hits while cache-maint prunes (sqlite).

    def hits_during_prune(self, count, victims):
        images = plans.plan(count, seed=count + 5, now=self.now)
        max_size, survivors = plans.limit_keeping(images, count - victims)
        [copy] = self._copies('hits', 'sqlite', images, 1)
        writer = measure.HitWriter(copy.db_path, sorted(survivors))
        writer.start()
        try:
            seconds, result, _ = measure.cache_maint(
                'prune', self._config(copy, image_cache_max_size=max_size))
        finally:
            writer.stop()
        same_work(copy.images() == survivors,
                  'prune beside glance-api hits left other images')
        self.notes.setdefault('hits', []).append({
            'images': count,
            'writes': len(writer.lock_waits),
            'failed_writes': len(writer.errors),
            'max_lock_wait_ms': 1000 * max(writer.lock_waits),
            'p99_lock_wait_ms': 1000 * _p99(writer.lock_waits),
            'max_commit_ms': 1000 * max(writer.commits),
            'p99_commit_ms': 1000 * _p99(writer.commits),
            'prune_seconds': seconds,
        })


def _p99(values):
    return sorted(values)[int(0.99 * (len(values) - 1))]


def run_cases(bench, only, quick):
    sizes = bench.sizes
    cases = {
        'sqlite': lambda: bench.prune('sqlite', 'sqlite', *sizes['sqlite']),
        'xattr': lambda: bench.prune('xattr', 'xattr', *sizes['xattr']),
        'postgresql': lambda: bench.prune(
            'PostgreSQL', 'postgresql', *sizes['postgresql']),
        'mysql': lambda: bench.prune('MariaDB', 'mysql', *sizes['mysql']),
        'scale': lambda: bench.prune(
            'sqlite at scale', 'sqlite', *sizes['scale'],
            with_glance=quick or bench.glance_at_scale),
        'clean': lambda: bench.clean(sizes['clean'], sizes['clean_images']),
        'list': lambda: bench.listing(sizes['list']),
        'hits': lambda: [bench.hits_during_prune(*sizes[size])
                         for size in ('sqlite', 'scale')],
    }
    for name, case in cases.items():
        if only and name not in only:
            continue
        print('... %s' % name, file=sys.stderr, flush=True)
        case()


def table(rows):
    header = ('case', 'driver', 'images', 'victims', 'Glance s',
              'cache-maint s', 'ratio', 'ms/victim', 'floor s', 'vs floor',
              'unlinks s', 'G/unlinks', 'RSS MiB G/cm', 'note')
    fmt = tables.fmt
    return tables.grid(header, [(
        r.case, r.driver, str(r.images), str(r.victims), fmt(r.glance),
        fmt(r.ours), fmt(r.ratio, '%.1fx'), fmt(r.per_victim_ms, '%.4f'),
        fmt(r.floor), fmt(r.floor_ratio, '%.2fx'), fmt(r.unlinks),
        fmt(r.unlinks_ratio, '%.1fx'),
        '%s/%s' % (fmt(r.glance_rss, '%.0f'), fmt(r.ours_rss, '%.0f')),
        r.note) for r in rows])


def targets(bench):
    """Issue 5's targets, each as (what, measured, met)."""
    rows = bench.rows

    def find(case, note):
        return next((r for r in rows if r.case == case and r.note == note),
                    None)

    found = []

    def ratio_at_least(label, row, minimum):
        if row is not None and row.ratio is not None:
            measured = '%.1fx' % row.ratio
            if row.unlinks_ratio is not None:
                measured += ' (unlinks alone %.1fx)' % row.unlinks_ratio
            found.append((label, measured, row.ratio >= minimum))

    ratio_at_least('sqlite prune >= 50x Glance', find('prune', 'sqlite'), 50)
    ratio_at_least('xattr prune >= 200x Glance', find('prune', 'xattr'), 200)
    ratio_at_least('PostgreSQL prune >= 30x Glance',
                   find('prune', 'PostgreSQL'), 30)
    ratio_at_least('MariaDB prune >= 30x Glance', find('prune', 'MariaDB'),
                   30)
    ratio_at_least('clean >= 2x Glance',
                   next((r for r in rows if r.case == 'clean'), None), 2)
    small, large = find('prune', 'sqlite'), find('prune', 'sqlite at scale')
    if small and large:
        growth = large.per_victim_ms / small.per_victim_ms
        found.append(('ms/victim at %d <= 1.5x at %d' % (
            large.images, small.images), '%.2fx' % growth, growth <= 1.5))
        found.append(('at %d, within 3x of the floor' % large.images,
                      '%.2fx' % large.floor_ratio, large.floor_ratio <= 3))
        found.append(('peak RSS of a prune at %d < 150 MiB' % large.images,
                      '%.0f MiB' % large.ours_rss, large.ours_rss < 150))
    for r in rows:
        if r.case == 'prune, under limit' and r.glance is not None:
            found.append(('under-limit prune <= Glance (%s, %d)' % (
                r.note, r.images), '%.3f s vs %.3f s' % (r.ours, r.glance),
                r.ours <= r.glance))
    for hits in bench.notes.get('hits', ()):
        found.append(('glance-api waits < 200 ms for the lock (%d)'
                      % hits['images'], 'max %.1f ms over %d writes' % (
                          hits['max_lock_wait_ms'], hits['writes']),
                      hits['max_lock_wait_ms'] < 200))
    listing = next((r for r in rows if r.case == 'GET /v2/cache'), None)
    if listing:
        cost = listing.ours / listing.glance
        found.append(('GET /v2/cache <= 2x Glance get_cached_images()',
                      '%.2fx' % cost, cost <= 2))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='small caches; check correctness, not speed')
    parser.add_argument('--only', action='append',
                        help='run only this case (repeatable): sqlite, '
                             'xattr, postgresql, mysql, scale, clean, list, '
                             'hits')
    parser.add_argument('--glance-at-scale', action='store_true',
                        help="also time Glance's prune at the largest size "
                             '(many minutes)')
    parser.add_argument('--workdir', default=None,
                        help='where to build the caches (default: a new '
                             'temporary directory, removed afterwards)')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)

    if args.quick:
        measure.SETTLE_SECONDS = 0    # no timing is judged
    workdir = tempfile.mkdtemp(prefix='cache-maint-bench-', dir=args.workdir)
    bench = Bench(workdir, QUICK if args.quick else FULL,
                  args.glance_at_scale)
    bench.notes['filesystem'] = measure.filesystem(workdir)
    try:
        run_cases(bench, args.only, args.quick)
    except NotComparable as e:
        print('NOT COMPARABLE: %s; no timing of this run means anything'
              % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print('caches on: %s' % bench.notes['filesystem'])
    print(table(bench.rows))
    for hits in bench.notes.get('hits', ()):
        print('\nglance-api hit writes during a cache-maint prune of '
              '%(images)d images (%(prune_seconds).3f s): %(writes)d writes '
              '(%(failed_writes)d failed); '
              'waiting for the write lock: max %(max_lock_wait_ms).1f ms, '
              'p99 %(p99_lock_wait_ms).1f ms; their own commits: max '
              '%(max_commit_ms).1f ms, p99 %(p99_commit_ms).1f ms' % hits)
    if args.quick:
        print('\nquick mode: both sides did the same work in every case; '
              'timings of small caches '
              'mean nothing and are not judged')
    else:
        print('\ntargets (issue 5):')
        for label, measured, met in targets(bench):
            print('  %-52s %-36s %s' % (label, measured,
                                        'met' if met else 'MISSED'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'rows': [dataclasses.asdict(r) for r in bench.rows],
                       'notes': bench.notes,
                       'targets': targets(bench) if not args.quick else []},
                      f, indent=2)
    return 0
