"""Caches recorded the way the xattr and centralized_db drivers do."""

import datetime
import os

import sqlalchemy as sa

from cache_maint.drivers import glance_tables as tables
from tests import base

NODE_URL = 'http://node-1.example.org:9292'
OTHER_NODE_URL = 'http://node-2.example.org:9292'


class XattrCache(base.FileCache):
    """Hits in ``user.hits``, last access in the file's atime."""

    driver = 'xattr'
    records_in_files = True

    def record(self, rows):
        for image_id, _accessed, _size, hits in rows:
            path = os.path.join(self.path, image_id)
            if os.path.exists(path):
                os.setxattr(path, 'user.hits', str(hits).encode())

    def add_row(self, image_id=None, size=base.KIB, last_accessed=None):
        raise NotImplementedError('xattr metadata lives in the files')

    def rows(self):
        rows = {}
        for image_id in self.images():
            path = os.path.join(self.path, image_id)
            st = os.stat(path)
            rows[image_id] = (int(st.st_atime), st.st_size,
                              int(os.getxattr(path, 'user.hits')))
        return rows


def _naive_utc(epoch):
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).replace(tzinfo=None)


class CentralCache(base.FileCache):
    """Rows in Glance's cached_images table, scoped to this node."""

    driver = 'centralized_db'

    def __init__(self, path, url, node_url=NODE_URL):
        super().__init__(path)
        self.url = url
        self.node_url = node_url
        self.engine = sa.create_engine(url)
        tables.metadata.create_all(self.engine)

    def conf(self, **overrides):
        overrides.setdefault('database__connection', self.url)
        overrides.setdefault('worker_self_reference_url', self.node_url)
        return super().conf(**overrides)

    def node_id(self, node_url=None):
        node_url = node_url or self.node_url
        nodes = tables.node_reference
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(nodes.c.node_reference_id).where(
                nodes.c.node_reference_url == node_url)).scalar()
            if found is None:
                found = conn.execute(nodes.insert().values(
                    node_reference_url=node_url)).inserted_primary_key[0]
        return found

    def record(self, rows, node_url=None):
        node = self.node_id(node_url)
        with self.engine.begin() as conn:
            conn.execute(tables.cached_images.insert(), [
                {'image_id': image_id, 'last_accessed': _naive_utc(accessed),
                 'last_modified': _naive_utc(accessed), 'size': size,
                 'hits': hits, 'node_reference_id': node}
                for image_id, accessed, size, hits in rows])

    def rows(self, node_url=None):
        images = tables.cached_images
        query = sa.select(images.c.image_id, images.c.last_accessed,
                          images.c.size, images.c.hits).where(
            images.c.node_reference_id == self.node_id(node_url))
        with self.engine.connect() as conn:
            return {row.image_id: (row.last_accessed.replace(
                tzinfo=datetime.timezone.utc).timestamp(), row.size,
                row.hits) for row in conn.execute(query)}

    def close(self):
        with self.engine.begin() as conn:
            conn.execute(tables.cached_images.delete())
            conn.execute(tables.node_reference.delete())
        self.engine.dispose()
