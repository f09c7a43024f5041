"""Which of this node's records clean looks at for a missing file.

A record whose file is gone is stale, and clean deletes it. To find every
one, clean reads all of this node's records and scans the directory: a
*full reconciliation*. A local store (sqlite) is read whole every time, as
cheaply. A store shared by many nodes (centralized_db) is not: on
PostgreSQL, reading one node's records is a scan of every node's rows. There
clean reconciles fully the first time, and then once
``[maintenance] reconcile_interval`` seconds have passed; in between it
looks up, by image id, only the images this node was seen to cache and no
longer has: the *known* images (the files the last clean or prune saw, in
cache-maint's state) and those prune evicted since. A record that
glance-api made, and left without its file, between two of these looks
waits for the next full reconciliation.

What is remembered holds for one scope (the database and this node's
URL): another scope, or a state that cannot be read, makes the next clean a
full reconciliation. Deleting is as safe either way: only records made
before the look, of images whose file is still gone, go
(``maintenance._forget_missing``).
"""

import dataclasses
import numbers
import time

from oslo_log import log as logging

from cache_maint import exception

LOG = logging.getLogger(__name__)

#: The state's name for what the known images were seen under.
MEMO = 'reconciliation'

#: Seconds before the last look from which prune's evictions are looked
#: up too: a prune's are recorded once its lock is free, and a clean may run
#: meanwhile.
EVICTION_MARGIN = 3600

#: Seconds a memo's time may lie ahead of the clock and still be believed.
CLOCK_MARGIN = 60


@dataclasses.dataclass(frozen=True)
class Look:
    """What clean found of this node's records, and how it looked."""

    #: Ids of this node's records whose file the look did not see.
    stale: list
    #: The scan of the cache directory: {image_id: CachedFile}.
    files: dict
    #: Records read (a full reconciliation) or ids looked up.
    checked: int
    full: bool
    #: Epoch seconds, before anything was read.
    started: float
    #: Ids looked up by id (not a full reconciliation).
    candidates: frozenset = frozenset()
    #: The memo the look went by; None for a full reconciliation.
    memo: dict = None
    #: The known images the look went by.
    known: frozenset = frozenset()


def look(cache, interval):
    """The records clean checks now, and the stale ones among them.

    A full reconciliation unless the store is shared, the state remembers
    what this node's last looks saw, and the last full reconciliation is
    less than ``interval`` seconds old. Reads only.
    """
    started = time.time()
    remembered = (_remembered(cache, evicted=True)
                  if cache.metadata.shared else None)
    if remembered is None or _due(remembered[0], interval, started):
        return _full(cache, started)
    return _by_id(cache, *remembered, started=started)


def _full(cache, started):
    """Every record of this node, then the scan.

    Records first: glance-api creates a file before its record and removes
    it before its record, so a record whose file the later scan missed is
    stale.
    """
    recorded = cache.metadata.recorded_ids()
    files = cache.files.scan_images()
    return Look(stale=[image_id for image_id in recorded
                       if image_id not in files],
                files=files, checked=len(recorded), full=True,
                started=started)


def _by_id(cache, memo, known, evicted, started):
    """The records of the images seen before and gone from the scan.

    The scan comes first here, as it must to know what is gone; clean
    looks for each stale record's file again after this read.
    """
    files = cache.files.scan_images()
    candidates = frozenset(image_id for image_id in known | evicted
                           if image_id not in files)
    recorded = {record.image_id
                for record in cache.metadata.records_of(candidates)}
    return Look(stale=sorted(recorded), files=files,
                checked=len(candidates), full=False, started=started,
                candidates=candidates, memo=memo, known=frozenset(known))


def remember(cache, look, still_recorded):
    """Keep what clean saw, for its next look.

    ``still_recorded``: the stale ids whose record clean kept (made
    meanwhile) or put back (cached again). A state that cannot be written
    costs only thoroughness: the next looks go by what was kept before.
    """
    if not cache.metadata.shared:
        return
    still_recorded = set(still_recorded)
    if look.full:
        # What a prune added since the look is replaced too: a file it saw
        # that this scan missed is seen again by the next prune.
        changes = dict(added=set(look.files) | still_recorded, replace=True)
        reconciled_at = look.started
    else:
        # Gone from disk, and now without a record: nothing to look for.
        changes = dict(added=set(look.files) - look.known,
                       dropped=look.candidates - still_recorded)
        reconciled_at = look.memo['reconciled_at']
    memo = {'scope': cache.metadata.scope(), 'reconciled_at': reconciled_at,
            'looked_at': look.started}
    try:
        cache.state.update_known_images(MEMO, memo=memo, **changes)
    except exception.StateError as e:
        LOG.warning('What this clean saw of the cache is not remembered: '
                    '%s', e)


def saw(cache, files):
    """Remember the images of a prune's scan, for clean's next look.

    Only while a memo of the same scope is there: without one, the next
    clean reconciles fully anyway.
    """
    if not cache.metadata.shared:
        return
    remembered = _remembered(cache)
    if remembered is None:
        return
    added = set(files) - remembered[1]
    if not added:
        return
    try:
        cache.state.update_known_images(MEMO, added=added)
    except exception.StateError as e:
        LOG.warning('The images this prune saw are not remembered for the '
                    'next clean: %s', e)


def _remembered(cache, evicted=False):
    """(memo, known ids) of this scope, or None if there is none.

    With ``evicted``, (memo, known ids, ids evicted since the last look).
    """
    try:
        memo = cache.state.get(MEMO)
        if not _sound(memo) or memo['scope'] != cache.metadata.scope():
            return None
        known = cache.state.known_images()
        if not evicted:
            return memo, known
        # The known images hold them too, unless a prune first saw and
        # then evicted an image without remembering that it saw it.
        return memo, known, frozenset(cache.state.evicted_since(
            memo['looked_at'] - EVICTION_MARGIN))
    except exception.StateError as e:
        LOG.warning('Clean reconciles all records with the cache: what it '
                    'saw before cannot be read: %s', e)
        return None


def _sound(memo):
    """True for a memo as ``remember`` writes it."""
    return (isinstance(memo, dict) and isinstance(memo.get('scope'), str)
            and all(isinstance(memo.get(key), numbers.Real)
                    and not isinstance(memo.get(key), bool)
                    for key in ('reconciled_at', 'looked_at')))


def _due(memo, interval, now):
    """True if a full reconciliation is due.

    A memo from ahead of ``now`` (the clock was put back) tells nothing of
    when it was written.
    """
    last = memo['reconciled_at']
    ahead = max(last, memo['looked_at']) > now + CLOCK_MARGIN
    return not interval or ahead or now - last >= interval
