"""Drive Glance 33's own image cache code in-process, for compatibility tests.

``GlanceImageCache`` configures Glance's global ``cfg.CONF`` and builds a real
``glance.image_cache.ImageCache``, so a test can have Glance write, read, list,
clean and prune a cache directory with any of its three drivers and then check
what cache-maint makes of it (or the reverse). It needs Glance itself
(``pip install glance==33.0.0``), plus ``xattr`` for the xattr driver and
psycopg2/PyMySQL for centralized_db on PostgreSQL/MariaDB.

Glance keeps all its state in process globals: the options in ``cfg.CONF``
and one SQLAlchemy engine in ``glance.db.sqlalchemy.api``. Every method of
``GlanceImageCache`` therefore first puts its own settings back into
``cfg.CONF``, and rebuilds Glance's engine when the database URL differs from
the one it was built for. Several instances can thus be used in one process,
even interleaved (two "nodes" sharing one database, say). ``close()`` disposes
of the engine's connections so that the test database can be dropped.

The helpers at the bottom create Glance's two centralized_db tables on a
database URL, with Glance's own models or its own migration. Scratch
databases come from ``tests.support.databases``, through psycopg2 for
PostgreSQL: the driver Glance's oslo.db uses.
"""

import contextlib
import importlib
import io
import os
import warnings

import sqlalchemy as sa

with warnings.catch_warnings():
    # Importing Glance imports eventlet (through futurist) and webob (cgi),
    # both of which warn about their own deprecation on import.
    warnings.simplefilter('ignore')
    from oslo_config import cfg
    from oslo_db import options as db_options

    import glance.common.config  # noqa: F401  (worker_self_reference_url)
    from glance.db.sqlalchemy import api as glance_db_api
    from glance.db.sqlalchemy import models as glance_models
    import glance.image_cache
    import glance.image_cache.drivers.sqlite  # noqa: F401  (its options)

from tests.support import databases

CONF = cfg.CONF

DRIVERS = ('sqlite', 'xattr', 'centralized_db')
DEFAULT_NODE_URL = 'http://glance-node-1:9292'
GIB = 1024 ** 3

CACHE_TABLES = (glance_models.NodeReference.__table__,
                glance_models.CachedImages.__table__)
_MIGRATION = ('glance.db.sqlalchemy.alembic_migrations.versions.'
              '2024_1_expand01_add_cache_tables')

_conf_parsed = False
_engine_url = None      # the [database] connection Glance's engine is for


class DriverFallback(RuntimeError):
    """Glance silently loaded another cache driver than the one asked for."""


class UnprunableCache(RuntimeError):
    """Glance's centralized_db prune would never return on this cache."""


def _parse_conf():
    global _conf_parsed
    if not _conf_parsed:
        db_options.set_defaults(CONF)        # registers [database] options
        # Parsing again would drop every override: do it once per process.
        CONF([], project='glance', default_config_files=[],
             default_config_dirs=[])
        _conf_parsed = True


def reset_db_engine():
    """Close Glance's database connections and forget its engine.

    Glance 33 keeps one oslo.db enginefacade ``_TransactionContextManager`` in
    ``glance.db.sqlalchemy.api._main_context_manager``; it reads
    ``[database] connection`` from ``cfg.CONF`` once, when it first starts, and
    keeps the engine for the rest of the process. Disposing of its pool closes
    the pooled connections; ``clear_db_env()`` drops the manager, so the next
    database call builds a new one from the current ``cfg.CONF``.
    """
    global _engine_url
    manager = glance_db_api._main_context_manager
    if manager is not None:
        manager.dispose_pool()               # a no-op if never started
    glance_db_api.clear_db_env()
    glance_db_api._context = None            # per-thread session state
    _engine_url = None


def _use_database(connection):
    """Point Glance's [database] connection, and its engine, at a URL."""
    global _engine_url
    if connection == _engine_url:
        return
    reset_db_engine()
    if connection is None:
        CONF.clear_override('connection', group='database')
    else:
        CONF.set_override('connection', connection, group='database')
    _engine_url = connection


class GlanceImageCache:
    """Glance 33's own ``ImageCache`` on ``cache_dir``, with one driver.

    :param cache_dir: the image cache directory (created if missing)
    :param driver: ``sqlite``, ``xattr`` or ``centralized_db``
    :param max_size: ``image_cache_max_size``, what ``prune()`` prunes to;
        an attribute, which may be changed between calls
    :param connection: SQLAlchemy URL of Glance's database (centralized_db
        only, where it is required; see ``create_cache_tables``)
    :param node_url: ``worker_self_reference_url``, this node's identity in
        centralized_db
    :param stall_time: ``image_cache_stall_time``, for ``clean()``
    :param lock_path: ``[oslo_concurrency] lock_path``; by default the cache
        dir, which Glance's sqlite and centralized_db drivers use anyway
    :raises DriverFallback: if Glance fell back to another driver, as it does
        silently when xattrs are unsupported or a driver fails to import
    """

    def __init__(self, cache_dir, driver='sqlite', max_size=10 * GIB,
                 connection=None, node_url=DEFAULT_NODE_URL,
                 stall_time=86400, lock_path=None):
        if driver not in DRIVERS:
            raise ValueError('unknown Glance cache driver %r' % driver)
        if driver == 'centralized_db' and not (connection and node_url):
            raise ValueError('centralized_db needs connection and node_url')
        self.cache_dir = str(cache_dir)
        self.driver_name = driver
        self.max_size = max_size
        self.connection = connection if driver == 'centralized_db' else None
        self.node_url = node_url
        self.stall_time = stall_time
        self.lock_path = str(lock_path or cache_dir)
        self._closed = False
        os.makedirs(self.cache_dir, exist_ok=True)
        _parse_conf()
        self._activate()
        self.image_cache = glance.image_cache.ImageCache()
        loaded = type(self.image_cache.driver).__module__.rpartition('.')[2]
        if loaded != driver:
            raise DriverFallback(
                'Glance was asked for the %s cache driver but fell back to '
                '%s (see its warning in the log)' % (driver, loaded))

    def _activate(self):
        """Put this cache's settings into Glance's global configuration."""
        if self._closed:
            raise RuntimeError('GlanceImageCache used after close()')
        overrides = {
            'image_cache_dir': self.cache_dir,
            'image_cache_driver': self.driver_name,
            'image_cache_max_size': self.max_size,
            'image_cache_stall_time': self.stall_time,
            'worker_self_reference_url': self.node_url,
        }
        for name, value in overrides.items():
            CONF.set_override(name, value)
        CONF.set_override('lock_path', self.lock_path,
                          group='oslo_concurrency')
        if self.driver_name == 'centralized_db':
            _use_database(self.connection)

    @property
    def driver(self):
        """Glance's driver object, for anything not wrapped here."""
        self._activate()
        return self.image_cache.driver

    def cache(self, image_id, data):
        """Cache ``data`` (bytes) as ``image_id``; False if already cached."""
        self._activate()
        return self.image_cache.cache_image_file(image_id, io.BytesIO(data))

    def read(self, image_id):
        """Read a cached image fully: Glance then counts a hit."""
        self._activate()
        with self.image_cache.open_for_read(image_id) as f:
            return f.read()

    def cached_images(self):
        """Glance's ``get_cached_images()``: a list of dicts."""
        self._activate()
        return self.image_cache.get_cached_images()

    def hits(self, image_id):
        self._activate()
        return self.image_cache.get_hit_count(image_id)

    def size(self):
        """Glance's ``get_cache_size()``: it counts more than images."""
        self._activate()
        return self.image_cache.get_cache_size()

    def is_cached(self, image_id):
        self._activate()
        return self.image_cache.is_cached(image_id)

    def queue(self, image_id):
        self._activate()
        return self.image_cache.queue_image(image_id)

    def queued(self):
        """Glance's ``get_queued_images()``, oldest first."""
        self._activate()
        return self.image_cache.get_queued_images()

    def delete(self, image_id):
        self._activate()
        self.image_cache.delete_cached_image(image_id)

    def prune(self):
        """Glance's prune to ``max_size``: ``(files, bytes)`` pruned.

        With centralized_db, Glance loops forever when the files it counts
        but has no rows for exceed ``max_size``; that raises UnprunableCache
        here instead of hanging the test run.
        """
        self._activate()
        if self.driver_name == 'centralized_db':
            self._check_prune_terminates()
        return self.image_cache.prune()

    def _check_prune_terminates(self):
        driver = self.image_cache.driver
        tracked = {row['image_id'] for row in driver.get_cached_images()}
        untracked = {path: os.path.getsize(path)
                     for path in driver.get_cache_files(self.cache_dir)
                     if os.path.basename(path) not in tracked}
        if sum(untracked.values()) > self.max_size:
            raise UnprunableCache(
                'Glance would prune forever: %d bytes in files without a '
                'row for %s, over max_size %d: %s' % (
                    sum(untracked.values()), self.node_url, self.max_size,
                    sorted(os.path.basename(p) for p in untracked)))

    def clean(self, stall_time=None):
        """Glance's clean (invalid and stalled files); returns None."""
        self._activate()
        return self.image_cache.clean(stall_time)

    def close(self):
        """Release Glance's database connections; the object is done."""
        if self._closed:
            return
        if self.connection is not None and _engine_url == self.connection:
            reset_db_engine()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# Glance's centralized_db tables, and scratch databases.

def create_cache_tables(url, how='models'):
    """Create Glance's node_reference and cached_images tables at ``url``.

    ``how='models'`` runs ``BASE.metadata.create_all`` on Glance's models;
    ``how='migration'`` runs the upgrade() of Glance's own migration
    2024_1_expand01 (what ``glance-manage db sync`` does for these tables,
    including InnoDB and charset utf8 on MySQL).
    """
    engine = sa.create_engine(url)
    try:
        if how == 'models':
            glance_models.BASE.metadata.create_all(engine,
                                                   tables=CACHE_TABLES)
        elif how == 'migration':
            from alembic.migration import MigrationContext
            from alembic.operations import Operations
            migration = importlib.import_module(_MIGRATION)
            with engine.begin() as conn:
                with Operations.context(MigrationContext.configure(conn)):
                    migration.upgrade()
        else:
            raise ValueError('how must be models or migration')
    finally:
        engine.dispose()


def drop_cache_tables(url):
    engine = sa.create_engine(url)
    try:
        glance_models.BASE.metadata.drop_all(engine, tables=CACHE_TABLES)
    finally:
        engine.dispose()


def sqlite_url(path):
    return 'sqlite:///' + os.path.abspath(str(path))


def create_database(kind):
    """A scratch database on server ``kind``, as Glance connects to it."""
    return databases.create_database(
        kind, dbapi='psycopg2' if kind == 'postgresql' else None)


def drop_database(url):
    """Drop a database made by ``create_database``, even if in use."""
    if url == _engine_url:
        reset_db_engine()
    databases.drop_database(url)


@contextlib.contextmanager
def scratch_database(kind, tables='models'):
    """Yield the URL of a new database, dropped on exit.

    It has Glance's cache tables, made as ``create_cache_tables(how=tables)``,
    unless ``tables`` is None.
    """
    url = create_database(kind)
    try:
        if tables:
            create_cache_tables(url, how=tables)
        yield url
    finally:
        drop_database(url)
