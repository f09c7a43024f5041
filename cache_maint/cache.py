"""The image cache as a whole: its files and its metadata, together.

A Glance cache is two things that must agree: the files in the cache
directory (``cache_maint.cachedir``, the same for every driver) and the
records Glance keeps about them (a metadata driver, ``cache_maint.drivers``).
``Cache`` holds one of each, so that maintenance and the per-image
operations take the cache, not a driver that knows the files on the side.
It also holds cache-maint's own ``state`` of that cache (pins, the record of
runs, the images it evicted: ``cache_maint.state``).
"""

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint.conf import maintenance
from cache_maint import drivers
from cache_maint import state as cm_state

LOG = logging.getLogger(__name__)


class Cache:
    """One node's image cache: ``files`` and their ``metadata``."""

    def __init__(self, files, metadata, state=None):
        self.files = files          # a cachedir.CacheDir
        self.metadata = metadata    # a drivers.base.Driver
        # a state.StateStore; by default where [maintenance] state_dir's is
        self.state = state or cm_state.StateStore(
            maintenance.default_state_dir(files.path))

    @classmethod
    def from_conf(cls, conf):
        """The cache ``conf`` names, with its configured driver."""
        return cls(cachedir.CacheDir(conf.image_cache_dir),
                   drivers.load_driver(conf), cm_state.from_conf(conf))

    @property
    def path(self):
        return self.files.path

    def check(self):
        """Raise unless the directory and the metadata store are usable.

        Creates nothing: a refused start leaves the disk and the database
        as they were.
        """
        self.files.check_usable()
        self.metadata.check()

    def setup(self):
        """Check the cache, then create what Glance would if it is missing.

        Nothing is created until both are checked: a start refused for a
        bad setting leaves the disk and the database as they were.
        """
        self.check()
        self.files.prepare()
        self.metadata.setup()
        # Only a store shared by many nodes can have a problem; the scan,
        # one stat per file, is made only then.
        if not self.metadata.shared:
            return
        files = self.files.scan_images()
        problem = self.metadata.identity_problem(files)
        if problem:
            LOG.warning('The cached images cannot be maintained as they '
                        'should: %s. Prune will not evict them as untracked '
                        'until this node has records.', problem)

    def close(self):
        """Release the metadata store's connections; usable again after."""
        self.metadata.close()
        self.state.close()
