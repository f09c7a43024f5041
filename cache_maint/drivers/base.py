"""The driver contract: where a Glance cache keeps its image metadata.

The files are the same for every driver (``cache_maint.cachedir``); a
driver only knows where Glance records when each image was cached, how
often and how recently it was read. ``cache_maint.cache.Cache`` puts the
two together; maintenance code talks to drivers only through this class.
"""

import abc
import contextlib
import reprlib
import typing

from oslo_log import log as logging

from cache_maint import exception

LOG = logging.getLogger(__name__)

#: repr() for a log line: short, but long enough for an image id.
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80


class ImageRecord(typing.NamedTuple):
    """Glance's metadata for one cached image; times are epoch seconds.

    A named tuple: GET /v2/cache builds one per cached image, and a
    dataclass (with ``asdict``) cost several times Glance's whole listing.
    A driver whose rows come in this order makes them with ``_make``.
    """

    image_id: str
    last_accessed: float
    last_modified: float
    size: int
    hits: int

    @classmethod
    def mended(cls, values):
        """A record from stored values, any Glance never writes read as 0.

        Glance writes epoch seconds and non-negative integers; NULL, text,
        a blob, an infinity or a time past the year 9999 would break a
        listing (strict JSON has no Infinity).
        """
        image_id, last_accessed, last_modified, size, hits = values
        return cls(image_id, _time(last_accessed), _time(last_modified),
                   _count(size), _count(hits))

    @classmethod
    def from_rows(cls, rows):
        """Records from rows as stored, and the rows Glance never writes.

        A sound row (a text id, float times up to the year 9999, integer
        counts from 0) is made into a record as it is; an odd one is
        mended, or left out if its id is no text. One pass in Python costs
        a third of what the same checks cost as SQL (typeof() per column).
        """
        make, records, odd = cls._make, [], []
        for row in rows:
            image_id, last_accessed, last_modified, size, hits = row
            try:
                sound = (0 <= last_accessed <= _LAST_TIME
                         and 0 <= last_modified <= _LAST_TIME
                         and 0 <= size <= _LAST_COUNT
                         and 0 <= hits <= _LAST_COUNT
                         and type(size) is int and type(hits) is int
                         and type(image_id) is str)
            except TypeError:       # NULL, text or a blob in a number
                sound = False
            if sound:
                records.append(make(row))
                continue
            odd.append(row)
            if isinstance(image_id, str):
                records.append(cls.mended(row))
        return records, odd

    def to_dict(self):
        # Spelled out: nearly twice as fast as _asdict(), once per image.
        image_id, last_accessed, last_modified, size, hits = self
        return {'image_id': image_id, 'last_accessed': last_accessed,
                'last_modified': last_modified, 'size': size, 'hits': hits}


#: The last second of the year 9999: no later time is a date.
_LAST_TIME = 253402300799

#: The largest count a database integer column holds.
_LAST_COUNT = 2 ** 63 - 1


def _time(value):
    """Epoch seconds, or 0.0 for what is none."""
    if (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 <= value <= _LAST_TIME):
        return float(value)
    return 0.0


def _count(value):
    """A size or a hit count, or 0 for what is none."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value <= _LAST_COUNT):
        return value
    return 0


class StoredRecord(typing.NamedTuple):
    """A record as a driver deleted it: enough to put it back as it was."""

    image_id: str
    row: tuple      # the driver's own columns; only the driver reads them


class Driver(abc.ABC):
    """Metadata of one image cache, as one Glance driver stores it."""

    #: The ``image_cache_driver`` value this class implements.
    name = None

    #: True if the records are written to the cache's own filesystem.
    metadata_on_cache_disk = False

    #: True if the store holds the records of many nodes (centralized_db):
    #: a read of all of this node's records may cost every node's, so the
    #: routine reads go by image id, and clean reconciles fully only now
    #: and then (``cache_maint.reconcile``). A local store is read whole.
    shared = False

    def __init__(self, conf):
        self.conf = conf
        self._reported = set()

    def report_odd(self, rows):
        """Log, once per image, records whose values Glance never writes.

        ``rows`` are (image_id, last_accessed, last_modified, size, hits)
        as stored. The listings show such a value as 0.
        """
        for row in rows:
            if row[0] in self._reported:
                continue
            self._reported.add(row[0])
            LOG.warning('The %s cache metadata holds a record with values '
                        'Glance never writes; listed with 0 in their place: '
                        'image_id=%s last_accessed=%s last_modified=%s '
                        'size=%s hits=%s', self.name,
                        *(_short.repr(value) for value in row))

    def check(self):
        """Check the metadata settings and store, creating nothing."""

    def scope(self):
        """Whose records these are: the store, and the node in it.

        What cache-maint remembers of the records (the images clean looks
        at) holds only while this stays the same.
        """
        return self.name

    def identity_problem(self, image_ids):
        """Why this node may not see its own records, or None.

        Only a store shared by many nodes can tell: this node has no
        record of the images ``image_ids`` (those of its cache), while
        other nodes have.
        """
        return None

    def ping(self):
        """Raise MetadataError unless the metadata store answers now.

        Cheap enough for every health check; creates nothing.
        """

    @abc.abstractmethod
    def setup(self):
        """Create the metadata store (or this node's part of it) if absent.

        Called once ``check()`` passed and the cache directory is prepared.
        """

    @abc.abstractmethod
    def lru_order(self, files):
        """The recorded ids of the images in ``files``, LRU first.

        ``files`` is a scan of the cache directory ({image_id:
        CachedFile}); a record without a file there is left out. Ties in
        last access are broken deterministically (by caching order where
        the driver knows it). One read, whatever the size of the cache;
        a shared store reads the records of these images only, by id.
        """

    @abc.abstractmethod
    def lru_records(self, files):
        """The ImageRecords of the images in ``files``, in ``lru_order``.

        For an eviction policy that weighs more than the last access; one
        read, as for ``lru_order``.
        """

    @abc.abstractmethod
    def recorded_ids(self):
        """Every id this node has a record for, in no particular order.

        What clean looks through for records whose file is gone. A driver
        whose records are the files themselves has none apart from them.
        """

    @abc.abstractmethod
    def list_records(self):
        """Every ImageRecord, ordered by image id (Glance's listing)."""

    def records_of(self, image_ids):
        """The ImageRecords of those of ``image_ids`` recorded, unordered.

        What a node reads routinely: its records of the images it has (or
        had). A local store reads them all as cheaply, and filters; a
        shared one reads these alone.
        """
        wanted = set(image_ids)
        return [record for record in self.list_records()
                if record.image_id in wanted]

    @abc.abstractmethod
    def forget(self, image_ids, recorded_before=None):
        """Delete the records of these images; return them, StoredRecords.

        Deletes are batched in short, bounded transactions; a batch of up
        to 2,000 ids is one transaction, all or nothing. With
        ``recorded_before`` (epoch seconds), a record made since then, by
        its ``last_modified``, is kept: glance-api may have cached the image
        again after we found its record stale. A record whose
        ``last_modified`` is missing or lies in the future (a clock that was
        ahead) tells nothing of its age and goes.
        """

    @contextlib.contextmanager
    def all_or_nothing(self, deleted):
        """Put back the records in ``deleted`` if the block fails.

        A forget of many ids is several statements; one failing after the
        others committed would leave their images without records, files
        and all, for its caller to know nothing of.
        """
        try:
            yield
        except Exception:
            if deleted:
                try:
                    self.restore(deleted)
                except exception.MetadataError as e:
                    LOG.error('%d records deleted before a failure could not '
                              'be put back: %s', len(deleted), e)
            raise

    @abc.abstractmethod
    def restore(self, records):
        """Put back StoredRecords from ``forget``, unless recorded again.

        For files that stayed after all: an image glance-api has meanwhile
        recorded again keeps its new record.
        """

    def cached_nodes(self, image_id):
        """URLs of the nodes whose cache holds the image."""
        raise exception.CachedNodesUnsupported(
            'cached nodes asked of the %s driver' % self.name)

    def sync_schema(self):
        """Create the metadata tables of a standalone database."""
        raise exception.ConfigError(
            'db-sync applies to the centralized_db driver only; the %s '
            'driver creates its metadata itself' % self.name)

    def close(self):
        """Release pooled connections; the driver may be used again."""
