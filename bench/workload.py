"""Glance-format image caches to benchmark on, identical copy after copy.

A cache is first planned (``plan``): image ids, sizes, access and caching
times and hit counts, drawn from a seeded generator. Building the same plan
into several directories (``build``) gives identical copies, one for Glance,
one for cache-maint, one for the bare scan-and-unlink floor.

Glance itself lays out each copy: its own driver creates the directories
and, for sqlite, ``cache.db`` with its schema. The files and the metadata
are then written in bulk, as Glance would have recorded them: rows in
``cached_images`` (sqlite, centralized_db) or the atime and ``user.hits``
of each file (xattr).
"""

import collections
import datetime
import os
import random
import sqlite3
import time
import uuid

import sqlalchemy as sa

from tests.compat import glance_cache

DAY = 86400

#: Each file holds between 512 bytes and 4 KiB: one filesystem block of real
#: data, like the 1 KiB images of design.md's anchors. What an unlink costs
#: grows with the blocks it frees, for Glance and cache-maint alike.
MIN_SIZE, MAX_SIZE = 512, 4096

#: How far back the plan spreads its accesses.
HISTORY = 30 * DAY

#: The node this benchmark is, and another one sharing its database.
NODE_URL = 'http://bench-node-1:9292'
OTHER_NODE_URL = 'http://bench-node-2:9292'

Image = collections.namedtuple(
    'Image', 'image_id size last_accessed last_modified hits')


def plan(count, seed, now):
    """``count`` images, each accessed at a distinct whole second.

    Distinct whole seconds keep the LRU order free of ties, even where
    Glance stores whole seconds only (MariaDB DATETIME, atime in xattr), so
    "the same victims" is well defined. Hit counts follow a long-tailed
    (Pareto) law: a few images are read very often, most a few times.
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
            image_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            size=rnd.randint(MIN_SIZE, MAX_SIZE),
            last_accessed=float(accessed),
            last_modified=float(accessed - rnd.randint(0, 7 * DAY)),
            hits=min(int(rnd.paretovariate(1.2)) - 1, 10000)))
    return images


def limit_keeping(images, keep):
    """(max_size, ids) keeping exactly the ``keep`` most recent images.

    Under that limit those images stay and every other one is evicted.
    """
    newest = sorted(images, key=lambda i: i.last_accessed, reverse=True)
    survivors = newest[:keep]
    return sum(i.size for i in survivors), {i.image_id for i in survivors}


def junk(count, seed, age):
    """``count`` files ``age`` seconds old: failed or stalled downloads."""
    rnd = random.Random(seed)
    mtime = float(int(time.time()) - age)
    return [Image(str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                  rnd.randint(MIN_SIZE, MAX_SIZE), mtime, mtime, 0)
            for _ in range(count)]


def write_files(directory, images, hits_xattr=False):
    """Write each image's file with its times (and hits) into directory."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for image in images:
            fd = os.open(image.image_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o644, dir_fd=dir_fd)
            try:
                os.write(fd, b'\0' * image.size)
                if hits_xattr:
                    os.setxattr(fd, 'user.hits', str(image.hits).encode())
            finally:
                os.close(fd)
            os.utime(image.image_id,
                     (image.last_accessed, image.last_modified),
                     dir_fd=dir_fd, follow_symlinks=False)
    finally:
        os.close(dir_fd)


class Copy:
    """One copy of a planned cache, in a directory, for one driver.

    With no driver, the copy is files only: the floor needs no metadata.
    """

    def __init__(self, path, driver, connection=None):
        self.path = str(path)
        self.driver = driver
        self.connection = connection

    @property
    def db_path(self):
        return os.path.join(self.path, 'cache.db')

    def build(self, images, invalid=(), stalled=()):
        """Lay the cache out with Glance, then fill it in bulk."""
        if self.driver is None:
            for subdir in ('invalid', 'incomplete', 'queue'):
                os.makedirs(os.path.join(self.path, subdir))
        else:
            # Glance's driver creates the layout, sqlite's cache.db, and
            # (centralized_db) this node's row.
            glance_cache.GlanceImageCache(
                self.path, self.driver, connection=self.connection,
                node_url=NODE_URL).close()
        write_files(self.path, images, hits_xattr=self.driver == 'xattr')
        write_files(os.path.join(self.path, 'invalid'), invalid)
        write_files(os.path.join(self.path, 'incomplete'), stalled)
        if self.driver == 'sqlite':
            self._record_sqlite(images)
        elif self.driver == 'centralized_db':
            self._record_central(images)
        return self

    def _record_sqlite(self, images):
        conn = sqlite3.connect(self.db_path, isolation_level=None)
        try:
            conn.execute('BEGIN')
            conn.executemany(
                'INSERT INTO cached_images (image_id, last_accessed, '
                'last_modified, size, hits) VALUES (?, ?, ?, ?, ?)',
                [(i.image_id, i.last_accessed, i.last_modified, i.size,
                  i.hits) for i in images])
            conn.execute('COMMIT')
        finally:
            conn.close()

    def _record_central(self, images):
        """This node's rows, and as many rows of another node."""
        nodes, rows = glance_cache.CACHE_TABLES
        others = plan(len(images), seed=len(images) + 1, now=time.time())
        engine = sa.create_engine(self.connection)
        try:
            with engine.begin() as conn:
                for url, batch in ((NODE_URL, images),
                                   (OTHER_NODE_URL, others)):
                    node = conn.execute(sa.select(
                        nodes.c.node_reference_id).where(
                            nodes.c.node_reference_url == url)).scalar()
                    if node is None:
                        node = conn.execute(nodes.insert().values(
                            node_reference_url=url)).inserted_primary_key[0]
                    conn.execute(rows.insert(), [
                        {'image_id': i.image_id,
                         'last_accessed': _utc(i.last_accessed),
                         'last_modified': _utc(i.last_modified),
                         'size': i.size, 'hits': i.hits,
                         'node_reference_id': node} for i in batch])
        finally:
            engine.dispose()

    def image_files(self):
        """Ids of the image files left in the cache directory."""
        return {e.name for e in os.scandir(self.path)
                if e.is_file(follow_symlinks=False) and _is_id(e.name)}

    def recorded(self, node_url=NODE_URL):
        """Ids recorded for this node (xattr: the files themselves)."""
        if self.driver == 'sqlite':
            conn = sqlite3.connect(self.db_path)
            try:
                return {r[0] for r in conn.execute(
                    'SELECT image_id FROM cached_images')}
            finally:
                conn.close()
        if self.driver == 'xattr':
            return self.image_files()
        nodes, rows = glance_cache.CACHE_TABLES
        engine = sa.create_engine(self.connection)
        try:
            with engine.connect() as conn:
                return set(conn.execute(
                    sa.select(rows.c.image_id).join(nodes).where(
                        nodes.c.node_reference_url == node_url)).scalars())
        finally:
            engine.dispose()

    def files_in(self, subdir):
        return set(os.listdir(os.path.join(self.path, subdir)))


def _utc(epoch):
    """A naive UTC datetime, as Glance stores its DateTime columns."""
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).replace(tzinfo=None)


def _is_id(name):
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False
