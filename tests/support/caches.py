"""Glance-format image caches on real disks, one builder per driver.

Each builder writes the files of Glance's on-disk layout and records them
the way its Glance driver does: rows in ``cache.db`` (sqlite), the files'
atime and ``user.hits`` (xattr), rows of this node in Glance's two tables
(centralized_db). The schemas are Glance's own (``schema``), never the
code under test. Images are added one at a time (``add_image`` and
friends) or in bulk (``add_planned``: one pass over the directory, one
transaction), for caches of hundreds of thousands of images.
"""

import datetime
import errno
import os
import sqlite3
import time

import sqlalchemy as sa

from cache_maint import cachedir
from tests.support import glance_schema
from tests.support import plans
from tests.support import settings

KIB = plans.KIB
new_id = plans.new_id

#: This node, and another sharing its centralized_db database.
NODE_URL = 'http://node-1.example.org:9292'
OTHER_NODE_URL = 'http://node-2.example.org:9292'


def write_files(directory, images, hits_xattr=False):
    """Write each image's file, with its times (and hits), in bulk."""
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


class FileCache:
    """A Glance image cache directory: its files, and no metadata.

    The builders of each driver record their metadata on top.
    """

    driver = None
    #: True when a file carries its own metadata (atime and xattrs).
    records_in_files = False

    def __init__(self, path):
        self.path = str(path)
        for sub in ('incomplete', 'invalid', 'queue'):
            os.makedirs(os.path.join(self.path, sub), exist_ok=True)

    def conf(self, **overrides):
        """A configuration for this cache and its driver."""
        return settings.make_conf(self.path, image_cache_driver=self.driver,
                                  **overrides)

    def add_image(self, size=KIB, last_accessed=None, hits=0,
                  tracked=True, mtime=None, image_id=None):
        """Cache an image: its file, and (if tracked) its record.

        The file was written an hour ago unless ``mtime`` says otherwise;
        its atime is its last access where the files are the records.
        """
        now = time.time()
        image = plans.Image(
            image_id or new_id(), size,
            now if last_accessed is None else last_accessed,
            now - 3600 if mtime is None else mtime, hits)
        self._write(image)
        if tracked:
            self.record([image])
        return image.image_id

    def add_images(self, count, size=KIB, first_accessed=1000.0):
        """Many tracked images at once, accessed one second apart."""
        images = plans.timeline(count, lambda i: size,
                                first=first_accessed)
        self.add_planned(images)
        return [image.image_id for image in images]

    def add_planned(self, images, record=True):
        """Write planned Images in bulk, and record them in one go."""
        write_files(self.path, images, hits_xattr=self.records_in_files)
        if record:
            self.record(images)

    def land(self, size=KIB, image_id=None):
        """Cache an image as glance-api does, read just now.

        Written in incomplete/, renamed into place, then recorded.
        """
        image_id = image_id or new_id()
        partial = os.path.join(self.path, 'incomplete', image_id)
        with open(partial, 'wb') as f:
            f.write(b'x' * size)
        os.rename(partial, os.path.join(self.path, image_id))
        now = time.time()
        self.record([plans.Image(image_id, size, now, now)])
        return image_id

    def add_row(self, image_id=None, size=KIB, last_accessed=None):
        """A record whose file does not exist."""
        accessed = time.time() if last_accessed is None else last_accessed
        image = plans.Image(image_id or new_id(), size, accessed,
                            accessed)
        self.record([image])
        return image.image_id

    def add_invalid(self, size=KIB, name=None):
        return self._write_in('invalid', name or new_id(), size)

    def add_incomplete(self, size=KIB, age=0, name=None):
        return self._write_in('incomplete', name or new_id(), size,
                              time.time() - age)

    def queue(self, image_id=None, age=0):
        return self._write_in('queue', image_id or new_id(), 0,
                              time.time() - age)

    def _write(self, image):
        path = os.path.join(self.path, image.image_id)
        with open(path, 'wb') as f:
            f.write(b'x' * image.size)
        atime = (image.last_accessed if self.records_in_files
                 else image.last_modified)
        os.utime(path, (atime, image.last_modified))

    def _write_in(self, sub, name, size, mtime=None):
        path = os.path.join(self.path, sub, name)
        with open(path, 'wb') as f:
            f.write(b'x' * size)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return name

    def images(self):
        """Names of the regular files in the base dir that are image ids."""
        return {name for name in os.listdir(self.path)
                if cachedir.is_image_id(name)
                and os.path.isfile(os.path.join(self.path, name))}

    def listdir(self, sub=''):
        return set(os.listdir(os.path.join(self.path, sub)))

    def usage_by_state(self):
        """{state: (files, bytes)}, counted here file by file.

        The cached images, and the files of incomplete/, invalid/, queue/.
        """
        usage = {'cached': (len(self.images()), self.size())}
        for sub, state in (('incomplete', 'incomplete'),
                           ('invalid', 'invalid'), ('queue', 'queued')):
            sizes = [os.path.getsize(os.path.join(self.path, sub, name))
                     for name in self.listdir(sub)]
            usage[state] = (len(sizes), sum(sizes))
        return usage

    def size(self):
        """Bytes of the images now; one removed meanwhile counts nothing."""
        total = 0
        for name in self.images():
            try:
                total += os.path.getsize(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        return total

    def record(self, images):
        """Record Images as this cache's Glance driver does."""

    def rows(self):
        """{image_id: (last_accessed, size, hits)} of the records."""
        return {}

    def close(self):
        """Release what the builder holds (database connections)."""


class SqliteCache(FileCache):
    """Recorded as Glance 33's sqlite driver does, in cache.db."""

    driver = 'sqlite'

    def __init__(self, path, db_name='cache.db'):
        super().__init__(path)
        self.db_path = os.path.join(self.path, db_name)
        with self._db() as conn:
            conn.executescript(glance_schema.SQLITE)

    def _db(self):
        return sqlite3.connect(self.db_path, isolation_level=None)

    def record(self, images):
        conn = self._db()
        try:
            conn.execute('BEGIN')
            conn.executemany(
                'INSERT INTO cached_images (image_id, last_accessed, '
                'last_modified, hits, size) VALUES (?, ?, ?, ?, ?)',
                [(i.image_id, i.last_accessed, i.last_accessed, i.hits,
                  i.size) for i in images])
            conn.execute('COMMIT')
        finally:
            conn.close()

    def rows(self):
        with self._db() as conn:
            return {r[0]: r[1:] for r in conn.execute(
                'SELECT image_id, last_accessed, size, hits '
                'FROM cached_images')}


class XattrCache(FileCache):
    """Hits in ``user.hits``, last access in the file's atime."""

    driver = 'xattr'
    records_in_files = True

    def record(self, images):
        for image in images:
            path = os.path.join(self.path, image.image_id)
            if os.path.exists(path):
                os.setxattr(path, 'user.hits', str(image.hits).encode())

    def add_row(self, image_id=None, size=KIB, last_accessed=None):
        raise NotImplementedError('xattr metadata lives in the files')

    def rows(self):
        """The files' metadata; a file that went, or has no hits, has none.

        A prune or glance-api may remove a file while it is read here.
        """
        rows = {}
        for image_id in self.images():
            path = os.path.join(self.path, image_id)
            try:
                st = os.stat(path)
                hits = int(os.getxattr(path, 'user.hits'))
            except FileNotFoundError:
                continue
            except OSError as e:
                if e.errno != errno.ENODATA:
                    raise
                continue
            rows[image_id] = (int(st.st_atime), st.st_size, hits)
        return rows


def naive_utc(epoch):
    """A naive UTC datetime, as Glance stores its DateTime columns."""
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).replace(tzinfo=None)


class CentralCache(FileCache):
    """Rows in Glance's cached_images table, scoped to this node."""

    driver = 'centralized_db'

    def __init__(self, path, url, node_url=NODE_URL):
        super().__init__(path)
        self.url = url
        self.node_url = node_url
        self.engine = sa.create_engine(url)
        glance_schema.metadata.create_all(self.engine)

    def conf(self, **overrides):
        overrides.setdefault('database__connection', self.url)
        overrides.setdefault('worker_self_reference_url', self.node_url)
        return super().conf(**overrides)

    def node_id(self, node_url=None):
        node_url = node_url or self.node_url
        nodes = glance_schema.node_reference
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(nodes.c.node_reference_id).where(
                nodes.c.node_reference_url == node_url)).scalar()
            if found is None:
                found = conn.execute(nodes.insert().values(
                    node_reference_url=node_url)).inserted_primary_key[0]
        return found

    def record(self, images, node_url=None):
        node = self.node_id(node_url)
        with self.engine.begin() as conn:
            conn.execute(glance_schema.cached_images.insert(), [
                {'image_id': i.image_id,
                 'last_accessed': naive_utc(i.last_accessed),
                 'last_modified': naive_utc(i.last_accessed),
                 'size': i.size, 'hits': i.hits, 'node_reference_id': node}
                for i in images])

    def rows(self, node_url=None):
        images = glance_schema.cached_images
        query = sa.select(images.c.image_id, images.c.last_accessed,
                          images.c.size, images.c.hits).where(
            images.c.node_reference_id == self.node_id(node_url))
        with self.engine.connect() as conn:
            return {row.image_id: (row.last_accessed.replace(
                tzinfo=datetime.timezone.utc).timestamp(), row.size,
                row.hits) for row in conn.execute(query)}

    def close(self):
        """Delete every row, for the next test on this database."""
        with self.engine.begin() as conn:
            conn.execute(glance_schema.cached_images.delete())
            conn.execute(glance_schema.node_reference.delete())
        self.engine.dispose()


#: The kinds of metadata store a cache can have, and their builders.
KINDS = ('sqlite', 'xattr', 'postgresql', 'mysql')


def make(kind, path, url=None):
    """A cache of ``kind`` in KINDS at ``path``; ``url`` for a server's."""
    if kind == 'sqlite':
        return SqliteCache(path)
    if kind == 'xattr':
        return XattrCache(path)
    return CentralCache(path, url)


def write_sqlite_db(path, images):
    """Replace the sqlite db at ``path`` by Glance's, holding ``images``.

    The file is built aside and renamed into place: a running reader never
    sees half of it.
    """
    tmp = '%s.restore' % path
    if os.path.exists(tmp):
        os.unlink(tmp)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.executescript(glance_schema.SQLITE)
        conn.executemany(
            'INSERT INTO cached_images (image_id, last_accessed, '
            'last_modified, size, hits) VALUES (?, ?, ?, ?, ?)',
            [(i.image_id, i.last_accessed, i.last_accessed, i.size, i.hits)
             for i in images])
    finally:
        conn.close()
    os.replace(tmp, path)
