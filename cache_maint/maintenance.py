"""The two maintenance tasks, ``clean`` and ``prune``, as plain functions.

Both work on one ``cache.Cache`` and return a result record. They are what the
periodic timer, the API and ``cache-maint-manage`` all run; the caller
holds the task's locks (see ``cache_maint.locks``).

Ordering matters because glance-api writes while we run. It renames a
finished download into place *before* it records it, and deletes a file
*before* its record. So clean reads the records first and scans the
directory second: a record whose file is missing from the later scan is
stale. Prune scans first, which tells it alone whether there is anything
to do; the records it reads next can only be newer than the scan. A record
whose file the scan did not see frees nothing and is skipped, and a file
the scan saw without a record is either a leftover or a download being
committed, which only a short grace period tells apart. Prune deletes a
victim's record before its file, so that glance-api can always record the
image again once the file is gone (see ``cache_maint.evictor``).
"""

import dataclasses
import time

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint import eviction
from cache_maint import evictor
from cache_maint import exception
from cache_maint import inuse
from cache_maint import pacing
from cache_maint import reconcile
from cache_maint import targets as evict_targets

LOG = logging.getLogger(__name__)

#: Seconds during which a file just written is taken to be in flight: an
#: untracked image that glance-api is about to record, or a download still
#: being written. Glance retries its sqlite writes for 2 s; this is ample.
IN_FLIGHT_GRACE = 10

#: Images a dry run plans at a time (its batches remove nothing).
PREVIEW_BATCH = 10000

#: ``[maintenance] reconcile_interval``'s default: seconds between two
#: full reconciliations of a shared store's records (``reconcile``).
RECONCILE_INTERVAL = 86400


#: Why clean removes a file.
INVALID_REASON = 'invalid'
STALLED_REASON = 'stalled'

#: Why prune keeps an image a target would have evicted.
PINNED = 'pinned'
IN_USE = 'in_use'
YOUNG = 'min_age'
SKIP_REASONS = (PINNED, IN_USE, YOUNG)


@dataclasses.dataclass(frozen=True)
class CleanResult:
    files: int = 0
    bytes: int = 0
    records_forgotten: int = 0
    failures: int = 0
    #: [(path relative to the cache directory, bytes, reason)] removed,
    #: or, in a dry run, to be removed.
    removed: tuple = ()
    dry_run: bool = False
    #: Records read, or ids looked up, for stale records (``reconcile``).
    records_checked: int = 0
    #: Whether they were all of this node's records; None if clean
    #: stopped before it looked at them.
    full_reconciliation: bool = None

    @property
    def by_reason(self):
        return _by_reason((size, reason) for _, size, reason in self.removed)

    def removed_ids(self):
        return [path for path, _size, _reason in self.removed]

    def records_report(self):
        """How clean looked at the records, for its run's record."""
        if self.full_reconciliation is None:
            return None
        return {'checked': self.records_checked,
                'forgotten': self.records_forgotten,
                'full_reconciliation': self.full_reconciliation}

    def to_dict(self):
        answer = {'total_files_cleaned': self.files,
                  'total_bytes_cleaned': self.bytes}
        if self.dry_run:
            answer.update(dry_run=True, files=[
                {'path': path, 'size': size, 'reason': reason}
                for path, size, reason in self.removed])
        return answer


@dataclasses.dataclass(frozen=True)
class PruneResult:
    files: int = 0
    bytes: int = 0
    size_before: int = 0
    size_after: int = 0
    failures: int = 0
    stopped: bool = False
    #: {reason: {'files': n, 'bytes': b}} of what was removed (targets).
    by_reason: dict = dataclasses.field(default_factory=dict)
    #: Images a target would have evicted but ``min_age`` kept.
    skipped_young: int = 0
    #: Seconds a paced prune waited (``max_delete_rate``).
    paced_seconds: float = 0.0
    #: Images a target would have evicted but a pin or a reader kept.
    skipped_pinned: int = 0
    skipped_in_use: int = 0
    #: [(image_id, bytes, reason)] evicted in order, or, in a dry run, the
    #: eviction order with the images kept (their reason one of
    #: SKIP_REASONS) where they stand in it.
    removed: tuple = ()
    dry_run: bool = False
    #: In a dry run: {image_id: ImageRecord} of the candidates.
    records: dict = dataclasses.field(default_factory=dict)

    def removed_ids(self):
        return [image_id for image_id, _size, reason in self.removed
                if reason not in SKIP_REASONS]

    def to_dict(self):
        answer = {'total_files_pruned': self.files,
                  'total_bytes_pruned': self.bytes}
        if self.dry_run:
            answer.update(dry_run=True, images=[
                _planned(image_id, size, reason, self.records.get(image_id))
                for image_id, size, reason in self.removed])
        return answer


def _planned(image_id, size, reason, record):
    """A dry run's entry for one image; an untracked one has no record."""
    return {'image_id': image_id, 'size': size, 'reason': reason,
            'last_accessed': record.last_accessed if record else None,
            'hits': record.hits if record else None}


def _by_reason(removed):
    """{reason: {'files': n, 'bytes': b}} of [(bytes, reason)]."""
    counted = {}
    for size, reason in removed:
        entry = counted.setdefault(reason, {'files': 0, 'bytes': 0})
        entry['files'] += 1
        entry['bytes'] += size
    return counted


def clean(cache, stall_time, now=None, stop_event=None, dry_run=False,
          reconcile_interval=RECONCILE_INTERVAL):
    """Remove failed and stalled downloads, and records of missing files.

    Every file in ``invalid/`` goes; a file in ``incomplete/`` goes once
    its mtime is more than ``stall_time`` seconds old (and never within
    the in-flight grace, so a stall time of 0 cannot kill a download).
    The records whose file is gone are found among all of this node's
    records, or, with a shared store, among the images seen before
    between two full reconciliations, ``reconcile_interval`` seconds
    apart (``cache_maint.reconcile``). A stop request is honoured between
    these steps. A ``dry_run`` removes nothing and lists what would go.
    """
    now = time.time() if now is None else now
    older_than = now - max(stall_time, IN_FLIGHT_GRACE)
    files = cache.files
    files.check()
    steps = (
        (cachedir.INVALID, INVALID_REASON, lambda st: True),
        (cachedir.INCOMPLETE, STALLED_REASON, lambda st: (
            st.st_mtime < older_than or _from_the_future(st.st_mtime, now))),
    )
    if dry_run:
        return _preview_clean(cache, steps, reconcile_interval)
    removed = []
    failures = 0
    for subdir, reason, select in steps:
        if stop_event is not None and stop_event.is_set():
            break
        step = files.remove_from(subdir, select)
        removed += [('%s/%s' % (subdir, cachedir.printable(name)), size,
                     reason)
                    for name, size in zip(step.removed, step.removed_sizes)]
        failures += len(step.failed)
        if step.fatal:
            raise exception.CacheDirError(step.fatal)
    forgotten, look = 0, None
    if stop_event is None or not stop_event.is_set():
        forgotten, look = _forget_missing(cache, reconcile_interval)
    result = CleanResult(
        files=len(removed), bytes=sum(size for _, size, _ in removed),
        records_forgotten=forgotten, failures=failures,
        removed=tuple(removed),
        records_checked=look.checked if look else 0,
        full_reconciliation=look.full if look else None)
    LOG.info('Clean removed %d files (%d bytes) of failed and stalled '
             'downloads and %d records of missing images; %d files could '
             'not be removed', result.files, result.bytes, forgotten,
             result.failures)
    if look is not None:
        LOG.info('Clean checked %d %s', look.checked,
                 'records: a full reconciliation' if look.full else
                 'images seen before, by id')
    return result


def _preview_clean(cache, steps, reconcile_interval):
    """What clean would remove now, removing nothing.

    Its records are looked at as the real run's would be: the same look,
    the same second look for each stale record's file.
    """
    planned = tuple(
        ('%s/%s' % (subdir, cachedir.printable(name)), size, reason)
        for subdir, reason, select in steps
        for name, size in cache.files.list_from(subdir, select))
    look = reconcile.look(cache, reconcile_interval)
    stale = [image_id for image_id in look.stale
             if not cache.files.has_image(image_id)]
    return CleanResult(files=len(planned),
                       bytes=sum(size for _, size, _ in planned),
                       records_forgotten=len(stale), removed=planned,
                       dry_run=True, records_checked=look.checked,
                       full_reconciliation=look.full)


def _from_the_future(mtime, now):
    """True for a time too far ahead of ``now`` to be a write in progress.

    A file last written while the clock was ahead keeps that time once the
    clock is put right; it tells nothing of its age, but a writer still at
    work would have brought it back to the present with its next write.
    Without this, such files were never stalled nor evictable.
    """
    return mtime > now + IN_FLIGHT_GRACE


def _forget_missing(cache, reconcile_interval):
    """Delete the records whose file is gone: (how many went, the Look).

    Each file is looked for once more just before: glance-api may have
    cached the image again since the scan (file first, then record), and
    only records made before the look began are deleted: a new one is not
    stale. glance-api may also cache it again between that look and the
    delete, while the stale record still makes its INSERT fail: a record
    whose file is there once the delete is done is put back, as glance-api
    alone would have left it.
    """
    look = reconcile.look(cache, reconcile_interval)
    stale = [image_id for image_id in look.stale
             if not cache.files.has_image(image_id)]
    records = (cache.metadata.forget(stale, recorded_before=look.started)
               if stale else [])
    cached_again = [r for r in records
                    if cache.files.has_image(r.image_id)]
    if cached_again:
        cache.metadata.restore(cached_again)
    gone = {r.image_id for r in records} - {r.image_id for r in cached_again}
    reconcile.remember(cache, look, set(look.stale) - gone)
    return len(records) - len(cached_again), look


def eviction_order(lru_ids, files, now):
    """(untracked, recorded): every image prune may evict, in its order.

    Files without a record come first, oldest first, once out of the
    in-flight grace (a download being committed is recorded just after its
    file appears); then recorded images, least recently used first.
    Records whose file is gone free nothing and are left out.
    """
    tracked = set()
    recorded = []
    for image_id in lru_ids:
        cached = files.get(image_id)
        if cached is not None and image_id not in tracked:
            tracked.add(image_id)
            recorded.append(cached)
    untracked = sorted(
        (f for image_id, f in files.items() if image_id not in tracked and (
            f.mtime < now - IN_FLIGHT_GRACE or _from_the_future(f.mtime,
                                                                now))),
        key=lambda f: (f.mtime, f.image_id))
    return untracked, recorded


def plan(policy, lru_ids, files, records, targets, now, last_read=None,
         protected=None):
    """The Planner of a prune: the eviction order and the targets.

    ``policy`` (``cache_maint.eviction``) learns from ``records`` (its
    ImageRecords by id; empty for a policy that needs none) and ranks the
    recorded images; untracked files still go first. What prune and
    ``cache-maint-manage simulate`` both call, so that a trace replays the
    very choices a prune makes.
    """
    policy.observe(records, now)
    untracked, recorded = eviction_order(lru_ids, files, now)
    return Planner(untracked, policy.rank(recorded, records, now), targets,
                   now, last_read or {}, protected)


def prune(cache, max_size, now=None, stop_event=None, targets=None,
          idle_since=None, max_delete_rate=0, dry_run=False,
          open_images=inuse.open_images, policy=eviction.LRU):
    """Evict images until the cache meets its targets, in the policy's order.

    With only ``max_size`` (``targets`` None), the targets are Glance's:
    the least recently used images go until the cache is no larger than
    ``max_size``. ``targets`` (a ``targets.Targets``) adds watermarks, a
    free-space floor, an image cap, an idle time and a minimum age; an
    image's idle time is never counted from before ``idle_since`` (epoch
    seconds: when the service started). Pinned images
    (``cache.state``) and images another process holds open
    (``open_images(cache_dir)``, one scan per run, made only when there
    is something to evict) are never evicted. ``policy`` names the
    eviction policy (``cache_maint.eviction``) that orders the recorded
    images; its memory lives in the cache's state.

    One directory scan, one ordered read of the records (with a shared
    store, those of the images scanned, by id), then batches, each one
    bounded delete of their records and then their unlinks (see
    ``cache_maint.evictor``). A file that cannot be removed keeps its
    record and is skipped for the next candidate, so prune meets its
    targets whenever enough deletable files exist. With a
    ``max_delete_rate`` (bytes a second), a batch is one step of
    ``cache_maint.pacing`` and large files are released in steps. A stop
    request is honoured between batches, and between steps.

    A ``dry_run`` makes the same choices and removes nothing: its result
    lists the eviction order, kept images included; a real run started
    next, on an unchanged cache, evicts exactly its victims.
    """
    now = time.time() if now is None else now
    targets = targets or evict_targets.Targets(max_size)
    cache.files.check()
    files = cache.files.scan_images()
    if not dry_run:
        # What clean looks up in a shared store, before anything goes.
        reconcile.saw(cache, files)
    size = sum(f.size for f in files.values())
    needs = targets.needs(size, len(files),
                          *(cache.files.filesystem()
                            if targets.watches_free_space else ()))
    if not needs.any() and not targets.max_idle_time:
        LOG.log(logging.DEBUG if dry_run else logging.INFO,
                'Prune evicted nothing: the image cache holds %d bytes in '
                '%d images, within its limit of %d bytes', size, len(files),
                max_size)
        return PruneResult(size_before=size, size_after=size,
                           dry_run=dry_run)
    size_before = size

    # Records go before files: know first that the files can go.
    cache.files.check(writable=not dry_run)
    # The pins, before anything is planned: if they cannot be read, the
    # run fails rather than evict a pinned image. The first read may create
    # the state database, on the cache's filesystem: the free-space floor
    # is measured again once it is there.
    pinned = cache.state.pinned_ids()
    if targets.watches_free_space:
        needs = targets.needs(size, len(files), *cache.files.filesystem())
    ranking = eviction.load(policy, cache.state)
    if ranking.needs_records:
        records = {record.image_id: record
                   for record in cache.metadata.lru_records(files)}
        lru_ids = list(records)
    else:
        records, lru_ids = {}, cache.metadata.lru_order(files)
    if not lru_ids and needs.any():
        _refuse_if_lost(cache.metadata, files)
    last_read = (_last_read(cache, files, idle_since)
                 if targets.max_idle_time else {})
    protected = dict.fromkeys(open_images(cache.path), IN_USE)
    protected.update(dict.fromkeys(pinned, PINNED))
    planner = plan(ranking, lru_ids, files, records, targets, now, last_read,
                   protected)
    LOG.debug('Image cache holds %d bytes in %d images (limit %d); to shed: '
              '%s', size, len(files), max_size, needs)
    if dry_run:
        return _preview_prune(cache, planner, needs, size)
    done = _Progress(size)
    pacer = pacing.Pacer(max_delete_rate, stop_event) \
        if max_delete_rate else None
    step = pacer.step if pacer else None
    pins = _PinWatch(cache.state, pinned)
    try:
        with evictor.Evictor(cache, pacer) as evict:
            batch = planner.next(needs, evict.batch_size, step)
            while batch:
                if stop_event is not None and stop_event.is_set():
                    done.stopped = True
                    break
                # A pin made while this prune runs holds from its next
                # batch on.
                batch = planner.drop(batch, pins.added())
                if not batch:
                    batch = planner.next(needs, evict.batch_size, step)
                    continue
                # The batch after this one, if this one is removed whole.
                ahead = planner.next(needs.minus(batch), evict.batch_size,
                                     step) if evict.overlaps else []
                try:
                    removal = evict.remove(batch, ahead)
                except exception.MetadataError as e:
                    raise exception.MetadataError(
                        'removed %d images, then could not delete the '
                        'records of the next ones, whose files are all '
                        'still there: %s' % (len(done.removed), e)) from e
                if removal.fatal:
                    raise exception.CacheDirError(removal.fatal)
                done.add(removal, files, planner.reasons)
                needs = needs.minus([files[image_id] for image_id
                                     in removal.removed + removal.vanished])
                batch = ahead or planner.next(needs, evict.batch_size, step)
            done.stopped = done.stopped or bool(
                pacer and pacer.stopping and needs.any())
    except exception.CacheMaintError as e:
        # What it removed before it failed is recorded and logged too.
        e.partial = done.result(size_before, planner, pacer)
        raise
    finally:
        ranking.evicted([files[image_id] for image_id, _size, _reason
                         in done.removed], records, now)
        eviction.save(ranking, cache.state)
    result = done.result(size_before, planner, pacer)
    _log_prune(result, max_size, needs)
    return result


class _Progress:
    """What a prune removed so far."""

    def __init__(self, size):
        self.size = size
        self.removed = []       # [(image_id, bytes, reason)]
        self.freed = self.failures = 0
        self.stopped = False

    def add(self, removal, files, reasons):
        self.removed += [(image_id, files[image_id].size, reasons[image_id])
                         for image_id in removal.removed]
        self.freed += removal.bytes_freed
        self.failures += len(removal.failed)
        self.size -= sum(files[image_id].size for image_id
                         in removal.removed + removal.vanished)

    def result(self, size_before, planner, pacer):
        return PruneResult(
            files=len(self.removed), bytes=self.freed,
            size_before=size_before, size_after=self.size,
            failures=self.failures, stopped=self.stopped,
            by_reason=_by_reason((size, reason)
                                 for _, size, reason in self.removed),
            skipped_young=planner.skipped[YOUNG],
            skipped_pinned=planner.skipped[PINNED],
            skipped_in_use=planner.skipped[IN_USE],
            paced_seconds=pacer.waited if pacer else 0.0,
            removed=tuple(self.removed))


class _PinWatch:
    """The pins made since a prune read them: one stat a batch.

    The pins are read again only when the state database changed.
    """

    def __init__(self, state, pinned):
        self._state = state
        self._known = set(pinned)
        self._version = state.version()

    def added(self):
        version = self._state.version()
        if version == self._version:
            return ()
        self._version = version
        pinned = self._state.pinned_ids()
        added = pinned - self._known
        self._known |= added
        return added


def _preview_prune(cache, planner, needs, size):
    """A dry run's result: the whole plan, nothing removed."""
    planner.keep_order()
    batch = planner.next(needs, PREVIEW_BATCH)
    while batch:
        needs = needs.minus(batch)
        batch = planner.next(needs, PREVIEW_BATCH)
    order = planner.order
    victims = [(image_id, bytes_) for image_id, bytes_, reason in order
               if reason not in SKIP_REASONS]
    freed = sum(bytes_ for _, bytes_ in victims)
    records = {record.image_id: record for record in
               cache.metadata.records_of({image_id for image_id, _, _
                                          in order})}
    return PruneResult(
        files=len(victims), bytes=freed, size_before=size,
        size_after=size - freed,
        by_reason=_by_reason((bytes_, reason) for _, bytes_, reason in order
                             if reason not in SKIP_REASONS),
        skipped_young=planner.skipped[YOUNG],
        skipped_pinned=planner.skipped[PINNED],
        skipped_in_use=planner.skipped[IN_USE],
        removed=tuple(order), dry_run=True, records=records)


def _last_read(cache, files, since):
    """{image_id: when it was last read}, never before ``since``."""
    since = since or 0
    return {record.image_id: max(record.last_accessed, since)
            for record in cache.metadata.records_of(files)}


def _refuse_if_lost(metadata, files):
    """Raise NodeIdentityError if no file is tracked for a suspect reason.

    Untracked files are evicted first. When none of this node's files has
    a record but other nodes' records exist, the likeliest cause is that
    glance-api knows this node by another URL: evicting them all as
    untracked would throw away the images read most recently.
    """
    problem = metadata.identity_problem(files)
    if problem:
        raise exception.NodeIdentityError(
            'refusing to evict %d images as untracked: %s'
            % (len(files), problem))


class Planner:
    """Picks the victims from the eviction order, batch after batch.

    An image goes if a target still needs bytes or images shed (an image
    younger than ``min_age`` only for the free-space floor), or if it was
    not read for ``max_idle_time``, unless it is ``protected`` (pinned or
    in use). ``reasons`` says why each went; ``order`` lists every choice,
    the images kept included, and ``skipped`` counts those by why. The
    untracked files come first in the order; the recorded images follow.
    """

    def __init__(self, untracked, recorded, targets, now, last_read,
                 protected=None):
        self._candidates = untracked + recorded
        self._untracked = len(untracked)
        self._position = 0
        self._targets = targets
        self._now = now
        self._last_read = last_read
        self._protected = protected or {}
        self.reasons = {}
        #: [(image_id, bytes, reason)] of every choice, kept ones too,
        #: once keep_order() was called (a dry run).
        self.order = None
        self.skipped = dict.fromkeys(SKIP_REASONS, 0)

    def next(self, needs, size, max_bytes=None):
        """The next batch, while anything is due.

        At most ``size`` files, and no more once it holds ``max_bytes``
        (if given).
        """
        # Plain counters: this loop runs once per candidate.
        size_due, count_due, free_due = needs.size, needs.count, needs.free
        idle_time = self._targets.max_idle_time
        min_age = self._targets.min_age
        young_after = self._now - min_age
        candidates = self._candidates
        protected = self._protected
        order = self.order      # None unless a dry run keeps it
        batch = []
        batch_bytes = 0
        byte_cap = float('inf') if max_bytes is None else max_bytes
        while self._position < len(candidates) and len(batch) < size \
                and batch_bytes < byte_cap:
            if size_due <= 0 and count_due <= 0 and free_due <= 0 \
                    and not idle_time:
                break
            cached = candidates[self._position]
            self._position += 1
            young = bool(min_age) and young_after < cached.mtime and \
                not _from_the_future(cached.mtime, self._now)
            if size_due > 0 and not young:
                reason = evict_targets.SIZE
            elif count_due > 0 and not young:
                reason = evict_targets.COUNT
            elif free_due > 0:
                reason = evict_targets.FREE_SPACE
            elif idle_time and not young and self._idle(cached, idle_time):
                reason = evict_targets.IDLE
            else:
                if young and (size_due > 0 or count_due > 0):
                    self.skipped[YOUNG] += 1
                    if order is not None:
                        order.append((cached.image_id, cached.size, YOUNG))
                continue
            kept = protected.get(cached.image_id)
            if kept is not None:
                self.skipped[kept] += 1
                if order is not None:
                    order.append((cached.image_id, cached.size, kept))
                continue
            if self._position <= self._untracked:
                reason = evict_targets.UNTRACKED
            if order is not None:
                order.append((cached.image_id, cached.size, reason))
            batch.append(cached)
            batch_bytes += cached.size
            self.reasons[cached.image_id] = reason
            size_due -= cached.size
            count_due -= 1
            free_due -= cached.size
        return batch

    def keep_order(self):
        self.order = []

    def drop(self, batch, pinned):
        """``batch`` less the images in ``pinned``, kept from now on."""
        if not pinned:
            return batch
        self._protected.update(dict.fromkeys(pinned, PINNED))
        kept = []
        for cached in batch:
            if cached.image_id in pinned:
                self.skipped[PINNED] += 1
                del self.reasons[cached.image_id]
            else:
                kept.append(cached)
        return kept

    def _idle(self, cached, idle_time):
        last_read = self._last_read.get(cached.image_id)
        return last_read is not None and self._now - last_read > idle_time


def _log_prune(result, max_size, needs):
    LOG.info('Prune evicted %d images (%d bytes); the cache went from %d to '
             '%d bytes (limit %d); by reason: %s', result.files, result.bytes,
             result.size_before, result.size_after, max_size,
             ', '.join('%s %d files (%d bytes)' % (
                 reason, counted['files'], counted['bytes'])
                 for reason, counted in sorted(result.by_reason.items()))
             or 'none')
    if result.paced_seconds:
        LOG.info('Prune was paced by [prune] max_delete_rate: it waited %.1f '
                 's in all between deletions', result.paced_seconds)
    for count, why in ((result.skipped_young, 'younger than [prune] '
                                              'min_age'),
                       (result.skipped_pinned, 'pinned'),
                       (result.skipped_in_use, 'held open by another '
                                               'process')):
        if count:
            LOG.info('%d images %s were kept', count, why)
    if result.stopped:
        LOG.info('Prune stopped early on request; the next run finishes it')
    elif needs.any():
        LOG.warning('The image cache still misses a target (to shed: %s): %d '
                    'images could not be removed, %d are pinned, %d held '
                    'open, %d younger than [prune] min_age, and the rest are '
                    'recent downloads still in their %d s grace period',
                    needs, result.failures, result.skipped_pinned,
                    result.skipped_in_use, result.skipped_young,
                    IN_FLIGHT_GRACE)
