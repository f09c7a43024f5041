"""Load: many API clients at once while the periodic tasks run every second.

    python -m bench.load [--clients 64] [--seconds 60] [--driver sqlite]

Runs ``tests.support.load`` (the real ``cache-maint`` daemon on a cache
over its limit, a feeder playing glance-api, N keep-alive clients and a
monitor of ``GET /v2/cache/runs``) and reports throughput, p50/p99/max
latency and statuses per operation, the runs the service recorded, and
what the cache was after a final prune and clean. It judges nothing:
``tests/faults/test_load.py`` asserts what must hold.
"""

import argparse
import collections
import json
import shutil
import tempfile

from bench import tables
from tests.support import load


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
        'unexpected statuses: %s; transport errors: %s; clients still '
        'waiting %d s after the end: %d' % (
            result.unexpected() or 'none', dict(result.errors) or 'none',
            load.FINISH_DEADLINE, len(result.stuck_clients)),
        'runs recorded by the service (GET /v2/cache/runs, read every '
        '%.1f s; %d windows did not overlap the previous one):'
        % (load.MONITOR_INTERVAL, result.monitor_gaps),
        runs_summary(result),
        'feeder (glance-api): %d images cached, %d failed downloads left, '
        '%d records it could not write in time; writing a record took '
        'p50 %s ms, p99 %s ms, max %s ms (its timeout is %d ms)' % (
            result.fed, result.invalid_fed,
            len(result.feeder_lock_timeouts),
            *(tables.fmt(v, '%.1f') for v in result.feeder_record_ms()),
            1000 * load.GLANCE_SQL_TIMEOUT),
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
        result = load.run_load(workdir, args.clients, args.seconds,
                               args.driver, seed=args.seed,
                               api_threads=args.api_threads)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'rows': result.rows(), 'runs': result.runs}, f,
                      indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
