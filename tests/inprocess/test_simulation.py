"""The trace replay of ``cache-maint-manage simulate`` (simulation).

The LRU replay is checked against a reference written here from the
contract alone (an OrderedDict and a queue of events), with none of
prune's planner or policies: misses are cached at once, hits move an image
to the most recently used end, prunes run on the trace's clock.
"""

import collections
import heapq
import io
import math
import random

import pytest

from cache_maint import eviction
from cache_maint import simulation
from cache_maint import targets as evict_targets

HEADER = 'timestamp,image_id,size\n'

# The kinds of event of the reference, in the order they run at one time:
# a prune due at T runs before the requests of time T.
_PRUNE = 0
_REQUEST = 1


def reference_lru(requests, cache_size, prune_interval, high_watermark=100,
                  low_watermark=100, watch=False, react_delay=2.0,
                  max_images=0):
    """(bytes_missed, objects_missed, prunes) of an LRU cache.

    ``requests``: ``(timestamp, image_id, size)`` in time order. A prune
    runs every ``prune_interval`` seconds from the first request (0:
    never), and, with ``watch``, ``react_delay`` seconds after a miss
    leaves the cache over its high mark or its image cap (one such prune
    pending at a time: a burst of misses makes one; it runs, and counts,
    only if the cache is still over then, as the service's watcher). A
    prune that finds the cache over its high mark evicts the least
    recently used images until it is down to its low mark; over the image
    cap, until it is back under it.
    """
    high_mark = cache_size * high_watermark // 100
    low_mark = cache_size * low_watermark // 100
    cached = collections.OrderedDict()     # {image_id: size}, LRU first
    used = 0
    events = []                            # (time, kind, sequence)
    for sequence, (timestamp, _image_id, _size) in enumerate(requests):
        heapq.heappush(events, (timestamp, _REQUEST, sequence))
    if prune_interval:
        heapq.heappush(events, (requests[0][0] + prune_interval, _PRUNE,
                                -1))
    watch_pending = False
    bytes_missed = objects_missed = prunes = 0
    served = 0
    while served < len(requests):
        when, kind, sequence = heapq.heappop(events)
        if kind == _PRUNE:
            if sequence == -1:          # the timer's: the next one
                heapq.heappush(events, (when + prune_interval, _PRUNE, -1))
            else:                       # the watch's
                watch_pending = False
                if not (used > high_mark
                        or (max_images and len(cached) > max_images)):
                    continue            # the cache is within its targets
            prunes += 1
            if used > high_mark:
                while used > low_mark:
                    _evicted, size = cached.popitem(last=False)
                    used -= size
            while max_images and len(cached) > max_images:
                _evicted, size = cached.popitem(last=False)
                used -= size
            continue
        served += 1
        _timestamp, image_id, size = requests[sequence]
        if image_id in cached:
            cached.move_to_end(image_id)
            continue
        bytes_missed += size
        objects_missed += 1
        cached[image_id] = size
        used += size
        over = used > high_mark or (max_images and len(cached) > max_images)
        if watch and over and not watch_pending:
            watch_pending = True
            heapq.heappush(events, (when + react_delay, _PRUNE, sequence))
    return bytes_missed, objects_missed, prunes


def schedule(prune_interval, high_watermark=100, low_watermark=100,
             watch=False, react_delay=2.0, max_images=0):
    """A simulation.Schedule; its max_size is the replay's to set."""
    return simulation.Schedule(
        prune_interval=prune_interval,
        targets=evict_targets.Targets(
            max_size=0, high_watermark=high_watermark,
            low_watermark=low_watermark, max_images=max_images),
        watch=watch, react_delay=react_delay)


def replayed(requests, cache_size, policy='lru', **options):
    """(bytes_missed, objects_missed, prunes) of simulation.replay."""
    result = simulation.replay(simulation.Trace.of(requests), cache_size,
                               policy, schedule(**options))
    return result.bytes_missed, result.objects_missed, result.prunes


def random_trace(rng, length=None, images=None, same_size=False):
    """``(timestamp, image_id, size)`` rows in time order.

    Popular and rare images, small and large ones, bursts of requests at
    one timestamp and long gaps, sometimes an image of another size on a
    later request.
    """
    length = length or rng.randint(1, 250)
    images = images or rng.randint(1, 40)
    ids = ['img-%02d' % n for n in range(images)]
    if same_size:
        sizes = {image_id: 100 for image_id in ids}
    else:
        sizes = {image_id: rng.choice((
            rng.randint(0, 20), rng.randint(1, 400), rng.randint(1, 400),
            rng.randint(500, 3000))) for image_id in ids}
    weights = [1.0 / (rank + 1) ** rng.uniform(0.2, 1.5)
               for rank in range(images)]
    now = float(rng.randint(0, 10 ** 6))
    rows = []
    for _ in range(length):
        now += rng.choice((0, 0, 0.5, 1, 3, 10, 60, 300, 900))
        image_id = rng.choices(ids, weights)[0]
        size = sizes[image_id]
        if not same_size and rng.random() < 0.02:
            size = rng.randint(1, 500)      # a trace may disagree on a size
        rows.append((now, image_id, size))
    return rows


def unique_bytes(requests):
    first = {}
    for _timestamp, image_id, size in requests:
        first.setdefault(image_id, size)
    return sum(first.values())


def cache_sizes(rng, requests):
    unique = unique_bytes(requests)
    largest = max(size for _, _, size in requests)
    return sorted({0, 1, largest // 2, max(0, largest - 1),
                   int(unique * rng.uniform(0.05, 0.3)),
                   int(unique * rng.uniform(0.3, 0.9)), unique,
                   unique * 2})


# Schedules the reference is compared under: the timer alone, watermarks,
# the watch (with or without the timer), and an image cap.
SCHEDULES = [
    dict(prune_interval=60),
    dict(prune_interval=600),
    dict(prune_interval=3600),
    dict(prune_interval=7.5),
    dict(prune_interval=300, high_watermark=90, low_watermark=50),
    dict(prune_interval=300, high_watermark=80, low_watermark=80),
    dict(prune_interval=600, watch=True),
    dict(prune_interval=600, watch=True, react_delay=45),
    dict(prune_interval=900, watch=True, react_delay=0.5,
         high_watermark=85, low_watermark=60),
    dict(prune_interval=0, watch=True, react_delay=5),
    dict(prune_interval=0, watch=True, react_delay=1000,
         high_watermark=95, low_watermark=70),
    dict(prune_interval=300, max_images=3),
    dict(prune_interval=600, watch=True, react_delay=30, max_images=5,
         high_watermark=90, low_watermark=75),
]


@pytest.mark.parametrize('seed', [1, 2, 3, 4, 5, 6])
def test_lru_replay_is_the_reference_on_random_traces(seed):
    rng = random.Random(seed)
    for _ in range(4):
        requests = random_trace(rng)
        for options in SCHEDULES:
            for cache_size in cache_sizes(rng, requests):
                expected = reference_lru(requests, cache_size, **options)
                assert replayed(requests, cache_size, **options) == \
                    expected, (seed, requests, cache_size, options)


# a and b are 100 bytes, c 150; the cache holds 300, a prune every 100 s.
HAND_MADE = [(0, 'a', 100), (10, 'b', 100), (20, 'c', 150), (30, 'a', 100),
             (100, 'b', 100), (150, 'c', 150), (250, 'a', 100),
             (300, 'c', 150)]


def test_the_reference_itself_on_a_hand_made_trace():
    """The reference's own answers, counted by hand (see below)."""
    assert reference_lru(HAND_MADE, 300, 100) == (550, 5, 3)
    assert reference_lru(HAND_MADE, 300, 100, watch=True,
                         react_delay=5) == (800, 7, 8)
    assert reference_lru(HAND_MADE, 300, 100, high_watermark=90,
                         low_watermark=50) == (700, 6, 3)


def test_hand_computed_lru():
    # 0 a, 10 b, 20 c: misses (350 bytes cached); 30 a: a hit (LRU b c a).
    # Prune at 100 (before the request of 100): 350 > 300, b goes.
    # 100 b: miss (c a b, 350); 150 c: hit (a b c).
    # Prune at 200: a goes. 250 a: miss (b c a, 350).
    # Prune at 300, before the request of 300: b goes. 300 c: hit.
    result = simulation.replay(simulation.Trace.of(HAND_MADE), 300, 'lru',
                               schedule(100))
    assert result.requests == 8
    assert result.bytes_requested == 950
    assert result.bytes_missed == 550
    assert result.objects_missed == 5
    assert result.prunes == 3
    assert result.byte_miss_ratio == 550 / 950
    assert result.object_miss_ratio == 5 / 8
    assert result.policy == 'lru'
    assert result.cache_size == 300


def test_hand_computed_lru_with_the_watch():
    # 20 c takes the cache to 350: a prune at 25 evicts a (LRU a b c).
    # 30 a: miss (b c a, 350): a prune at 35 evicts b.
    # Timer at 100: 250 bytes, nothing to do. 100 b: miss, prune at 105
    # evicts c. 150 c: miss, prune at 155 evicts a; timer at 200, nothing.
    # 250 a: miss, prune at 255 evicts b; timer at 300, nothing. 300 c: hit.
    result = simulation.replay(simulation.Trace.of(HAND_MADE), 300, 'lru',
                               schedule(100, watch=True, react_delay=5))
    assert (result.bytes_missed, result.objects_missed, result.prunes) == (
        800, 7, 8)


def test_hand_computed_lru_with_watermarks():
    # High mark 270, low mark 150. Prune at 100: 350 bytes (b c a), down to
    # 150: b then c go. 100 b: miss (a b); 150 c: miss (a b c, 350).
    # Prune at 200: a then b go (150 left). 250 a: miss (c a, 250).
    # Prune at 300: 250 is under the high mark, nothing. 300 c: hit.
    result = simulation.replay(
        simulation.Trace.of(HAND_MADE), 300, 'lru',
        schedule(100, high_watermark=90, low_watermark=50))
    assert (result.bytes_missed, result.objects_missed, result.prunes) == (
        700, 6, 3)


def test_an_image_larger_than_the_cache_misses_every_time_after_a_prune():
    requests = [(0, 'big', 500), (10, 'big', 500), (70, 'big', 500),
                (130, 'big', 500)]
    # Cached at once, so the request of 10 hits; evicted at 60 and 120.
    assert replayed(requests, 400, prune_interval=60) == (1500, 3, 2)
    assert reference_lru(requests, 400, 60) == (1500, 3, 2)


def test_a_cache_of_size_zero_keeps_images_until_the_next_prune():
    requests = [(0, 'a', 10), (1, 'a', 10), (5, 'b', 10), (5, 'a', 10),
                (5, 'a', 10)]
    # The prune at 5 runs before both requests of 5: b and a miss, then a
    # hits.
    assert replayed(requests, 0, prune_interval=5) == (30, 3, 1)


def test_prunes_are_those_until_the_last_request():
    requests = [(0, 'a', 1), (1000, 'a', 1)]
    assert replayed(requests, 10, prune_interval=100)[2] == 10
    assert replayed(requests, 10, prune_interval=1000)[2] == 1
    assert replayed(requests, 10, prune_interval=1001)[2] == 0
    # A watch prune due after the last request never ran.
    assert replayed([(0, 'a', 20), (1, 'b', 1)], 10, prune_interval=0,
                    watch=True, react_delay=5)[2] == 0


def test_the_watch_reacts_to_the_image_cap():
    requests = [(0, 'a', 1), (1, 'b', 1), (2, 'c', 1), (10, 'a', 1)]
    # Three images over a cap of two: a prune at 4 evicts a.
    assert replayed(requests, 1000, prune_interval=0, watch=True,
                    react_delay=2, max_images=2) == (4, 4, 1)
    assert reference_lru(requests, 1000, 0, watch=True, react_delay=2,
                         max_images=2) == (4, 4, 1)


def test_ties_in_time_keep_the_trace_order_for_lru():
    # a, b and c at one time; a read again at the same time: b goes first.
    requests = [(0, 'a', 10), (0, 'b', 10), (0, 'c', 10), (0, 'a', 10),
                (5, 'b', 10), (5, 'a', 10)]
    assert replayed(requests, 20, prune_interval=5) == (40, 4, 1)


# ---------------------------------------------------------------------------
# The offline reference and the other policies.


@pytest.mark.parametrize('seed', [11, 12, 13, 14])
def test_offline_never_misses_more_than_lru_with_equal_sizes(seed):
    """Furthest next request first is Belady's order.

    With images of one size, no policy misses less on the same prunes.
    """
    rng = random.Random(seed)
    for _ in range(4):
        requests = random_trace(rng, length=rng.randint(50, 300),
                                images=rng.randint(5, 40), same_size=True)
        trace = simulation.Trace.of(requests)
        unique = trace.unique_bytes()
        for cache_size in (0, 100, 300, unique // 3, unique // 2):
            for interval in (5, 60, 600):
                plan = schedule(interval)
                offline = simulation.replay(trace, cache_size,
                                            simulation.OFFLINE, plan)
                lru = simulation.replay(trace, cache_size, 'lru', plan)
                assert offline.bytes_missed <= lru.bytes_missed, (
                    seed, requests, cache_size, interval)
                assert offline.objects_missed <= lru.objects_missed
                assert offline.policy == simulation.OFFLINE
                assert offline.prunes == lru.prunes


def test_offline_evicts_the_image_not_requested_again_first():
    # At the prune of 100 the cache holds a, b (LRU first) and must shed
    # one: a is requested again, b never; LRU evicts a, offline b.
    requests = [(0, 'a', 10), (1, 'b', 10), (150, 'a', 10)]
    plan = schedule(100)
    trace = simulation.Trace.of(requests)
    assert simulation.replay(trace, 10, 'lru', plan).objects_missed == 3
    assert simulation.replay(trace, 10, simulation.OFFLINE,
                             plan).objects_missed == 2


def compulsory(requests):
    """Misses no cache avoids: the first request of each image."""
    first = {}
    for _timestamp, image_id, size in requests:
        first.setdefault(image_id, size)
    return len(first), sum(first.values())


@pytest.mark.parametrize('policy', sorted(eviction.NAMES) +
                         [simulation.OFFLINE])
@pytest.mark.parametrize('seed', [21, 22, 23])
def test_every_policy_is_deterministic_and_bounded(policy, seed):
    rng = random.Random(seed)
    for _ in range(4):
        requests = random_trace(rng, length=rng.randint(20, 300))
        trace = simulation.Trace.of(requests)
        objects, first_bytes = compulsory(requests)
        for options in (dict(prune_interval=300),
                        dict(prune_interval=600, watch=True,
                             high_watermark=90, low_watermark=60)):
            for cache_size in cache_sizes(rng, requests):
                plan = schedule(**options)
                once = simulation.replay(trace, cache_size, policy, plan)
                again = simulation.replay(trace, cache_size, policy, plan)
                assert once == again
                assert objects <= once.objects_missed <= once.requests
                assert once.requests == len(requests)
                assert once.bytes_requested == sum(
                    size for _, _, size in requests)
                assert first_bytes <= once.bytes_missed <= \
                    once.bytes_requested
                if cache_size >= 2 * unique_bytes(requests):
                    assert once.objects_missed == objects


@pytest.mark.parametrize('policy', sorted(eviction.NAMES))
def test_a_cache_holding_everything_misses_only_first_requests(policy):
    rng = random.Random(31)
    requests = random_trace(rng, length=300, images=30, same_size=True)
    objects, first_bytes = compulsory(requests)
    result = simulation.replay(simulation.Trace.of(requests),
                               unique_bytes(requests), policy, schedule(60))
    assert (result.objects_missed, result.bytes_missed) == (objects,
                                                            first_bytes)


def test_lfuda_keeps_the_image_read_often():
    # At the prune of 100, a (read three times) and b (once, and more
    # recently) fill a cache of one image: LRU keeps b, lfuda keeps a.
    requests = [(0, 'a', 10), (1, 'a', 10), (2, 'a', 10), (3, 'b', 10),
                (150, 'a', 10)]
    trace = simulation.Trace.of(requests)
    plan = schedule(100)
    assert simulation.replay(trace, 10, 'lru', plan).objects_missed == 3
    assert simulation.replay(trace, 10, 'lfuda', plan).objects_missed == 2


# ---------------------------------------------------------------------------
# read_trace


def read(text, name='t.csv'):
    return simulation.read_trace(io.StringIO(text, newline=''), name=name)


def rows(trace):
    return list(zip(trace.times, trace.image_ids, trace.sizes))


def test_read_trace():
    trace = read(HEADER + '1.5,a,10\n2,b,0\n2,a,10\n')
    assert rows(trace) == [(1.5, 'a', 10), (2.0, 'b', 0), (2.0, 'a', 10)]
    assert len(trace) == 3


def test_read_trace_tolerates_a_byte_order_mark_and_crlf():
    trace = read('\ufeff' + HEADER.replace('\n', '\r\n') + '1,a,10\r\n')
    assert rows(trace) == [(1.0, 'a', 10)]


def test_read_trace_from_a_file(tmp_path):
    path = tmp_path / 'trace.csv'
    path.write_text(HEADER + '1,a,10\n', encoding='utf-8-sig')
    with open(path, newline='', encoding='utf-8') as lines:
        assert rows(simulation.read_trace(lines)) == [(1.0, 'a', 10)]


@pytest.mark.parametrize('header', [
    '', 'timestamp,image_id\n', 'time,image,size\n',
    'image_id,timestamp,size\n', 'timestamp,image_id,size,extra\n',
    '1,a,10\n'])
def test_read_trace_requires_the_header(header):
    with pytest.raises(simulation.TraceError, match='header'):
        read(header + '1,a,10\n')


def test_read_trace_refuses_a_trace_without_requests():
    with pytest.raises(simulation.TraceError, match='no request'):
        read(HEADER)
    with pytest.raises(simulation.TraceError, match='no request'):
        read(HEADER + '\n\n')


def test_read_trace_skips_blank_lines():
    trace = read(HEADER + '\n1,a,10\n\n\n2,b,20\n\n')
    assert rows(trace) == [(1.0, 'a', 10), (2.0, 'b', 20)]


@pytest.mark.parametrize('bad_row', [
    'soon,a,10', '-1,a,10', 'nan,a,10', 'inf,a,10', ',a,10',
    '1,a,-1', '1,a,1.5', '1,a,ten', '1,a,', '1,a,%d' % 2 ** 63,
    '1,,10',
    '1,%s,10' % ('x' * (simulation.MAX_ID_LENGTH + 1)),
    '1,a', '1,a,10,11', '1',
])
def test_read_trace_names_the_bad_line(bad_row):
    # The bad row is on line 4: the header, a good row, a blank line.
    with pytest.raises(simulation.TraceError) as raised:
        read(HEADER + '1,a,10\n\n' + bad_row + '\n2,b,20\n', name='t.csv')
    message = str(raised.value)
    assert 't.csv' in message
    assert 'line 4' in message and 'line 40' not in message, message


def test_read_trace_accepts_the_longest_id():
    longest = 'x' * simulation.MAX_ID_LENGTH
    assert read(HEADER + '1,%s,10\n' % longest).image_ids == [longest]


def test_read_trace_sorts_rows_and_ties_keep_the_file_order():
    trace = read(HEADER + '5,a,1\n3,b,2\n5,c,3\n1,d,4\n3,e,5\n5,f,6\n')
    assert rows(trace) == [(1.0, 'd', 4), (3.0, 'b', 2), (3.0, 'e', 5),
                           (5.0, 'a', 1), (5.0, 'c', 3), (5.0, 'f', 6)]


def test_an_unsorted_trace_replays_as_the_sorted_one():
    rng = random.Random(41)
    requests = random_trace(rng, length=200)
    shuffled = list(requests)
    rng.shuffle(shuffled)
    text = HEADER + ''.join('%r,%s,%d\n' % row for row in shuffled)
    trace = read(text)
    assert trace.times.tolist() == sorted(t for t, _, _ in requests)
    plan = schedule(300)
    # Ties may come in another order: compare on ties broken the same way.
    expected = simulation.Trace.of(shuffled)
    assert rows(trace) == rows(expected)
    assert simulation.replay(trace, 1000, 'lru', plan) == \
        simulation.replay(expected, 1000, 'lru', plan)


# ---------------------------------------------------------------------------
# sizes_of and simulate


def test_sizes_of_takes_floats_as_shares_of_the_unique_bytes():
    # Unique bytes: a at its first size (100) and b (201).
    trace = simulation.Trace.of([(0, 'a', 100), (1, 'b', 201),
                                 (2, 'a', 999)])
    assert trace.unique_bytes() == 301
    assert simulation.sizes_of(trace, [0.5, 1.0, 1000, 0, 0.01]) == [
        150, 301, 1000, 0, 3]
    assert simulation.sizes_of(trace, []) == []


RESULT_KEYS = {'policy', 'cache_size', 'requests', 'bytes_requested',
               'bytes_missed', 'byte_miss_ratio', 'object_miss_ratio',
               'prunes'}
OFFLINE_KEYS = {'cache_size', 'byte_miss_ratio', 'object_miss_ratio'}


def test_simulate_keeps_its_json_contract():
    rng = random.Random(51)
    requests = random_trace(rng, length=200, images=20)
    trace = simulation.Trace.of(requests)
    plan = schedule(600, watch=True)
    sizes = [0, 500, trace.unique_bytes()]
    policies = ['lru', 'lfuda', 'adaptive']
    answer = simulation.simulate(trace, sizes, policies, plan)
    assert set(answer) == {'results', 'offline'}
    assert [(r['cache_size'], r['policy']) for r in answer['results']] == [
        (size, policy) for size in sizes for policy in policies]
    for result in answer['results']:
        assert set(result) == RESULT_KEYS
        replay = simulation.replay(trace, result['cache_size'],
                                   result['policy'], plan)
        assert result == replay.to_dict()
        assert result['requests'] == len(requests)
        assert result['byte_miss_ratio'] == (
            result['bytes_missed'] / result['bytes_requested'])
        assert 0 <= result['object_miss_ratio'] <= 1
    assert [o['cache_size'] for o in answer['offline']] == sizes
    for offline in answer['offline']:
        assert set(offline) == OFFLINE_KEYS
        replay = simulation.replay(trace, offline['cache_size'],
                                   simulation.OFFLINE, plan)
        assert offline['byte_miss_ratio'] == replay.byte_miss_ratio
        assert offline['object_miss_ratio'] == replay.object_miss_ratio


def test_ratios_of_a_trace_of_empty_images_are_zero():
    trace = simulation.Trace.of([(0, 'a', 0), (1, 'b', 0)])
    result = simulation.replay(trace, 0, 'lru', schedule(1))
    assert result.bytes_requested == 0
    assert result.byte_miss_ratio == 0.0
    assert result.object_miss_ratio == 1.0
    assert not math.isnan(result.byte_miss_ratio)
