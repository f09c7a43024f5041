"""What every eviction policy provides to prune (and to the simulator)."""


class Policy:
    """Ranks the recorded images of a cache, least worth keeping first.

    Prune calls, in order: ``observe`` with the records the cache holds
    now, ``rank``, and, once it removed them, ``evicted`` with its victims;
    then it saves ``dump()`` for the next prune. A dry run calls ``observe``
    and ``rank`` only, so its order is the one a real run would use.
    """

    #: The ``[prune] eviction_policy`` value.
    name = None

    #: Whether ``rank`` reads the records (hits, times): without them, the
    #: driver's LRU order is all prune reads.
    needs_records = True

    #: Whether it keeps a memory between prunes (``dump``).
    remembers = True

    def __init__(self, memory=None):
        """``memory``: what ``dump()`` returned after the last prune."""

    def observe(self, records, now):
        """Learn from ``records`` ({image_id: ImageRecord}) the cache holds."""

    def rank(self, recorded, records, now):
        """``recorded`` (CachedFiles, LRU first) in this policy's order.

        Ties keep the LRU order they came in: the sort is stable.
        """
        return recorded

    def evicted(self, victims, records, now):
        """Remember ``victims`` (CachedFiles, in eviction order)."""

    def dump(self):
        """A JSON-able value for the next prune's ``memory``, or None."""
        return None


def number(value):
    """``value`` as a finite float from 0 up, or None if it is not one.

    A memory comes back from the state as JSON: anything may be there, an
    integer too large for a float, a boolean or a string included, and
    none of it may fail a prune.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if 0 <= value < float('inf') else None
