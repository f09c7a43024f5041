"""Glance's ``xattr`` cache driver: metadata in the files themselves.

A cached image's hit count is its ``user.hits`` extended attribute, and its
last access is its ``st_atime``, so the filesystem must support user
extended attributes and update access times (``relatime`` does, coarsely).
Glance lists the whole directory again for every image it evicts; here the
scan prune makes anyway gives the LRU order. Its records being the files,
this driver alone reads the cache directory (through a ``CacheDir`` of its
own) to list them.
"""

import errno
import os
import uuid

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint.drivers import base
from cache_maint import exception

LOG = logging.getLogger(__name__)

HITS = 'user.hits'


class XattrDriver(base.Driver):
    """Metadata in extended attributes and access times of the files."""

    name = 'xattr'

    def __init__(self, conf):
        super().__init__(conf)
        self._files = cachedir.CacheDir(conf.image_cache_dir)

    def setup(self):
        # Glance probes with a file in the cache dir and silently falls
        # back to sqlite when it fails; we refuse to guess instead. The
        # probe lives in incomplete/ (opened without following a link),
        # under a name that is not an image id.
        probe = '.cache-maint-xattr-probe-%s' % uuid.uuid4().hex
        try:
            directory = os.open(
                os.path.join(self.conf.image_cache_dir, cachedir.INCOMPLETE),
                os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600, dir_fd=directory)
                try:
                    os.setxattr(fd, HITS, b'0')
                finally:
                    os.close(fd)
                    os.unlink(probe, dir_fd=directory)
            finally:
                os.close(directory)
        except OSError as e:
            raise self._probe_failed(e)

    def check_support(self):
        """Raise unless the cache's filesystem has user xattrs; read-only.

        Reads an attribute of the cache directory: a filesystem without
        user extended attributes refuses the read itself. Unlike setup's
        probe, creates nothing.
        """
        try:
            os.getxattr(self.conf.image_cache_dir, HITS)
        except OSError as e:
            if e.errno != errno.ENODATA:
                raise self._probe_failed(e)

    def _probe_failed(self, error):
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return exception.ConfigError(
                '[DEFAULT] image_cache_driver = xattr, but the filesystem '
                'of image_cache_dir %s does not support user extended '
                'attributes (mount it with user_xattr, or use the driver '
                'glance-api really uses)' % self.conf.image_cache_dir)
        return exception.CacheDirError(
            'cannot check extended attributes in %s: %s'
            % (self.conf.image_cache_dir, error))

    def lru_order(self, files):
        return _lru_order(files.values())

    def recorded_ids(self):
        """None apart from the files: no record outlives its file."""
        return []

    def lru_records(self, files):
        """One getxattr per image, for its hits: they live in the file."""
        return [self._record(cached) for cached in _lru_files(files.values())]

    def list_records(self):
        return sorted(map(self._record, self._files.scan_images().values()),
                      key=lambda r: r.image_id)

    def _record(self, cached):
        # mended: user.hits may hold anything a process wrote there.
        return base.ImageRecord.mended((
            cached.image_id, int(cached.atime), int(cached.mtime),
            cached.size, self._hits(cached.image_id)))

    def forget(self, image_ids, recorded_before=None):
        """Nothing to do: the metadata goes with the file."""
        return []

    def restore(self, records):
        """Nothing to do: the metadata stayed with the file."""

    def _hits(self, image_id):
        path = os.path.join(self.conf.image_cache_dir, image_id)
        try:
            return int(os.getxattr(path, HITS, follow_symlinks=False))
        except (OSError, ValueError):
            return 0


def _lru_order(files):
    """Image ids least recently used first, ties broken as Glance does."""
    return [f.image_id for f in _lru_files(files)]


def _lru_files(files):
    """CachedFiles least recently used first, ties broken as Glance does.

    Glance sorts by (whole-second atime, size, path): with one-second
    atimes, ties are common, and this keeps its choice of victims.
    """
    return sorted(files, key=lambda f: (int(f.atime), f.size, f.image_id))
