"""What a prune must achieve, and why each of its victims goes.

Glance has one target: no more than ``image_cache_max_size`` bytes. The
``[prune]`` options add a high and a low watermark on that size, a floor of
free space on the filesystem, a cap on the number of images, an idle time
after which an image goes whatever the limits, and a minimum age under
which an image stays unless free space runs out. With their defaults, the
victims are exactly Glance's.

Every victim carries the reason it went: ``untracked`` (a file without a
record, evicted first), ``size``, ``count``, ``free_space`` or ``idle``.
"""

import dataclasses

UNTRACKED = 'untracked'
SIZE = 'size'
COUNT = 'count'
FREE_SPACE = 'free_space'
IDLE = 'idle'
REASONS = (UNTRACKED, SIZE, COUNT, FREE_SPACE, IDLE)


@dataclasses.dataclass(frozen=True)
class Targets:
    """The limits a prune enforces; see cache_maint.conf.prune."""

    max_size: int
    high_watermark: int = 100
    low_watermark: int = 100
    #: Bytes, or a fraction of the filesystem (a float under 1).
    min_free_space: float = 0
    max_images: int = 0
    max_idle_time: int = 0
    min_age: int = 0

    @classmethod
    def from_conf(cls, conf):
        prune = conf.prune
        return cls(max_size=conf.image_cache_max_size,
                   high_watermark=prune.high_watermark,
                   low_watermark=prune.low_watermark,
                   min_free_space=prune.min_free_space,
                   max_images=prune.max_images,
                   max_idle_time=prune.max_idle_time,
                   min_age=prune.min_age)

    @property
    def high_mark(self):
        """Bytes above which prune starts."""
        return self.max_size * self.high_watermark // 100

    @property
    def low_mark(self):
        """Bytes down to which prune evicts, once started."""
        return self.max_size * self.low_watermark // 100

    @property
    def watches_free_space(self):
        return bool(self.min_free_space)

    def free_space_floor(self, filesystem_bytes):
        """The free bytes to keep, on a filesystem of that size."""
        if isinstance(self.min_free_space, float):
            return int(self.min_free_space * filesystem_bytes)
        return int(self.min_free_space)

    def needs(self, size, count, free=None, filesystem_bytes=None):
        """What a cache of ``size`` bytes in ``count`` images must shed.

        ``free`` and ``filesystem_bytes`` describe the filesystem, when
        free space is watched.
        """
        floor = (self.free_space_floor(filesystem_bytes)
                 if self.watches_free_space and free is not None else 0)
        return Needs(
            size=size - self.low_mark if size > self.high_mark else 0,
            count=(count - self.max_images
                   if self.max_images and count > self.max_images else 0),
            free=floor - free if floor and free < floor else 0)


@dataclasses.dataclass(frozen=True)
class Needs:
    """Bytes and images a prune has still to remove, target by target."""

    size: int = 0       # bytes, for the size target (watermarks)
    count: int = 0      # images, for the image cap
    free: int = 0       # bytes, for the free-space floor

    def any(self):
        return self.size > 0 or self.count > 0 or self.free > 0

    def minus(self, files):
        """What is left to do once ``files`` (CachedFiles) are gone."""
        freed = sum(f.size for f in files)
        return Needs(max(0, self.size - freed),
                     max(0, self.count - len(files)),
                     max(0, self.free - freed))
