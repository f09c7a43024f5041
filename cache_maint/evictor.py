"""Removing prune's victims in batches: each batch's records, then its files.

glance-api renames a finished download into place and records it just
after. If an image it caches again still had its old record, that INSERT
would fail and the image would be left with no record at all: so a batch's
records are deleted before its files are unlinked, and a file that cannot
be unlinked then gets its record back as it was. Whatever interrupts a run
(kill -9, a database outage) leaves at worst files without records, which
the next prune evicts first, as untracked.

On a full filesystem, sqlite cannot delete records (its journal needs room)
until files are gone: there, and only then, a batch's files go first, and
a record whose file glance-api has cached again meanwhile is put back, as
glance-api alone would have left it (its INSERT failed on that record).

Where the records live on the cache's own filesystem (sqlite), the unlinks
of the previous batch are made durable (an fsync of the directory, holding
no lock) before the next delete: its commit then need not flush them while
it holds the lock glance-api waits for, and how long that delete took sizes
the next batch. Where they live elsewhere (centralized_db), the next batch's
records are deleted in a thread while this batch is unlinked.
"""

from concurrent import futures
import time

from oslo_log import log as logging

from cache_maint import exception

LOG = logging.getLogger(__name__)

#: Most victims removed between two checks of the stop event.
EVICT_BATCH = 2000

#: Where a batch's records are deleted under a lock glance-api waits for
#: (sqlite), a delete that held it longer than this many seconds halves the
#: next batch, down to MIN_EVICT_BATCH victims, and one well within it
#: doubles the next, up to EVICT_BATCH. A delete's cost grows with the
#: table (each id dirties a page of its own): 2,000 records take about
#: 25 ms at 20,000 images and 110-140 ms at 200,000, where glance-api's
#: hit updates, which sleep between attempts at the lock, waited 179 ms at
#: the 99th percentile with batches of 2,000, 104 ms with this.
LOCK_HOLD_BUDGET = 0.1
MIN_EVICT_BATCH = 250


class Evictor:
    """Removes batches of scanned files, records first; a context manager.

    Leaving the block puts back the records of a batch whose records were
    deleted ahead but whose files were never reached (a stop, an error).
    """

    def __init__(self, cache, pacer=None):
        self.metadata = cache.metadata
        self.files = cache.files
        #: A pacing.Pacer that spaces the unlinks out, or None.
        self.pacer = pacer
        # A paced batch takes seconds: records deleted ahead would be
        # missing all that time.
        self.overlaps = (not cache.metadata.metadata_on_cache_disk
                         and pacer is None)
        self._thread = futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix='forget')
        self._ahead = None          # (batch, future of its records)
        self._unsynced = False
        #: Victims in the next batch; sized by the last delete's lock time
        #: where the delete holds glance-api's lock (see LOCK_HOLD_BUDGET).
        self.batch_size = EVICT_BATCH

    def remove(self, batch, ahead=()):
        """Remove ``batch`` (CachedFiles); return the Removal.

        ``ahead`` is the batch expected next: where deletes overlap
        unlinks, its records are deleted while this batch is unlinked.
        """
        try:
            records = self._forget(batch)
        except exception.MetadataFull as e:
            LOG.warning('No room to delete records (%s): this batch\'s files '
                        'go first', e)
            return files_first(self.metadata, self.files,
                               [f.image_id for f in batch],
                               lambda: self.files.evict(batch,
                                                        self.pacer))[0]
        if ahead and self.overlaps:
            self._ahead = (list(ahead), self._thread.submit(
                self.metadata.forget, [f.image_id for f in ahead]))
        removal = self.files.evict(batch, self.pacer)
        self._unsynced = True
        _put_back_kept(self.metadata, self.files, records, removal)
        return removal

    def _forget(self, batch):
        """Delete the records of ``batch``, or take those deleted ahead."""
        if self._ahead is not None:
            ahead, future = self._ahead
            self._ahead = None
            if [f.image_id for f in ahead] == [f.image_id for f in batch]:
                return future.result()
            self._restore(future.result())
        if not self.overlaps and self._unsynced:
            self.files.sync()
        began = time.monotonic()
        records = self.metadata.forget([f.image_id for f in batch])
        if not self.overlaps:
            self._resize(time.monotonic() - began)
        return records

    def _resize(self, took):
        if took > LOCK_HOLD_BUDGET:
            self.batch_size = max(min(MIN_EVICT_BATCH, EVICT_BATCH),
                                  self.batch_size // 2)
        elif took < LOCK_HOLD_BUDGET / 2:
            self.batch_size = min(EVICT_BATCH, self.batch_size * 2)

    def _restore(self, records):
        _restore(self.metadata, records)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self._ahead is not None:
                _ahead, future = self._ahead
                self._ahead = None
                try:
                    records = future.result()
                except exception.MetadataError:
                    records = []    # nothing was deleted ahead
                # Not for an image glance-api deleted meanwhile.
                self._restore([r for r in records
                               if self.files.has_image(r.image_id)])
        finally:
            self._thread.shutdown(wait=True)


def records_first(cache, image_ids, unlink):
    """Delete these images' records, then ``unlink()`` their files.

    ``unlink`` returns a Removal; a file that stayed gets its record back.
    On a full filesystem, the files go first (files_first). Returns the
    Removal and the records deleted for good.
    """
    metadata, files = cache.metadata, cache.files
    try:
        records = metadata.forget(image_ids)
    except exception.MetadataFull:
        return files_first(metadata, files, image_ids, unlink)
    removal = unlink()
    kept = {r.image_id
            for r in _put_back_kept(metadata, files, records, removal)}
    return removal, [r for r in records if r.image_id not in kept]


def files_first(metadata, files, image_ids, unlink):
    """``unlink()`` the files, then delete the records of those gone.

    A record whose file is there again once it is deleted was cached again
    by glance-api in between, whose INSERT failed on it: it is put back.
    Returns the Removal and the records deleted for good.
    """
    removal = unlink()
    records = metadata.forget(list(removal.removed + removal.vanished))
    again = [r for r in records if files.has_image(r.image_id)]
    _restore(metadata, again)
    again_ids = {r.image_id for r in again}
    return removal, [r for r in records if r.image_id not in again_ids]


def _put_back_kept(metadata, files, records, removal):
    """Put back the records of the images ``removal`` left; return them.

    What stayed under an image's name but is no image (a symlink, a
    directory) keeps no record: it was stale.
    """
    gone = set(removal.removed) | set(removal.vanished)
    kept = [record for record in records if record.image_id not in gone
            and files.has_image(record.image_id)]
    _restore(metadata, kept)
    return kept


def _restore(metadata, records):
    """Put back records; an error is logged: the files are untracked then."""
    if not records:
        return
    try:
        metadata.restore(records)
    except exception.MetadataError as e:
        LOG.error('%d images stay in the cache, but their records could not '
                  'be put back (prune evicts them first next time, as '
                  'untracked): %s', len(records), e)
