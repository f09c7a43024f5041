"""Eviction policies on synthetic traces: byte misses against LRU and offline.

    python -m bench.eviction [--regimes stable,churn,oneoff,mixed]
        [--seeds 1,2,3] [--sizes 2,5,10,20] [--prune-interval 1800]
        [--days 28] [--per-day 1500] [--quick] [--speed]

For each regime of ``bench.traces`` and each seed, a trace is generated and
replayed, at each cache size (a percent of the trace's unique bytes),
through every policy and the offline reference, with
``cache_maint.simulation``: the code ``cache-maint-manage simulate`` runs.
Each row gives a policy's byte miss ratio, its change against LRU, and the
share of the gap between LRU and the offline reference that it closes.
The summary holds issue 15's targets against the rows: ``adaptive`` never
more than 1 % worse than LRU; at least 10 % better, and a third of the gap
closed, on the stable and one-off regimes (on average over seeds and
sizes). It judges nothing: it prints met or missed.

``--speed`` times the real ``cache-maint-manage simulate`` on a trace of a
million requests instead, for each policy (the target: under a minute).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench import tables
from bench import traces
from cache_maint import simulation
from cache_maint import targets as evict_targets

POLICIES = ('lru', 'lfuda', 'adaptive')

#: The regimes on which adaptive must beat LRU clearly.
FAVOURABLE = ('stable', 'oneoff')

#: Requests the speed run replays.
SPEED_REQUESTS = 1000000


def _parse(argv):
    parser = argparse.ArgumentParser(prog='python -m bench.eviction',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--regimes', default=','.join(traces.REGIMES))
    parser.add_argument('--seeds', default='1,2,3')
    parser.add_argument('--sizes', default='2,5,10,20',
                        help='Cache sizes, percent of unique bytes.')
    parser.add_argument('--prune-interval', type=float, default=1800)
    parser.add_argument('--watch', action='store_true',
                        help="Prune on the watch too, as the service's "
                             'default does (2 s after a crossing).')
    parser.add_argument('--days', type=float, default=None)
    parser.add_argument('--per-day', type=float, default=None)
    parser.add_argument('--quick', action='store_true',
                        help='One seed, a week, two sizes: a smoke run.')
    parser.add_argument('--speed', action='store_true',
                        help='Time cache-maint-manage simulate on a '
                             'million requests instead.')
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.sizes, args.days = '1', '5,20', args.days or 7
    return args


def _overrides(args):
    overrides = {}
    if args.days:
        overrides['days'] = args.days
    if args.per_day:
        overrides['per_day'] = args.per_day
    return overrides


def measure(regime, seed, percents, schedule, overrides):
    """Rows of (regime, seed, percent, {policy: ratio}, offline ratio)."""
    trace = simulation.Trace.of(traces.generate(
        traces.regime(regime, **overrides), seed))
    unique = trace.unique_bytes()
    rows = []
    for percent in percents:
        size = int(unique * percent / 100)
        ratios = {policy: simulation.replay(trace, size, policy,
                                            schedule).byte_miss_ratio
                  for policy in POLICIES}
        offline = simulation.replay(trace, size, simulation.OFFLINE,
                                    schedule).byte_miss_ratio
        rows.append((regime, seed, percent, ratios, offline))
    return rows


def change(ratio, lru):
    """The relative change of a byte miss ratio against LRU's."""
    return ratio / lru - 1 if lru else 0.0


def gap_closed(ratio, lru, offline):
    """The share of LRU's excess over the offline reference removed."""
    return (lru - ratio) / (lru - offline) if lru > offline else None


def report(rows):
    header = ['regime', 'seed', 'size %', 'offline']
    for policy in POLICIES:
        header += [policy] if policy == 'lru' else [
            policy, 'vs lru', 'gap closed']
    lines = []
    for regime, seed, percent, ratios, offline in rows:
        line = [regime, str(seed), '%g' % percent, '%.4f' % offline]
        lru = ratios['lru']
        for policy in POLICIES:
            line.append('%.4f' % ratios[policy])
            if policy != 'lru':
                line += ['%+.1f%%' % (100 * change(ratios[policy], lru)),
                         tables.fmt(gap_closed(ratios[policy], lru, offline),
                                    '%.2f')]
        lines.append(line)
    print(tables.grid(header, lines))


def judge(rows):
    """Print issue 15's targets for adaptive as met or missed."""
    worst = max(change(ratios['adaptive'], ratios['lru'])
                for _regime, _seed, _percent, ratios, _offline in rows)
    print()
    print('adaptive, worst change against LRU: %+.2f%% (target: at most '
          '+1%%): %s' % (100 * worst, 'met' if worst <= 0.01 else 'MISSED'))
    for regime in FAVOURABLE:
        mine = [row for row in rows if row[0] == regime]
        if not mine:
            continue
        mean_change = statistics.mean(
            change(ratios['adaptive'], ratios['lru'])
            for _r, _s, _p, ratios, _o in mine)
        closed = [gap_closed(ratios['adaptive'], ratios['lru'], offline)
                  for _r, _s, _p, ratios, offline in mine]
        closed = [share for share in closed if share is not None]
        mean_closed = statistics.mean(closed) if closed else 0.0
        print('adaptive on %s: %+.1f%% bytes against LRU (target: -10%% or '
              'better): %s; %.0f%% of the gap to offline closed (target: a '
              'third): %s' % (
                  regime, 100 * mean_change,
                  'met' if mean_change <= -0.10 else 'MISSED',
                  100 * mean_closed,
                  'met' if mean_closed >= 1 / 3 else 'MISSED'))


def speed(args):
    """Time the real command on a million requests, per policy."""
    params = traces.regime('mixed', per_day=40000,
                           days=SPEED_REQUESTS / 40000)
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, 'trace.csv')
        traces.write_csv(traces.generate(params, 1), path)
        lines = []
        for policy in POLICIES:
            # Each run replays the policy and the offline reference.
            command = [os.path.join(os.path.dirname(sys.executable),
                                    'cache-maint-manage'),
                       '--config-file', os.devnull, 'simulate',
                       '--trace', path, '--cache-size', '5%',
                       '--policy', policy, '--prune-interval',
                       '%g' % args.prune_interval, '--format', 'json']
            began = time.monotonic()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            lines.append((policy, '%.1f' % (time.monotonic() - began)))
    print(tables.grid(('policy', 'seconds (with offline)'), lines))
    print('%d requests, a prune every %g s, a cache of 5%% of the unique '
          'bytes; target: under 60 s a replay' % (
              SPEED_REQUESTS, args.prune_interval))


def main(argv=None):
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.speed:
        speed(args)
        return 0
    schedule = simulation.Schedule(
        prune_interval=args.prune_interval,
        targets=evict_targets.Targets(max_size=0), watch=args.watch)
    rows = []
    for regime in args.regimes.split(','):
        for seed in (int(seed) for seed in args.seeds.split(',')):
            rows += measure(regime, seed,
                            [float(p) for p in args.sizes.split(',')],
                            schedule, _overrides(args))
    report(rows)
    judge(rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
