"""``lru``: Glance's own order, least recently read first.

The drivers return the records in this order already (Glance's query, ties
broken as Glance breaks them), so this policy reads nothing more and
changes nothing.
"""

from cache_maint.eviction import base


class LRU(base.Policy):
    """Least recently used first: exactly Glance's victims."""

    name = 'lru'
    needs_records = False
    remembers = False
