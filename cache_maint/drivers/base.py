"""The driver contract: where a Glance cache keeps its image metadata.

The files are the same for every driver (see ``cache_maint.cachedir``); a
driver only knows where Glance records when each image was cached, how
often and how recently it was read. Maintenance code talks to drivers only
through this class.
"""

import abc
import dataclasses

from cache_maint import cachedir


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """Glance's metadata for one cached image; times are epoch seconds."""

    image_id: str
    last_accessed: float
    last_modified: float
    size: int
    hits: int

    def to_dict(self):
        return dataclasses.asdict(self)


class Driver(abc.ABC):
    """Metadata of one image cache, as one Glance driver stores it."""

    #: The ``image_cache_driver`` value this class implements.
    name = None

    def __init__(self, conf):
        self.conf = conf
        self.cachedir = cachedir.CacheDir(conf.image_cache_dir)

    def setup(self):
        """Check the cache directory and the metadata store.

        What Glance would create when it is missing is created.
        """
        self.cachedir.prepare()
        self.setup_metadata()

    @abc.abstractmethod
    def setup_metadata(self):
        """Check (and if absent, create) the metadata store."""

    @abc.abstractmethod
    def lru_records(self):
        """Every image record, least recently used first.

        Ties in ``last_accessed`` are broken deterministically, in the
        order the images were cached. One read, whatever the cache size.
        """

    @abc.abstractmethod
    def forget(self, image_ids):
        """Delete the records of these images; return how many went.

        Deletes are batched in short, bounded transactions.
        """

    def list_records(self):
        """Every image record, ordered by image id (Glance's listing)."""
        return sorted(self.lru_records(), key=lambda r: r.image_id)

    def close(self):
        """Release pooled connections; the driver may be used again."""
