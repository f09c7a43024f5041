"""``adaptive``: recency, weighed against frequency as far as it pays.

Each image's key is its last access, moved later by ``theta`` times the
cache's median idle age for every doubling of its requests: those since it
was cached (Glance's ``hits`` plus one) and those it had before, if
cache-maint evicted it and glance-api fetched it again. The lowest key goes
first. With ``theta`` near 0 this is LRU; the larger it is, the longer an
image read often outlives one read once, as under LFU.

``theta`` is learnt from what the policy's own choices cost, against the
choices LRU would have made on the same prune (the idea of ARC's ghost
lists, where a request for a page evicted recently says which side to
grow). LRU keeps an image until it is idle for as long as the most recently
read image it evicts now (its horizon). So:

* a victim LRU would have kept, which glance-api fetched again within LRU's
  horizon, is a loss of its size;
* an image LRU would have evicted, kept instead, which is read again within
  that horizon, is a gain of its size.

Both are seen at the next prunes from Glance's metadata alone: an image
cached again after its eviction, an image read since the prune that kept
it. Where the losses outweigh the gains, ``theta`` falls, fast, towards
LRU; where the gains do, it rises. Under stable popularity, frequency pays
and ``theta`` climbs; under churn (new image versions replacing old ones),
it does not, and the policy stays next to LRU.

The memory (``theta``, the victims and the images kept, the requests of
images fetched again) is bounded in entries and in time, and whatever it
holds that is not what this module wrote is ignored.
"""

import math

from cache_maint.eviction import base

#: The bounds of theta, and where it starts.
THETA_MIN = 0.01
THETA_MAX = 4.0
THETA_START = 0.5

#: How fast theta moves: by a factor of e**(RATE * net gain / bytes
#: cached), or e**(FALL_RATE * net loss / bytes cached): what loses bytes
#: is left faster than what gains them is taken up.
RATE = 4.0
FALL_RATE = 8.0

#: Evictions and keeps remembered, at most, and for how long (seconds).
MEMORY_SIZE = 10000
MEMORY_TIME = 7 * 86400


class Adaptive(base.Policy):
    """LRU, with frequency weighed in as far as it proves worth it."""

    name = 'adaptive'

    def __init__(self, memory=None):
        memory = memory if isinstance(memory, dict) else {}
        self.theta = _bounded(memory.get('theta'), THETA_START)
        #: {image_id: [evicted_at, size, requests, until when LRU kept it]}
        self._ghosts = _by_time(_table(memory.get('ghosts'), 4))
        #: {image_id: [kept_at, size, end of LRU's horizon]}: images LRU
        #: would have evicted.
        self._kept = _by_time(_table(memory.get('kept'), 3))
        #: {image_id: [requests before it was last cached]}: no more than
        #: the images cached.
        self._prior = _table(memory.get('prior'), 1)
        self._lru = []

    def observe(self, records, now):
        gain = loss = 0
        ghosts, prior = self._ghosts, self._prior
        for image_id in prior.keys() - records.keys():
            del prior[image_id]
        # Set operations: one pass in C over the records, not in Python.
        for image_id in ghosts.keys() & records.keys():
            record = records[image_id]
            evicted_at, size, requests, lru_kept_until = ghosts[image_id]
            if record.last_modified < evicted_at:
                continue        # an old record of an image evicted since
            del ghosts[image_id]
            prior[image_id] = [requests]
            if record.last_modified <= lru_kept_until:
                loss += size
        for image_id, (kept_at, size, until) in list(self._kept.items()):
            record = records.get(image_id)
            if record is None:
                del self._kept[image_id]
            elif record.last_accessed > kept_at:
                if record.last_accessed <= until:
                    gain += size
                del self._kept[image_id]
            elif now > until:
                del self._kept[image_id]
        self._forget_older_than(now - MEMORY_TIME)
        if gain or loss:
            # Weighed against the bytes cached: a prune that saw little
            # moves theta little, however often prunes run.
            cached = sum(record.size for record in records.values())
            balance = (gain - loss) / max(cached, gain + loss)
            rate = RATE if balance > 0 else FALL_RATE
            self.theta = min(THETA_MAX, max(THETA_MIN, self.theta * math.exp(
                rate * balance)))

    def requests(self, record):
        """The requests known of a cached image, its earlier stays too."""
        prior = self._prior.get(record.image_id)
        return record.hits + 1 + (prior[0] if prior else 0)

    def rank(self, recorded, records, now):
        self._lru = recorded
        if not recorded:
            return recorded
        # The median idle age, counted from the latest access rather than
        # from now, so that the order depends on the cache alone (a dry
        # run's, and the real run's after it): ``recorded`` comes least
        # recently used first.
        middle = records[recorded[(len(recorded) - 1) // 2].image_id]
        latest = records[recorded[-1].image_id]
        # At least a second: images all read in the same one are still
        # told apart by how often they were.
        scale = self.theta * max(1.0, latest.last_accessed
                                 - middle.last_accessed)
        prior = self._prior
        log2 = math.log2

        def key(cached):
            image_id = cached.image_id
            record = records[image_id]
            requests = record.hits + 1
            if image_id in prior:
                requests += prior[image_id][0]
            return record.last_accessed + scale * log2(requests)
        return sorted(recorded, key=key)

    def evicted(self, victims, records, now):
        victims = [cached for cached in victims if cached.image_id in records]
        freed = sum(cached.size for cached in victims)
        lru_victims = set()
        # LRU's victims for as many bytes, and its horizon.
        lru_age = 0
        for cached in self._lru:
            if freed <= 0:
                break
            lru_victims.add(cached.image_id)
            lru_age = now - records[cached.image_id].last_accessed
            freed -= cached.size
        gone = set()
        for cached in victims:
            gone.add(cached.image_id)
            record = records[cached.image_id]
            # Put last: the tables are trimmed from their oldest entries.
            self._ghosts.pop(cached.image_id, None)
            self._ghosts[cached.image_id] = [
                now, cached.size, self.requests(record),
                0 if cached.image_id in lru_victims
                else record.last_accessed + lru_age]
            self._prior.pop(cached.image_id, None)
        for image_id in lru_victims - gone:
            self._kept.pop(image_id, None)
            self._kept[image_id] = [now, records[image_id].size,
                                    now + lru_age]
        self._lru = []
        _trim(self._ghosts)
        _trim(self._kept)

    def _forget_older_than(self, moment):
        for table in (self._ghosts, self._kept):
            for image_id in [key for key, entry in table.items()
                             if entry[0] < moment]:
                del table[image_id]

    def dump(self):
        return {'theta': self.theta, 'ghosts': self._ghosts,
                'kept': self._kept, 'prior': self._prior}


def _bounded(value, default):
    value = base.number(value)
    if value is None or not THETA_MIN <= value <= THETA_MAX:
        return default
    return value


def _table(value, width):
    """{image_id: [numbers]} from a memory that may hold anything."""
    table = {}
    if not isinstance(value, dict):
        return table
    for key, entry in value.items():
        if not isinstance(key, str) or not isinstance(entry, list) \
                or len(entry) != width:
            continue
        numbers = [base.number(n) for n in entry]
        if None not in numbers:
            table[key] = numbers
    return table


def _by_time(table):
    """``table`` oldest first, by its entries' times, and trimmed.

    The state keeps JSON with sorted keys: the order the policy wrote is
    not the order it reads back.
    """
    table = dict(sorted(table.items(), key=lambda item: item[1][0]))
    _trim(table)
    return table


def _trim(table):
    """The oldest entries out, down to MEMORY_SIZE (dicts keep order)."""
    for image_id in list(table)[:max(0, len(table) - MEMORY_SIZE)]:
        del table[image_id]
