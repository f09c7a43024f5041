"""``lfuda``: least frequently used with dynamic ageing (Squid's LFU-DA).

Each image's key is its number of requests since it was cached (Glance's
``hits`` plus the request that cached it) plus the cache's age L as it was
when the image was last read; the lowest key goes first, and each prune
raises L to the highest key it evicted. An image read often keeps its
place whatever its size, which favours bytes served from the cache over
images served; one popular long ago ages out as L catches up with it.

Glance keeps no L, so the policy keeps the values L took, with when, in its
memory: an image's key uses the L of its last access. Only the last
``HISTORY`` changes are kept; an access older than all of them is taken at
the L that the oldest change replaced.
"""

import bisect

from cache_maint.eviction import base

#: Changes of L remembered: one per prune that evicted something.
HISTORY = 512


class LFUDA(base.Policy):
    """Least frequently used first, with dynamic ageing."""

    name = 'lfuda'

    def __init__(self, memory=None):
        memory = memory if isinstance(memory, dict) else {}
        history = memory.get('history')
        self._times, self._ages = [], []
        #: L before the oldest change kept.
        self._base = base.number(memory.get('base')) or 0.0
        for entry in history if isinstance(history, list) else ():
            if not isinstance(entry, list) or len(entry) != 2:
                continue
            when, age = base.number(entry[0]), base.number(entry[1])
            if when is None or age is None:
                continue
            if not self._times or when >= self._times[-1]:
                self._times.append(when)
                self._ages.append(age)
        self._trim()

    @property
    def age(self):
        """L, now."""
        return self._ages[-1] if self._ages else self._base

    def age_at(self, when):
        """L as it was at epoch ``when``."""
        index = bisect.bisect_right(self._times, when)
        if index:
            return self._ages[index - 1]
        return self._base

    def key(self, record):
        return self.age_at(record.last_accessed) + record.hits + 1

    def rank(self, recorded, records, now):
        key = self.key
        return sorted(recorded, key=lambda cached: key(
            records[cached.image_id]))

    def evicted(self, victims, records, now):
        keys = [self.key(records[cached.image_id]) for cached in victims
                if cached.image_id in records]
        if not keys or max(keys) <= self.age:
            return
        # A clock put back: changes dated after now are taken as made now,
        # or every access from now on would get an L from before them.
        for index, when in enumerate(self._times):
            if when > now:
                self._times[index] = now
        self._times.append(now)
        self._ages.append(max(keys))
        self._trim()

    def _trim(self):
        if len(self._times) > HISTORY:
            self._base = self._ages[-HISTORY - 1]
            del self._times[:-HISTORY]
            del self._ages[:-HISTORY]

    def dump(self):
        return {'base': self._base,
                'history': [[when, age] for when, age
                            in zip(self._times, self._ages)]}
