"""Answer times with and without idle and slow clients, in one run.

    python -m bench.slow_clients [--idle 32] [--slow 32] [--rounds 50]

The real ``cache-maint`` is started on a small sqlite cache. The same
requests (``GET /healthcheck``, ``GET /versions`` and an admin's ``POST
/v2/cache/prune``) are timed first with no other client, then while
``--idle`` connections that send nothing and ``--slow`` connections that
send one header byte a second are open, and then while twelve prune
requests wait for glance-api's prune lock. It prints p50, p99 and max for
each, and each p50 as a ratio of the undisturbed one. Nothing is judged:
the faults suite checks that these requests answer at all.
"""

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

from bench import tables
from tests.support import caches
from tests.support import rawhttp
from tests.support import running

REQUESTS = (('GET', '/healthcheck'), ('GET', '/versions'),
            ('POST', '/v2/cache/prune'))


@contextlib.contextmanager
def waiting_prunes(daemon, cache_dir, count=12):
    """``count`` prune requests waiting for glance-api's prune lock."""
    from oslo_concurrency import lockutils
    held = lockutils.external_lock('glance-cache-prune', lock_path=cache_dir)
    held.acquire()
    threads = [threading.Thread(target=daemon.request, args=(
        'POST', '/v2/cache/prune'), kwargs={'token': 'admin'})
        for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    try:
        yield
    finally:
        held.release()
        for thread in threads:
            thread.join()


def time_requests(daemon, rounds, skip=()):
    """{(method, path): [seconds]} for ``rounds`` rounds of REQUESTS."""
    timings = {request: [] for request in REQUESTS if request not in skip}
    for _ in range(rounds):
        for method, path in timings:
            began = time.perf_counter()
            response = daemon.request(method, path, token='admin')
            timings[(method, path)].append(time.perf_counter() - began)
            response.raise_for_status()
    return timings


def run(workdir, idle, slow, rounds):
    cache = caches.SqliteCache(os.path.join(workdir, 'cache'))
    for _ in range(10):
        cache.add_image()
    daemon = running.Daemon(workdir, cache.path, cache_prune_interval=0,
                            cache_clean_interval=0, debug='false').start()
    try:
        results = {'alone': time_requests(daemon, rounds)}
        with rawhttp.bad_clients(daemon.port, idle, slow):
            time.sleep(2)   # every slow client is mid-request by now
            results['%d idle, %d slow clients' % (idle, slow)] = \
                time_requests(daemon, rounds)
        with waiting_prunes(daemon, cache.path):
            results['12 prune requests waiting'] = time_requests(
                daemon, rounds, skip=[('POST', '/v2/cache/prune')])
    finally:
        daemon.stop()
    return results


def report(results):
    alone = results['alone']
    rows = []
    for case, timings in results.items():
        for request, seconds in timings.items():
            p50 = statistics.median(seconds)
            p99 = statistics.quantiles(seconds, n=100, method='inclusive')[98]
            rows.append((case, '%s %s' % request,
                         '%.4f' % p50,
                         '%.4f' % p99,
                         '%.4f' % max(seconds),
                         '%.2fx' % (p50 / statistics.median(alone[request]))))
    return tables.grid(('case', 'request', 'p50 s', 'p99 s', 'max s',
                        'p50 / alone'), rows)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.slow_clients',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--idle', type=int, default=32)
    parser.add_argument('--slow', type=int, default=32)
    parser.add_argument('--rounds', type=int, default=50)
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix='cache-maint-slow-clients-')
    try:
        print(report(run(workdir, args.idle, args.slow, args.rounds)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
