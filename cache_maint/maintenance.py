"""The two maintenance tasks, ``clean`` and ``prune``, as plain functions.

Both work on one driver and return a result record. They are what the
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
committed, which only a short grace period tells apart.
"""

from concurrent import futures
import dataclasses
import time

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint import exception

LOG = logging.getLogger(__name__)

#: Seconds during which a file just written is taken to be in flight: an
#: untracked image that glance-api is about to record, or a download still
#: being written. Glance retries its sqlite writes for 2 s; this is ample.
IN_FLIGHT_GRACE = 10

#: Most victims removed between two checks of the stop event. A batch is
#: unlinked and then forgotten, so a stop never leaves a batch half done.
DELETE_BATCH = 2000

#: Where a batch's records are deleted under a lock glance-api waits for
#: (sqlite), a delete that held it longer than this many seconds halves the
#: next batch, down to MIN_DELETE_BATCH victims, and one well within it
#: doubles the next, up to DELETE_BATCH. A delete's cost grows with the
#: table (each id dirties a page of its own): 2,000 records take about
#: 25 ms at 20,000 images and 110-140 ms at 200,000, where glance-api's
#: hit updates, which sleep between attempts at the lock, waited 179 ms at
#: the 99th percentile with batches of 2,000, 104 ms with this.
FORGET_BUDGET = 0.1
MIN_DELETE_BATCH = 250


@dataclasses.dataclass(frozen=True)
class CleanResult:
    files: int = 0
    bytes: int = 0
    records_forgotten: int = 0
    failures: int = 0

    def to_dict(self):
        return {'total_files_cleaned': self.files,
                'total_bytes_cleaned': self.bytes}


@dataclasses.dataclass(frozen=True)
class PruneResult:
    files: int = 0
    bytes: int = 0
    size_before: int = 0
    size_after: int = 0
    failures: int = 0
    stopped: bool = False

    def to_dict(self):
        return {'total_files_pruned': self.files,
                'total_bytes_pruned': self.bytes}


def clean(driver, stall_time, now=None, stop_event=None):
    """Remove failed and stalled downloads, and records of missing files.

    Every file in ``invalid/`` goes; a file in ``incomplete/`` goes once
    its mtime is more than ``stall_time`` seconds old (and never within
    the in-flight grace, so a stall time of 0 cannot kill a download).
    A stop request is honoured between these steps.
    """
    now = time.time() if now is None else now
    older_than = now - max(stall_time, IN_FLIGHT_GRACE)
    cache = driver.cachedir
    cache.check()
    steps = (
        lambda: cache.remove_from(cachedir.INVALID),
        lambda: cache.remove_from(cachedir.INCOMPLETE,
                                  lambda st: st.st_mtime < older_than),
    )
    removals = []
    for step in steps:
        if stop_event is not None and stop_event.is_set():
            break
        removals.append(step())
        if removals[-1].fatal:
            raise exception.CacheDirError(removals[-1].fatal)
    forgotten = 0
    if stop_event is None or not stop_event.is_set():
        forgotten = _forget_missing(driver)
    result = CleanResult(
        files=sum(len(r.removed) for r in removals),
        bytes=sum(r.bytes_freed for r in removals),
        records_forgotten=forgotten,
        failures=sum(len(r.failed) for r in removals))
    level = logging.INFO if result != CleanResult() else logging.DEBUG
    LOG.log(level, 'Clean removed %d files (%d bytes) of failed and stalled '
            'downloads and %d records of missing images; %d files could '
            'not be removed', result.files, result.bytes, forgotten,
            result.failures)
    return result


def _forget_missing(driver):
    """Delete the records whose file is gone.

    Each file is looked for once more just before: glance-api may have
    cached the image again since the scan (file first, then record). It
    may also do so between that look and the delete, so only records made
    before the snapshot are deleted: a new one is not stale.
    """
    started = time.time()
    lru_ids, files = driver.snapshot()
    stale = [image_id for image_id in lru_ids if image_id not in files]
    stale = [image_id for image_id in stale
             if not driver.cachedir.has_image(image_id)]
    return driver.forget(stale, recorded_before=started) if stale else 0


def eviction_order(lru_ids, files, untracked_before):
    """Every image that prune may evict, in the order it evicts them.

    Files without a record come first, oldest first, once they are older
    than ``untracked_before``; then recorded images, least recently used
    first. Records whose file is gone free nothing and are left out.
    """
    tracked = set()
    recorded = []
    for image_id in lru_ids:
        cached = files.get(image_id)
        if cached is not None and image_id not in tracked:
            tracked.add(image_id)
            recorded.append(cached)
    untracked = sorted(
        (f for image_id, f in files.items()
         if image_id not in tracked and f.mtime < untracked_before),
        key=lambda f: (f.mtime, f.image_id))
    return untracked + recorded


def prune(driver, max_size, now=None, stop_event=None):
    """Evict least recently used images until the cache fits ``max_size``.

    One directory scan, one ordered read of the records, then batches of
    unlinks, each followed by one bounded delete of their records (batches
    shrink where that delete holds glance-api's lock too long). A file
    that cannot be removed is skipped for the next candidate, so prune ends
    under the limit whenever enough deletable files exist. A stop request
    is honoured between batches.
    """
    now = time.time() if now is None else now
    cache = driver.cachedir
    cache.check()
    files = cache.scan_images()
    size = sum(f.size for f in files.values())
    if size <= max_size:
        LOG.debug('Image cache holds %d bytes, within its limit of %d; '
                  'nothing to prune', size, max_size)
        return PruneResult(size_before=size, size_after=size)

    lru_ids = driver.lru_order(files)
    if not lru_ids:
        _refuse_if_lost(driver, files)
    candidates = eviction_order(lru_ids, files, now - IN_FLIGHT_GRACE)
    excess = size - max_size
    LOG.debug('Image cache holds %d bytes, %d over its limit of %d',
              size, excess, max_size)
    pruned = freed = failures = position = 0
    stopped = False
    with _Forgetter(driver) as forgetter:
        while excess > 0 and position < len(candidates):
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            batch, planned = [], 0
            while (position < len(candidates) and planned < excess
                   and len(batch) < forgetter.batch_size):
                batch.append(candidates[position])
                planned += candidates[position].size
                position += 1
            removal = cache.evict(batch)
            gone = removal.removed + removal.vanished
            pruned += len(removal.removed)
            forgetter.forget(gone, pruned)
            if removal.fatal:
                raise exception.CacheDirError(removal.fatal)
            freed += removal.bytes_freed
            failures += len(removal.failed)
            excess -= sum(files[image_id].size for image_id in gone)

    result = PruneResult(files=pruned, bytes=freed, size_before=size,
                         size_after=max_size + excess, failures=failures,
                         stopped=stopped)
    _log_prune(result, max_size)
    return result


def _refuse_if_lost(driver, files):
    """Raise NodeIdentityError if no file is tracked for a suspect reason.

    Untracked files are evicted first. When none of this node's files has
    a record but other nodes' records exist, the likeliest cause is that
    glance-api knows this node by another URL: evicting them all as
    untracked would throw away the images read most recently.
    """
    problem = driver.identity_problem()
    if problem:
        raise exception.NodeIdentityError(
            'refusing to evict %d images as untracked: %s'
            % (len(files), problem))


class _Forgetter:
    """Deletes the records of each removed batch, never before its files.

    Where the records live on another disk (centralized_db), a batch's
    records are deleted in a thread while the next batch is unlinked, one
    batch at a time. Where they live on the cache's own filesystem (sqlite),
    a commit would have to flush the journal that concurrent unlinks keep
    filling, and would hold the database's write lock, which glance-api
    waits for, for as long: there the batch's unlinks are first made
    durable (an fsync of the directory, holding no lock), then its records
    deleted in a short transaction, before the next batch starts; how long
    that transaction took sizes the next batch (``FORGET_BUDGET``). Leaving
    the block waits for the last delete; any failure is raised, with a plain
    account of what is left.
    """

    def __init__(self, driver):
        self.driver = driver
        self._overlap = not driver.metadata_on_cache_disk
        self._thread = futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix='forget')
        self._pending = None
        #: Victims in the next batch; sized by the last delete's lock time
        #: where the delete holds glance-api's lock (see FORGET_BUDGET).
        self.batch_size = DELETE_BATCH

    def forget(self, image_ids, pruned_so_far):
        """Delete these records once the previous delete is done."""
        self._wait(len(image_ids), pruned_so_far)
        if not image_ids:
            return
        if not self._overlap:
            self.driver.cachedir.sync()
        began = time.monotonic()
        self._pending = (self._thread.submit(self.driver.forget, image_ids),
                         len(image_ids), pruned_so_far)
        if not self._overlap:
            self._wait()
            self._resize(time.monotonic() - began)

    def _resize(self, took):
        if took > FORGET_BUDGET:
            self.batch_size = max(min(MIN_DELETE_BATCH, DELETE_BATCH),
                                  self.batch_size // 2)
        elif took < FORGET_BUDGET / 2:
            self.batch_size = min(DELETE_BATCH, self.batch_size * 2)

    def _wait(self, also_unrecorded=0, pruned_so_far=None):
        """Wait for the previous delete.

        If it failed, the batch removed since (``also_unrecorded`` files)
        keeps its records too; the error says so, in the one line the
        runner logs for the failed run.
        """
        if self._pending is None:
            return
        future, count, pruned = self._pending
        self._pending = None
        try:
            future.result()
        except exception.MetadataError as e:
            raise exception.MetadataError(
                'removed %d images, but the records of the last %d could '
                'not be deleted (the next clean deletes them): %s'
                % (pruned if pruned_so_far is None else pruned_so_far,
                   count + also_unrecorded, e)) from e

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._wait()
            elif self._pending is not None:
                # Already failing: still try to record what was removed.
                self._pending[0].exception()
        finally:
            self._thread.shutdown(wait=True)


def _log_prune(result, max_size):
    LOG.info('Prune evicted %d images (%d bytes); the cache went from %d to '
             '%d bytes (limit %d)', result.files, result.bytes,
             result.size_before, result.size_after, max_size)
    if result.stopped:
        LOG.info('Prune stopped early on request; the next run finishes it')
    elif result.size_after > max_size:
        LOG.warning('The image cache is still %d bytes over its limit: %d '
                    'images could not be removed and the rest are recent '
                    'downloads still in their %d s grace period',
                    result.size_after - max_size, result.failures,
                    IN_FLIGHT_GRACE)
