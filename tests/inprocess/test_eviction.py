"""The eviction policies on hand-made records, and their memory.

Each test plays the calls prune makes (``observe``, ``rank``, then
``evicted`` with the victims) on ImageRecords and CachedFiles built here;
nothing is on disk but the state database of the load and save tests.
"""

import json
import logging
import sqlite3

import pytest

from cache_maint import cachedir
from cache_maint.drivers import base
from cache_maint import eviction
from cache_maint.eviction import adaptive
from cache_maint.eviction import lfuda
from cache_maint.eviction import lru
from cache_maint import state

NAN = float('nan')
INF = float('inf')

#: The policies that keep a memory between prunes.
REMEMBERING = [name for name in eviction.NAMES
               if eviction.POLICIES[name].remembers]


def record(image_id, last_accessed, hits=0, size=1, last_modified=None):
    """Glance's record of an image.

    It was cached when it was last read, unless ``last_modified`` says
    otherwise.
    """
    return base.ImageRecord(
        image_id, float(last_accessed),
        float(last_accessed if last_modified is None else last_modified),
        size, hits)


def snapshot(records):
    """(recorded, {image_id: record}) as prune hands them to ``rank``.

    The CachedFiles least recently used first, and the records by id.
    """
    ordered = sorted(records, key=lambda r: r.last_accessed)
    recorded = [cachedir.CachedFile(r.image_id, r.size, r.last_modified,
                                    r.last_accessed) for r in ordered]
    return recorded, {r.image_id: r for r in records}


def ids(cached_files):
    return [cached.image_id for cached in cached_files]


def prune_once(policy, records, now, count):
    """One prune's calls; the ids of its victims.

    It evicts the first ``count`` images of the policy's order.
    """
    recorded, by_id = snapshot(records)
    policy.observe(by_id, now)
    order = policy.rank(recorded, by_id, now)
    victims = order[:count]
    policy.evicted(victims, by_id, now)
    return ids(victims)


def rank_ids(policy, records, now):
    recorded, by_id = snapshot(records)
    return ids(policy.rank(recorded, by_id, now))


def through_json(policy):
    """The policy as the next prune loads it from the state."""
    text = json.dumps(policy.dump(), allow_nan=False)
    return eviction.make(policy.name, json.loads(text))


class TestLRU:
    def test_rank_keeps_the_order_it_is_given(self):
        # The hits and the times would make any other policy reorder them.
        records = [record('a', 300, hits=50), record('b', 100),
                   record('c', 200, hits=7)]
        recorded, by_id = snapshot(records)
        recorded.reverse()      # whatever order the driver gave
        policy = eviction.make(eviction.LRU)
        policy.observe(by_id, 1000.0)
        assert policy.rank(recorded, by_id, 1000.0) == recorded
        # Prune hands it no record at all.
        assert policy.rank(recorded, {}, 1000.0) == recorded

    def test_reads_no_record_and_remembers_nothing(self, tmp_path):
        assert eviction.POLICIES[eviction.LRU] is lru.LRU
        policy = eviction.make(eviction.LRU, {'theta': 3.0})
        assert policy.needs_records is False
        assert policy.remembers is False
        recorded, by_id = snapshot([record('a', 100), record('b', 200)])
        policy.evicted(recorded[:1], by_id, 1000.0)
        assert policy.dump() is None
        store = state.StateStore(str(tmp_path / 'state'))
        eviction.save(policy, store)
        assert store.get(eviction.memory_key(eviction.LRU)) is None
        # Nothing was written: not even the state database was made.
        assert not (tmp_path / 'state').exists()

    def test_load_does_not_read_the_state(self):
        class Unreadable:
            def get(self, name, default=None):
                raise AssertionError('lru read %s' % name)

        policy = eviction.load(eviction.LRU, Unreadable())
        assert isinstance(policy, lru.LRU)


class TestLFUDA:
    def test_key_is_the_age_at_last_access_plus_the_requests(self):
        policy = lfuda.LFUDA()
        assert policy.age == 0
        assert policy.key(record('a', 100, hits=4)) == 5
        assert policy.key(record('b', 100)) == 1
        policy.evicted(*snapshot([record('x', 150, hits=6)]), now=200)
        assert policy.age == 7
        # Read before the change: the age it had then; after: the new one.
        assert policy.key(record('a', 150, hits=4)) == 5
        assert policy.key(record('a', 250, hits=4)) == 7 + 5

    def test_a_frequently_read_image_is_kept_over_a_recent_one_off(self):
        popular = record('popular', 100, hits=10)
        recent = record('recent', 900)
        policy = lfuda.LFUDA()
        assert rank_ids(lru.LRU(), [popular, recent], 1000) == [
            'popular', 'recent']
        assert rank_ids(policy, [popular, recent], 1000) == [
            'recent', 'popular']

    def test_evicted_raises_the_age_to_the_largest_key_evicted(self):
        policy = lfuda.LFUDA()
        policy.evicted(*snapshot([record('a', 100, hits=2),
                                  record('b', 200, hits=6),
                                  record('c', 300)]), now=1000)
        assert policy.age == 7
        assert policy.dump()['history'] == [[1000, 7]]
        # Victims whose keys are below the age change nothing.
        policy.evicted(*snapshot([record('d', 400, hits=5)]),
                       now=2000)
        assert policy.age == 7
        assert len(policy.dump()['history']) == 1
        # Nor do victims without a record (untracked files), nor none.
        untracked = cachedir.CachedFile('u', 1, 10.0, 10.0)
        policy.evicted([untracked], {}, 3000)
        policy.evicted([], {}, 3000)
        assert policy.age == 7
        assert len(policy.dump()['history']) == 1

    def test_an_image_popular_long_ago_ages_out(self):
        policy = lfuda.LFUDA()
        old_star = record('old-star', 100, hits=20)     # its key: 21
        # Prune after prune, images read since (key L + 6) go first, and
        # each eviction raises L.
        for now in (1000, 2000, 3000):
            newcomer = record('new-%d' % now, now - 500, hits=5)
            assert rank_ids(policy, [old_star, newcomer], now) == [
                newcomer.image_id, 'old-star']
            policy.evicted(*snapshot([newcomer]), now=now)
        assert policy.age == 18
        assert policy.key(old_star) == 21
        # Now an image read as often, but recently, outlives the old star.
        newcomer = record('new-4000', 3500, hits=5)
        assert rank_ids(policy, [old_star, newcomer], 4000) == [
            'old-star', 'new-4000']
        policy.evicted(*snapshot([old_star]), now=4000)
        # L catches up: soon even an image read once outlives it.
        assert rank_ids(policy, [record('old-star-2', 100, hits=20),
                                 record('once', 4500)], 5000) == [
            'old-star-2', 'once']

    def test_ties_keep_the_lru_order(self):
        records = [record(image_id, t, hits=2)
                   for image_id, t in (('c', 100), ('a', 200), ('b', 300),
                                       ('d', 400))]
        recorded, by_id = snapshot(records)
        recorded = [recorded[i] for i in (2, 0, 3, 1)]  # the driver's order
        assert lfuda.LFUDA().rank(recorded, by_id, 1000) == recorded

    def test_memory_round_trips_through_json(self):
        policy = lfuda.LFUDA()
        for now in (1000, 2000, 3000):
            policy.evicted(*snapshot([record('x%d' % now, now - 100,
                                             hits=4)]), now=now)
        again = through_json(policy)
        assert again.dump() == policy.dump()
        assert again.age == policy.age
        for accessed in (50, 1000, 1500, 2500, 3000, 9999):
            probe = record('p', accessed, hits=3)
            assert again.key(probe) == policy.key(probe)

    def test_history_is_bounded_and_keeps_its_base(self):
        policy = lfuda.LFUDA()
        extra = 5
        for i in range(lfuda.HISTORY + extra):
            now = 1000.0 * (i + 1)
            # Read just before, never hit: its key is L + 1.
            victim = record('v%d' % i, now - 1)
            policy.evicted(*snapshot([victim]), now=now)
        assert policy.age == lfuda.HISTORY + extra
        memory = policy.dump()
        assert len(memory['history']) == lfuda.HISTORY
        # The L that the oldest change kept replaced.
        assert memory['base'] == extra
        oldest_kept = memory['history'][0][0]
        assert policy.key(record('old', oldest_kept - 1)) == extra + 1
        assert policy.key(record('old', 1)) == extra + 1
        again = through_json(policy)
        assert again.key(record('old', 1)) == extra + 1
        assert again.age == policy.age
        # And the history stays bounded from then on.
        again.evicted(*snapshot([record('w', 10 ** 7)]), now=10 ** 7)
        assert len(again.dump()['history']) == lfuda.HISTORY
        assert again.dump()['base'] == extra + 1

    def test_a_clock_gone_backwards_keeps_the_history_in_order(self):
        policy = lfuda.LFUDA()
        policy.evicted(*snapshot([record('a', 900, hits=3)]), now=1000)
        # The clock is set back: now is before the last change.
        policy.evicted(*snapshot([record('b', 990, hits=9)]), now=500)
        times = [when for when, _age in policy.dump()['history']]
        assert times == sorted(times)
        assert policy.age == 10
        assert through_json(policy).age == policy.age
        # An image read now, after the clock was put right, ages with L as
        # it is now, not with the L of before the changes dated ahead.
        assert policy.key(record('c', 600, hits=0)) == policy.age + 1


def learning_prune(policy, start, outcome):
    """A prune where the policy and LRU disagree, and what came of it.

    LRU would evict an old image read 50 times; the policy evicts a
    one-off read a little later instead. At the next prune, either the
    one-off was cached again (``'refetched'``), or the popular image was
    read again (``'read'``), or neither; both within LRU's horizon. Theta
    after the next prune's ``observe``.
    """
    def name(what):
        return '%s-%d' % (what, start)

    popular = record(name('popular'), start + 1000, hits=50)
    one_off = record(name('one-off'), start + 2000)
    other = record(name('other'), start + 3000)
    recent = record(name('recent'), start + 90000)
    now = start + 100000
    assert prune_once(policy, [popular, one_off, other, recent], now,
                      1) == [one_off.image_id]
    later = now + 500
    records = [popular, other, recent]
    if outcome == 'refetched':
        records.append(record(one_off.image_id, later - 100))
    elif outcome == 'read':
        records[0] = record(popular.image_id, later - 100, hits=51)
    policy.observe(snapshot(records)[1], later)
    return policy.theta


class TestAdaptive:
    def test_at_theta_min_it_is_lru(self):
        policy = adaptive.Adaptive({'theta': adaptive.THETA_MIN})
        assert policy.theta == adaptive.THETA_MIN
        same_hits = [record('c', 3000, hits=3), record('a', 1000, hits=3),
                     record('d', 4000, hits=3), record('b', 2000, hits=3)]
        assert rank_ids(policy, same_hits, 10000) == ['a', 'b', 'c', 'd']
        # A few more hits do not outweigh much older reads.
        mixed = [record('a', 1000, hits=3), record('b', 5000),
                 record('c', 9000)]
        assert rank_ids(policy, mixed, 10000) == ['a', 'b', 'c']

    def test_with_a_large_theta_frequency_wins(self):
        policy = adaptive.Adaptive({'theta': adaptive.THETA_MAX})
        images = [record('popular', 1000, hits=50), record('once-1', 5000),
                  record('once-2', 6000), record('once-3', 9000)]
        assert rank_ids(lru.LRU(), images, 10000)[0] == 'popular'
        assert rank_ids(policy, images, 10000) == [
            'once-1', 'once-2', 'once-3', 'popular']

    def test_its_own_victim_cached_again_lowers_theta(self):
        policy = adaptive.Adaptive()
        assert learning_prune(policy, 0, 'refetched') < adaptive.THETA_START

    def test_an_image_lru_would_have_evicted_read_again_raises_theta(self):
        policy = adaptive.Adaptive()
        assert learning_prune(policy, 0, 'read') > adaptive.THETA_START

    def test_nothing_learnt_without_evidence(self):
        policy = adaptive.Adaptive()
        assert learning_prune(policy, 0, None) == adaptive.THETA_START

    def test_a_victim_lru_would_have_evicted_too_costs_nothing(self):
        policy = adaptive.Adaptive()
        images = [record('a', 1000), record('b', 2000), record('c', 3000)]
        assert prune_once(policy, images, 10000, 1) == ['a']
        policy.observe(snapshot([record('a', 10100), images[1],
                                 images[2]])[1], 10200)
        assert policy.theta == adaptive.THETA_START

    def test_a_return_beyond_lru_horizon_costs_nothing(self):
        policy = adaptive.Adaptive()
        start, horizon = 0, 99000      # LRU evicted what was idle so long
        popular = record('popular', start + 1000, hits=50)
        one_off = record('one-off', start + 2000)
        now = start + 100000
        assert prune_once(policy, [popular, one_off,
                                   record('other', start + 3000),
                                   record('recent', start + 90000)],
                          now, 1) == ['one-off']
        # LRU would have kept the one-off until it was idle that long.
        back = record('one-off', one_off.last_accessed + horizon + 1)
        policy.observe(snapshot([popular, back])[1], back.last_accessed + 1)
        assert policy.theta == adaptive.THETA_START
        assert policy.requests(back) == 2       # its request counted still

    def test_a_read_beyond_lru_horizon_gains_nothing(self):
        policy = adaptive.Adaptive()
        popular = record('popular', 1000, hits=50)
        now = 100000
        assert prune_once(policy, [popular, record('one-off', 2000),
                                   record('other', 3000),
                                   record('recent', 90000)],
                          now, 1) == ['one-off']
        # LRU evicted what was idle for 99000 s: by then it had gone.
        read = record('popular', now + 99000 + 1, hits=51)
        policy.observe({'popular': read}, read.last_accessed + 1)
        assert policy.theta == adaptive.THETA_START
        assert policy.dump()['kept'] == {}

    def test_an_old_record_of_a_victim_is_no_return(self):
        policy = adaptive.Adaptive()
        learning_prune(policy, 0, None)
        theta = policy.theta
        # The one-off's record, made before its eviction (at 100000).
        stale = record('one-off-0', 2000, hits=0, last_modified=99000)
        policy.observe({'one-off-0': stale}, 100600)
        assert policy.theta == theta
        assert policy.requests(stale) == 1
        assert 'one-off-0' in policy.dump()['ghosts']

    def test_theta_stays_within_its_bounds(self):
        policy = adaptive.Adaptive()
        for i in range(20):
            theta = learning_prune(policy, i * 10 ** 6, 'refetched')
            assert adaptive.THETA_MIN <= theta <= adaptive.THETA_MAX
        assert policy.theta == pytest.approx(adaptive.THETA_MIN)
        for i in range(20, 60):
            theta = learning_prune(policy, i * 10 ** 6, 'read')
            assert adaptive.THETA_MIN <= theta <= adaptive.THETA_MAX
        assert policy.theta == pytest.approx(adaptive.THETA_MAX)
        # Theta from a memory outside the bounds is not taken.
        for wrong in (adaptive.THETA_MAX * 2, adaptive.THETA_MIN / 2, 0):
            assert adaptive.Adaptive({'theta': wrong}).theta == \
                adaptive.THETA_START

    def test_an_image_cached_again_keeps_its_earlier_requests(self):
        policy = adaptive.Adaptive()
        assert prune_once(policy, [record('a', 1000, hits=4)], 2000,
                          1) == ['a']
        back = record('a', 2100, hits=2)
        twin = record('twin', 2100, hits=2)
        policy.observe({'a': back, 'twin': twin}, 2200)
        assert policy.requests(back) == 2 + 1 + 5
        assert policy.requests(twin) == 2 + 1
        # Its earlier requests weigh in the order too.
        recorded, by_id = snapshot([back, twin])
        assert ids(policy.rank(recorded, by_id, 2200)) == ['twin', 'a']
        # Evicted again, then cached again: all its requests still count.
        policy.evicted([c for c in recorded if c.image_id == 'a'], by_id,
                       2200)
        again = record('a', 2300, hits=1)
        policy = through_json(policy)
        policy.observe({'a': again}, 2400)
        assert policy.requests(again) == 1 + 1 + 8

    def test_memory_round_trips_through_json(self):
        policy = adaptive.Adaptive()
        learning_prune(policy, 0, None)
        learning_prune(policy, 200000, 'read')
        learning_prune(policy, 400000, 'refetched')
        memory = policy.dump()
        assert set(memory['ghosts']) == {'one-off-0', 'one-off-200000'}
        assert set(memory['kept']) == {'popular-400000'}
        assert memory['prior'] == {'one-off-400000': [1]}
        again = through_json(policy)
        assert again.dump() == json.loads(json.dumps(memory))
        assert again.theta == policy.theta
        probe = [record('one-off-400000', 500400),
                 record('x', 450000, hits=1),
                 record('popular-400000', 401000, hits=50)]
        now = 510000
        assert rank_ids(again, probe, now) == rank_ids(policy, probe, now)
        assert [again.requests(r) for r in probe] == [
            policy.requests(r) for r in probe] == [2, 2, 51]

    def test_memory_is_bounded_in_entries(self):
        # As many popular old images kept as one-offs evicted, and more
        # of each than the memory holds.
        count = adaptive.MEMORY_SIZE + 10
        popular = [record('popular-%d' % i, i, hits=1000)
                   for i in range(count)]
        one_offs = [record('once-%d' % i, count + i) for i in range(count)]
        policy = adaptive.Adaptive({'theta': adaptive.THETA_MAX})
        evicted = prune_once(policy, popular + one_offs, 2.0 * count, count)
        assert evicted == [r.image_id for r in one_offs]
        memory = through_json(policy).dump()
        assert len(memory['ghosts']) == adaptive.MEMORY_SIZE
        assert len(memory['kept']) == adaptive.MEMORY_SIZE
        # The oldest entries went first.
        assert set(memory['ghosts']) == set(evicted[10:])

    def test_memory_forgets_what_is_older_than_memory_time(self):
        policy = adaptive.Adaptive()
        month = 30 * 86400
        now = 10.0 * month
        # Idle for a month, the popular image is what LRU evicts: its
        # horizon, how long it would keep the one-off, is a month.
        popular = record('popular', now - month, hits=2 ** 20)
        others = [record('one-off', now - month + 1000),
                  record('other', now - month / 2), record('recent', now)]
        assert prune_once(policy, [popular] + others, now, 1) == ['one-off']
        assert set(policy.dump()['ghosts']) == {'one-off'}
        assert set(policy.dump()['kept']) == {'popular'}
        policy.observe({'popular': popular}, now + adaptive.MEMORY_TIME - 1)
        assert set(policy.dump()['ghosts']) == {'one-off'}
        assert set(policy.dump()['kept']) == {'popular'}
        policy.observe({'popular': popular}, now + adaptive.MEMORY_TIME + 1)
        assert policy.dump()['ghosts'] == {}
        assert policy.dump()['kept'] == {}

    def test_the_oldest_entries_go_first(self, monkeypatch):
        monkeypatch.setattr(adaptive, 'MEMORY_SIZE', 2)
        policy = adaptive.Adaptive()

        def prune(now, lru_order, victim, size):
            """Equally popular images; the policy evicts ``victim``."""
            records = [record(image_id, t, hits=9,
                              size=size if image_id == victim else 1)
                       for image_id, t in lru_order]
            recorded, by_id = snapshot(records)
            policy.observe(by_id, now)
            policy.rank(recorded, by_id, now)
            policy.evicted([c for c in recorded if c.image_id == victim],
                           by_id, now)
            return policy.dump()['kept']

        # LRU would have evicted P, then P and Q, then P and R.
        assert set(prune(1000, [('P', 10), ('A', 500)], 'A', 1)) == {'P'}
        assert set(prune(1010, [('P', 10), ('Q', 20), ('B', 600)], 'B',
                         2)) == {'P', 'Q'}
        kept = prune(1020, [('P', 10), ('R', 15), ('Q', 20), ('C', 700)],
                     'C', 2)
        # Q, kept at 1010, is the oldest entry; P and R were kept at 1020.
        assert set(kept) == {'P', 'R'}

    def test_the_oldest_entries_go_first_after_a_reload(self, monkeypatch):
        # The state keeps JSON with sorted keys: 'z…', written first, reads
        # back last; it is still the first to go.
        monkeypatch.setattr(adaptive, 'MEMORY_SIZE', 2)
        memory = {'ghosts': {'z-old': [100, 1, 1, 0], 'a-new': [300, 1, 1, 0],
                             'm-mid': [200, 1, 1, 0]}}
        policy = eviction.make('adaptive', json.loads(json.dumps(
            memory, sort_keys=True)))
        assert list(policy.dump()['ghosts']) == ['m-mid', 'a-new']

    def test_a_clock_gone_backwards(self):
        policy = adaptive.Adaptive()
        learning_prune(policy, 0, None)
        # Every time stored, and every record, lies ahead of now.
        records = [record('popular-0', 95000, hits=51),
                   record('one-off-0', 99500, last_modified=99800),
                   record('other-0', 96000), record('late', 99900, hits=2)]
        for now in (50000, 10.0, 0.0):
            prune_once(policy, records, now, 2)
            assert adaptive.THETA_MIN <= policy.theta <= adaptive.THETA_MAX
            policy = through_json(policy)
            assert adaptive.THETA_MIN <= policy.theta <= adaptive.THETA_MAX
        # And forwards again.
        learning_prune(policy, 10 ** 7, 'refetched')
        assert adaptive.THETA_MIN <= policy.theta <= adaptive.THETA_MAX


#: What a state may hold where a policy's memory should be, that either
#: policy must take for no memory at all.
GARBAGE = [
    None, [], [['history', 1]], 'memory', '{"theta": 2.0}', 0, -1, True,
    NAN, INF, {}, {'unknown': 1},
    dict.fromkeys(('base', 'history', 'theta', 'ghosts', 'kept', 'prior')),
    dict.fromkeys(('base', 'history', 'theta', 'ghosts', 'kept', 'prior'),
                  'garbage'),
    dict.fromkeys(('base', 'history', 'theta', 'ghosts', 'kept', 'prior'),
                  [1, 2, 3, 4]),
    {'base': NAN, 'history': [[NAN, NAN]], 'theta': NAN,
     'ghosts': {'a': [NAN] * 4}, 'kept': {'a': [NAN] * 3},
     'prior': {'a': [NAN]}},
    {'base': INF, 'history': [[INF, INF]], 'theta': INF,
     'ghosts': {'a': [INF, 1, 1, 1]}, 'kept': {'a': [1, INF, 1]},
     'prior': {'a': [INF]}},
    {'base': -5, 'history': [[-1, -5]], 'theta': -1.0,
     'ghosts': {'a': [1, 1, -1, 1]}, 'kept': {'a': [1, 1, -1]},
     'prior': {'a': [-3]}},
    # Wrong widths, and entries that are no list.
    {'history': [[], [7], None, 7, {'0': 1, '1': 2}],
     'ghosts': {'a': [1, 1, 1], 'b': [1, 1, 1, 1, 1], 'c': [], 'd': None,
                'e': 'abcd', 'f': {'0': 1}},
     'kept': {'a': [1, 1], 'b': [1, 1, 1, 1], 'c': '123'},
     'prior': {'a': [], 'b': [1, 2], 'c': 5}},
    # Numbers of the wrong kind in the tables.
    {'ghosts': {'a': [True, 1, 1, 1], 'b': [1, '1', 1, 1],
                'c': [1, 1, None, 1]},
     'kept': {'a': [1, False, 1], 'b': [[1], 1, 1]},
     'prior': {'a': [True], 'b': ['3'], 'c': [[3]]}},
    # Theta far out of its bounds.
    {'theta': 1e308}, {'theta': -1e308},
]

#: Memories that are wrong but of numbers in range: neither policy may
#: fail on them, whatever it makes of them.
ODD = [
    {'base': 1e308, 'history': [[1e308, 1e308]],
     'ghosts': {'a': [1e308] * 4}, 'kept': {'a': [0, 1e308, 1e308],
                                            'b': [0, 1e308, 1e308]},
     'prior': {'a': [1e308], 'b': [1e308]}},
    {'base': 10 ** 300, 'history': [[10 ** 300, 10 ** 300]],
     'ghosts': {'a': [10 ** 300] * 4}, 'kept': {'b': [0, 10 ** 300, 5]},
     'prior': {'a': [10 ** 300]}},
    # Out of order, decreasing, of the wrong width but long enough.
    {'base': 9, 'history': [[5, 1], [3, 2], [5, 0], [1, 2, 3], '17', 'x'],
     'theta': 2.5, 'ghosts': {'a': [10 ** 9, 1, 1, 10 ** 9]},
     'kept': {'b': [10 ** 9, 1, 0]}},
]


def exercise(policy):
    """Two prunes on images the memories above name; the next policy."""
    images = [record('a', 100, hits=3), record('b', 200),
              record('c', 300, hits=1), record('d', 400)]
    prune_once(policy, images, 1000.0, 2)
    survivors = [record('a', 1100, hits=4, last_modified=1050),
                 record('b', 1200, hits=1, last_modified=1100),
                 record('c', 300, hits=1), record('d', 1300)]
    prune_once(policy, survivors, 1400.0, 1)
    return through_json(policy)


def assert_sane(policy):
    """What any memory must leave: strict JSON, finite, in bounds."""
    json.dumps(policy.dump(), allow_nan=False)
    if isinstance(policy, adaptive.Adaptive):
        assert adaptive.THETA_MIN <= policy.theta <= adaptive.THETA_MAX
    elif isinstance(policy, lfuda.LFUDA):
        assert 0 <= policy.age < INF


def assert_fresh(policy):
    """``policy`` behaves as one made without a memory."""
    fresh = eviction.make(policy.name)
    if isinstance(policy, lfuda.LFUDA):
        # Garbage may leave a change to L = 0 in the history: L as fresh.
        assert policy.age == 0
        for accessed in (0, 100, 10 ** 6):
            probe = record('a', accessed, hits=2)
            assert policy.key(probe) == fresh.key(probe)
    else:
        assert policy.dump() == fresh.dump()


class TestGarbageMemory:
    @pytest.mark.parametrize('name', REMEMBERING)
    @pytest.mark.parametrize('memory', GARBAGE)
    def test_garbage_is_ignored(self, name, memory):
        policy = eviction.make(name, memory)
        assert_fresh(policy)
        assert_sane(exercise(policy))

    @pytest.mark.parametrize('name', REMEMBERING)
    @pytest.mark.parametrize('memory', ODD)
    def test_odd_values_do_not_fail_a_prune(self, name, memory):
        policy = eviction.make(name, json.loads(json.dumps(memory)))
        assert_sane(policy)
        policy = exercise(policy)
        assert_sane(policy)
        assert_sane(exercise(policy))

    @pytest.mark.parametrize('name, memory', [
        ('lfuda', {'base': 10 ** 400}),
        ('lfuda', {'history': [[1, 10 ** 400]]}),
        ('adaptive', {'theta': 10 ** 400}),
        ('adaptive', {'ghosts': {'a': [10 ** 400, 1, 1, 1]}}),
        ('adaptive', {'prior': {'a': [10 ** 400]}}),
    ])
    def test_an_integer_too_large_for_a_float(self, name, memory):
        policy = eviction.make(name, json.loads(json.dumps(memory)))
        assert_sane(exercise(policy))

    @pytest.mark.parametrize('theta', [True, '2.0'])
    def test_theta_that_is_no_number_is_ignored(self, theta):
        assert adaptive.Adaptive({'theta': theta}).theta == \
            adaptive.THETA_START


def eviction_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == 'cache_maint.eviction'
            and r.levelno == logging.WARNING]


class TestLoadAndSave:
    @pytest.fixture
    def store(self, tmp_path):
        return state.StateStore(str(tmp_path / 'state'))

    @pytest.mark.parametrize('name', eviction.NAMES)
    @pytest.mark.parametrize('memory', [
        'garbage', [1, 2], 42, True, {'theta': 'x', 'history': 'x'},
        {'history': [[NAN, NAN]], 'theta': NAN, 'ghosts': {'a': [-1] * 4}},
    ])
    def test_garbage_in_the_state_is_no_memory(self, store, name, memory):
        store.put(eviction.memory_key(name), memory)
        policy = eviction.load(name, store)
        assert policy.name == name
        assert_fresh(policy)
        assert_sane(exercise(policy))

    @pytest.mark.parametrize('name', REMEMBERING)
    def test_a_value_that_is_no_json_is_no_memory(self, store, name):
        store.put('something else', 1)      # the database is made
        with sqlite3.connect(store.path) as db:
            db.execute('INSERT OR REPLACE INTO service VALUES (?, ?)',
                       (eviction.memory_key(name), '{"theta": 0.3, '))
        assert_fresh(eviction.load(name, store))

    @pytest.mark.parametrize('name', REMEMBERING)
    def test_memory_saved_is_loaded(self, store, name):
        policy = exercise(eviction.make(name))
        eviction.save(policy, store)
        memory = json.loads(json.dumps(policy.dump()))
        assert store.get(eviction.memory_key(name)) == memory
        assert eviction.load(name, store).dump() == memory

    @pytest.mark.parametrize('name', REMEMBERING)
    def test_an_unreadable_state_is_a_fresh_start(self, store, name,
                                                  tmp_path, caplog):
        caplog.set_level(logging.WARNING, logger='cache_maint.eviction')
        (tmp_path / 'state').mkdir()
        (tmp_path / 'state' / state.FILENAME).write_bytes(
            b'not a database' * 100)
        policy = eviction.load(name, store)
        assert_fresh(policy)
        warned, = eviction_warnings(caplog)
        assert name in warned and 'afresh' in warned
        # Saving there fails too: logged, and the prune goes on.
        eviction.save(exercise(policy), store)
        assert len(eviction_warnings(caplog)) == 2
        assert 'lost' in eviction_warnings(caplog)[1]

    @pytest.mark.parametrize('name', REMEMBERING)
    def test_a_file_where_the_state_directory_should_be(self, store, name,
                                                        tmp_path, caplog):
        caplog.set_level(logging.WARNING, logger='cache_maint.eviction')
        (tmp_path / 'state').write_text('not a directory')
        # Nothing can have been kept there (the state reads no database
        # as an empty one): a fresh policy.
        policy = eviction.load(name, store)
        assert_fresh(policy)
        # What it learns cannot be kept: a warning, and the prune goes on.
        eviction.save(exercise(policy), store)
        warned, = eviction_warnings(caplog)
        assert name in warned and 'lost' in warned
        assert (tmp_path / 'state').read_text() == 'not a directory'

    def test_memory_key(self):
        assert eviction.memory_key('lfuda') == 'eviction:lfuda'
        assert set(eviction.NAMES) == set(eviction.POLICIES) == {
            'lru', 'lfuda', 'adaptive'}
