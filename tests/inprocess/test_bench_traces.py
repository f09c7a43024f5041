"""The synthetic request traces of bench/traces.py: format, determinism
and the property that defines each regime.
"""

import collections
import csv
import io
import math
import random

import pytest

from bench import traces

DAY = traces.DAY

#: Small enough to keep the module fast, long enough for weekly cycles
#: and several versions per family in ``churn``.
SMALL = {'days': 14.0, 'per_day': 800.0}

_cache = {}


def trace(name, seed=1, **overrides):
    """The trace of regime ``name`` at SMALL size, generated once."""
    params = dict(SMALL, **overrides)
    key = (name, seed, tuple(sorted(params.items())))
    if key not in _cache:
        _cache[key] = traces.generate(traces.regime(name, **params), seed)
    return _cache[key]


def counts(requests):
    return collections.Counter(image_id for _, image_id, _ in requests)


def once_share(requests):
    """Share of requests whose id is requested exactly once."""
    return sum(1 for n in counts(requests).values() if n == 1) / len(
        requests)


def top_ids(requests, first, last, n=20):
    """The ``n`` most requested ids between days ``first`` and ``last``."""
    start = traces.Params().start
    window = [r for r in requests
              if first * DAY <= r[0] - start < last * DAY]
    return {image_id for image_id, _ in counts(window).most_common(n)}


def test_same_seed_same_trace():
    params = traces.regime('mixed', **SMALL)
    assert traces.generate(params, 7) == traces.generate(params, 7)


def test_different_seeds_differ():
    assert trace('mixed', seed=1) != trace('mixed', seed=2)


@pytest.mark.parametrize('name', sorted(traces.REGIMES))
def test_sorted_and_within_the_trace(name):
    requests = trace(name)
    stamps = [timestamp for timestamp, _, _ in requests]
    assert stamps == sorted(stamps)
    start = traces.Params().start
    assert start <= stamps[0] and stamps[-1] < start + SMALL['days'] * DAY


@pytest.mark.parametrize('name', sorted(traces.REGIMES))
def test_an_id_always_has_one_size_within_bounds(name):
    sizes = collections.defaultdict(set)
    for _, image_id, size in trace(name):
        sizes[image_id].add(size)
    assert all(len(found) == 1 for found in sizes.values())
    every = {size for found in sizes.values() for size in found}
    assert all(isinstance(size, int) for size in every)
    assert traces.MIN_SIZE <= min(every)
    assert max(every) <= traces.MAX_SIZE


@pytest.mark.parametrize('name', sorted(traces.REGIMES))
def test_mean_requests_per_day(name):
    # Two whole weeks, so the weekly cycle averages out; Poisson noise of
    # bursty arrivals stays well within 10 %.
    expected = SMALL['days'] * SMALL['per_day']
    assert abs(len(trace(name)) - expected) < 0.1 * expected


def test_csv_header_and_rows():
    requests = trace('mixed')[:200]
    out = io.StringIO()
    traces.write_csv(requests, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == 'timestamp,image_id,size'
    rows = list(csv.reader(lines[1:]))
    assert [(float(t), i, int(s)) for t, i, s in rows] == requests


def test_csv_to_a_path(tmp_path):
    requests = trace('stable')[:10]
    path = tmp_path / 'trace.csv'
    traces.write_csv(requests, str(path))
    assert path.read_text().splitlines()[0] == 'timestamp,image_id,size'
    assert len(path.read_text().splitlines()) == 11


def test_unique_bytes():
    requests = [(1.0, 'a', 10), (2.0, 'b', 5), (3.0, 'a', 10)]
    assert traces.unique_bytes(requests) == 15


def test_regime_overrides_and_unknown_names():
    params = traces.regime('churn', days=3, per_day=10)
    assert (params.days, params.per_day) == (3, 10)
    assert params.facility_period_days == (
        traces.REGIMES['churn'].facility_period_days)
    with pytest.raises(ValueError):
        traces.regime('nope')
    with pytest.raises(ValueError):
        traces.regime('mixed', oneoff_share=1.5)


def test_most_popular_image_under_13_percent():
    # Emulab: the most popular image had under 13 % of requests.
    for name in traces.REGIMES:
        top = counts(trace(name)).most_common(1)[0][1]
        assert top < 0.13 * len(trace(name))


def test_oneoff_has_far_more_single_requests_than_stable():
    assert once_share(trace('stable')) < 0.05
    assert once_share(trace('oneoff')) > 0.25
    assert once_share(trace('oneoff')) > 5 * once_share(trace('stable'))


def test_churn_moves_popularity_to_new_ids():
    # The popular ids of the first and the last few days: nearly the same
    # set when popularity is stable, nearly disjoint under churn.
    def overlap(requests):
        first, last = top_ids(requests, 0, 4), top_ids(requests, 10, 14)
        return len(first & last) / len(first | last)

    assert overlap(trace('stable')) > 0.4
    assert overlap(trace('churn')) < 0.2


def test_churn_has_many_more_repeatedly_requested_ids():
    # Ids requested more than once are (mostly) family versions, not
    # one-offs: churn multiplies them.
    def shared_ids(requests):
        return sum(1 for n in counts(requests).values() if n > 1)

    assert shared_ids(trace('churn')) > 2 * shared_ids(trace('stable'))


def test_new_versions_keep_the_size_within_ten_percent():
    sizes = traces._Sizes(traces.Params().size_mix)
    family = traces._Family(random.Random(3), sizes, 1.0, 30 * DAY)
    assert len(family.versions) > 20
    for (_, old), (_, new) in zip(family.versions, family.versions[1:]):
        assert 0.9 * old - 1 <= new <= 1.1 * old + 1


def test_no_churn_means_one_version():
    requests = trace('stable', user_period_days=math.inf,
                     facility_period_days=math.inf, oneoff_share=0.0)
    assert len(counts(requests)) <= (traces.Params().facility_families
                                     + traces.Params().user_families)


def test_bursts_repeat_one_id_close_together():
    requests = trace('stable')
    close = sum(1 for a, b in zip(requests, requests[1:])
                if a[1] == b[1] and b[0] - a[0] <= 150)
    assert close > 0.2 * len(requests)


def test_more_requests_by_day_than_by_night():
    hours = collections.Counter(int(t % DAY // 3600)
                                for t, _, _ in trace('mixed'))
    day = sum(hours[h] for h in range(10, 19))
    night = sum(hours[h] for h in (22, 23, 0, 1, 2, 3, 4, 5, 6))
    assert day > 2 * night


def test_cli(tmp_path, capsys):
    path = tmp_path / 'out.csv'
    assert traces.main(['--regime', 'oneoff', '--seed', '3', '--days', '1',
                        '--per-day', '300', '--out', str(path)]) == 0
    rows = path.read_text().splitlines()
    assert rows[0] == 'timestamp,image_id,size'
    summary = capsys.readouterr().err
    assert '%d requests' % (len(rows) - 1) in summary
    assert 'unique images' in summary and 'GiB' in summary


def test_cli_to_stdout(capsys):
    traces.main(['--regime', 'stable', '--days', '1', '--per-day', '50',
                 '--out', '-'])
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == 'timestamp,image_id,size'
    assert captured.err.count('\n') == 1
