"""What a cache holds, planned before it is built, and its LRU survivors.

An ``Image`` is one cached image as Glance records it. ``timeline`` and
``plan`` lay out many at once; ``survivors`` is the one statement of which
images a prune must leave, which the tests assert and the benchmark checks
its two sides against.
"""

import random
import time
import typing
import uuid

KIB = 1024
DAY = 86400

#: A planned image holds between 512 bytes and 4 KiB: one filesystem block
#: of real data, like the 1 KiB images of design.md's anchors. What an
#: unlink costs grows with the blocks it frees, for Glance and cache-maint
#: alike.
MIN_SIZE, MAX_SIZE = 512, 4096

#: How far back a plan spreads its accesses.
HISTORY = 30 * DAY


class Image(typing.NamedTuple):
    """One cached image: its file's size and times, and its hit count."""

    image_id: str
    size: int
    last_accessed: float
    last_modified: float
    hits: int = 0


def new_id(rnd=None):
    """A new image id; from ``rnd`` when it must be reproducible."""
    if rnd is None:
        return str(uuid.uuid4())
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def timeline(count, size_of=lambda i: KIB, first=None, hits_of=None):
    """``count`` images accessed one whole second apart, oldest first.

    Whole seconds: MariaDB's DATETIME and xattr's atime keep no more, so
    the LRU order is the list's order for every driver. They were written
    an hour ago, past the grace prune gives untracked new files.
    """
    first = int(time.time()) - 2 * DAY if first is None else first
    written = time.time() - 3600
    return [Image(new_id(), size_of(i), float(first + i), written,
                  hits_of(i) if hits_of else 0) for i in range(count)]


def plan(count, seed, now):
    """``count`` images, each accessed at a distinct whole second.

    Distinct whole seconds keep the LRU order free of ties, even where
    Glance stores whole seconds only, so "the same victims" is well
    defined. Hit counts follow a long-tailed (Pareto) law: a few images are
    read very often, most a few times.
    """
    rnd = random.Random(seed)
    spacing = max(1, HISTORY // count)
    ranks = list(range(count))
    rnd.shuffle(ranks)
    start = int(now) - HISTORY - DAY
    images = []
    for rank in ranks:
        accessed = start + rank * spacing
        images.append(Image(
            image_id=new_id(rnd),
            size=rnd.randint(MIN_SIZE, MAX_SIZE),
            last_accessed=float(accessed),
            last_modified=float(accessed - rnd.randint(0, 7 * DAY)),
            hits=min(int(rnd.paretovariate(1.2)) - 1, 10000)))
    return images


def junk(count, seed, age):
    """``count`` files ``age`` seconds old: failed or stalled downloads."""
    rnd = random.Random(seed)
    mtime = float(int(time.time()) - age)
    return [Image(new_id(rnd), rnd.randint(MIN_SIZE, MAX_SIZE), mtime,
                  mtime) for _ in range(count)]


def lru_order(images):
    """``images`` least recently used first (ties: as listed)."""
    return sorted(images, key=lambda image: image.last_accessed)


def survivors(images, max_size, kept=()):
    """The ids a prune to ``max_size`` leaves of recorded ``images``.

    Prune evicts the least recently used first until the cache fits; the
    ids in ``kept`` cannot be removed and are passed over.
    """
    total = sum(image.size for image in images)
    evicted = set()
    for image in lru_order(images):
        if total <= max_size:
            break
        if image.image_id not in kept:
            evicted.add(image.image_id)
            total -= image.size
    return {image.image_id for image in images} - evicted


def limit_keeping(images, keep):
    """(max_size, ids) under which exactly the ``keep`` most recent stay."""
    newest = lru_order(images)[len(images) - keep:]
    return (sum(image.size for image in newest),
            {image.image_id for image in newest})
