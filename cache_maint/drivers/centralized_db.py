"""Glance's ``centralized_db`` cache driver: rows in Glance's database.

All nodes share the ``cached_images`` table; each row belongs to the node
whose ``node_reference_url`` is its ``worker_self_reference_url``, and the
files stay on that node. Every statement here is scoped to this node's URL,
so cache-maint on one node never touches another node's rows. Glance's prune
loops forever when files have no row; the shared maintenance code does not.

What a node does routinely (prune, clean, the listing) reads its rows by
image id (``node_rows``): Glance's schema indexes the table by image id, not
by node. The node-scoped reads of every row of this node
(``recorded_ids``, ``list_records``) are for clean's full reconciliation,
now and then, and for clearing the whole cache.
"""

import datetime
import importlib
import time
import urllib.parse

from oslo_log import log as logging
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cache_maint.drivers import base
from cache_maint.drivers import glance_tables as tables
from cache_maint.drivers import node_rows
from cache_maint import exception

LOG = logging.getLogger(__name__)

# Ids per transaction of forget: a batch of prune's is one. Its statements
# take node_rows.IDS_PER_STATEMENT ids each.
IDS_PER_DELETE = 2000

#: Seconds past the present within which a record's last_modified is taken
#: as made now, not by a clock that was ahead (forget's recorded_before).
RECORDED_MARGIN = 10

#: Seconds to connect, and for a statement's answer: a server that accepts
#: connections but never answers must fail a run (or a reload's check), not
#: hang it. A URL that sets its own values keeps them.
CONNECT_TIMEOUT = 10
STATEMENT_TIMEOUT = 30
_TIMEOUTS = {
    'postgresql': {'connect_timeout': CONNECT_TIMEOUT,
                   'options': '-c statement_timeout=%d'
                              % (STATEMENT_TIMEOUT * 1000)},
    'mysql': {'connect_timeout': CONNECT_TIMEOUT,
              'read_timeout': STATEMENT_TIMEOUT,
              'write_timeout': STATEMENT_TIMEOUT},
}

_images = tables.cached_images
_nodes = tables.node_reference


def _epoch(moment):
    """Glance stores naive UTC datetimes; the API speaks epoch seconds."""
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def _sane_epoch(moment):
    """As _epoch, or None for what is no datetime (MySQL's zero date)."""
    if not isinstance(moment, datetime.datetime):
        return None
    try:
        return _epoch(moment)
    except (OverflowError, ValueError):
        return None


def _naive_utc(epoch):
    """An epoch as Glance stores its times: a naive UTC datetime."""
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).replace(tzinfo=None)


def comparable_url(url):
    """A node URL reduced to where it points.

    The case of scheme and host, a default port and trailing slashes are
    made uniform. glance-api compares node URLs as strings: two that differ
    only in these name the same node, yet get two node_reference rows.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if port == {'http': 80, 'https': 443}.get(scheme):
        port = None
    return (scheme, (parts.hostname or '').lower(), port,
            parts.path.rstrip('/'), parts.query)


def make_engine(url):
    """A pooled engine for ``url``."""
    url = sa.engine.make_url(url)
    # A URL without a DBAPI means SQLAlchemy's default one; fall back to
    # the driver the extras install when the default is not there.
    fallbacks = {'postgresql': ('psycopg2', 'postgresql+psycopg'),
                 'mysql': ('MySQLdb', 'mysql+pymysql')}
    if url.drivername in fallbacks:
        module, drivername = fallbacks[url.drivername]
        try:
            importlib.import_module(module)
        except ImportError:
            url = url.set(drivername=drivername)
    options = {'pool_pre_ping': True}
    if url.get_backend_name() != 'sqlite':
        options.update(pool_size=2, max_overflow=4, pool_recycle=3600)
    timeouts = {name: value for name, value
                in _TIMEOUTS.get(url.get_backend_name(), {}).items()
                if name not in url.query}
    if timeouts:
        options['connect_args'] = timeouts
    return sa.create_engine(url, **options)


#: What lru_order needs of a row: its id and the LRU order's columns.
_LRU_COLUMNS = (_images.c.id, _images.c.image_id, _images.c.last_accessed)

#: The columns a deleted record is kept with, to be put back.
_STORED_COLUMNS = ('image_id', 'last_accessed', 'last_modified', 'size',
                   'hits', 'checksum')


def _delete_returning(conn, where):
    """Delete the rows matching ``where``; return them.

    PostgreSQL, MariaDB and SQLite return the rows they delete. MySQL does
    not: there they are read, and locked, first, in the same transaction.
    """
    columns = [_images.c[name] for name in _STORED_COLUMNS]
    delete = _images.delete().where(*where)
    if conn.dialect.delete_returning:
        return conn.execute(delete.returning(*columns)).all()
    rows = conn.execute(sa.select(*columns).where(*where)
                        .with_for_update()).all()
    conn.execute(delete)
    return rows


class CentralizedDbDriver(base.Driver):
    """Metadata in Glance's own database, scoped to this node."""

    name = 'centralized_db'
    shared = True

    def __init__(self, conf):
        super().__init__(conf)
        self._engine = None
        self._lru_index = None      # node_rows.has_node_lru_index, once

    @property
    def url(self):
        return self.conf.worker_self_reference_url

    @property
    def engine(self):
        if self._engine is None:
            if not self.conf.database.connection:
                raise exception.ConfigError(
                    '[database] connection is not set; the centralized_db '
                    "driver needs Glance's database")
            try:
                self._engine = make_engine(self.conf.database.connection)
            except (sa_exc.ArgumentError, ImportError, ValueError) as e:
                raise exception.ConfigError(
                    '[database] connection is not a usable SQLAlchemy URL: '
                    '%s' % e)
        return self._engine

    def failure(self, error, doing):
        """A one-line MetadataError for ``error`` met while ``doing``.

        The URL is named without its password.
        """
        safe_url = self.engine.url.render_as_string(hide_password=True)
        # libpq's messages span lines (a hint follows the error): a failed
        # run must stay one line of the log.
        cause = ' '.join(str(getattr(error, 'orig', None) or error).split())
        return exception.MetadataError(
            'cannot %s in the database of [database] connection (%s): %s'
            % (doing, safe_url, cause))

    def _required_url(self):
        """This node's URL; it must be set."""
        if not self.url:
            # A NULL URL would match no node: every file would look
            # untracked to prune.
            raise exception.ConfigError(
                '[DEFAULT] worker_self_reference_url is not set')
        return self.url

    def _node_scope(self):
        """This node's node_reference_id, as a subquery on its URL.

        For the statements that are not by image id: those that read every
        row of this node (a scan of every node's on PostgreSQL, a value or
        not), and restore's inserts.
        """
        return (sa.select(_nodes.c.node_reference_id)
                .where(_nodes.c.node_reference_url == self._required_url())
                .scalar_subquery())

    def check(self):
        if not self.url:
            raise exception.ConfigError(
                '[DEFAULT] worker_self_reference_url is not set; the '
                'centralized_db driver needs the URL that names this node '
                '(the value glance-api uses)')
        self.check_tables()
        self._refuse_near_miss()

    def check_tables(self):
        """Raise unless the database answers and has Glance's two tables.

        Reads the schema only.
        """
        try:
            present = set(sa.inspect(self.engine).get_table_names())
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'read the schema')
        missing = [t.name for t in tables.TABLES if t.name not in present]
        if missing:
            raise exception.MetadataError(
                'the database of [database] connection has no %s table; '
                'run "glance-manage db sync" for a Glance database, or '
                '"cache-maint-manage db-sync" for a standalone one'
                % ' and no '.join(missing))

    def check_writable(self):
        """Raise unless the database user may delete and insert records.

        Prune and clean delete this node's records, and put back the few
        whose files cannot be removed. Statements that match no row,
        rolled back, prove the privileges without changing anything.
        """
        columns = [_images.c[name] for name in _STORED_COLUMNS]
        columns.append(_images.c.node_reference_id)
        statements = (
            ('delete from', _images.delete().where(sa.false())),
            ('insert into', _images.insert().from_select(
                columns, sa.select(*columns).where(sa.false()))),
        )
        try:
            with self.engine.connect() as conn:
                transaction = conn.begin()
                try:
                    for doing, statement in statements:
                        try:
                            conn.execute(statement)
                        except sa_exc.DBAPIError as e:
                            raise self.failure(
                                e, '%s cached_images, as prune and clean '
                                'must,' % doing)
                finally:
                    transaction.rollback()
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'reach the database')

    def node_urls(self):
        """Every node_reference_url registered, in no particular order."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(
                    sa.select(_nodes.c.node_reference_url)).scalars().all()
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'read the registered nodes')

    def _refuse_near_miss(self):
        """Refuse a URL that is another node's but for its spelling.

        Registering it would give this node a second row: its records
        would be invisible to cache-maint, and its files pruned as
        untracked.
        """
        urls = self.node_urls()
        if self.url in urls:
            return
        ours = comparable_url(self.url)
        for registered in urls:
            if comparable_url(registered) == ours:
                raise exception.ConfigError(
                    '[DEFAULT] worker_self_reference_url = %s is not '
                    'registered in node_reference, but %s is: glance-api '
                    'compares these URLs exactly, so set '
                    'worker_self_reference_url to %s, as glance-api has it'
                    % (self.url, registered, registered))

    def scope(self):
        """This node in this database, its password left out."""
        return '%s %s' % (
            self.engine.url.render_as_string(hide_password=True), self.url)

    def identity_problem(self, image_ids):
        """None unless other nodes, and not this one, record these images.

        By image id, through Glance's unique index: glance-api that knows
        this node by another URL records the files of this cache under that
        node, with these very ids.
        """
        image_ids = list(image_ids)
        if not image_ids:
            return None
        try:
            with self.engine.connect() as conn:
                node = node_rows.node_id(conn, self._required_url())
                if node_rows.has_any(conn, node, image_ids):
                    return None
                others = node_rows.has_any(conn, node, image_ids,
                                           others=True)
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'read the cached images')
        if not others:
            return None
        return ('this node (worker_self_reference_url = %s) has no record '
                'in cached_images of the images in its cache, while other '
                'nodes have records of them: glance-api may know this node '
                'by another URL' % self.url)

    def ping(self):
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(_nodes.c.node_reference_id)
                             .limit(1)).all()
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'reach the database')

    def setup(self):
        self._ensure_node()

    def _ensure_node(self):
        """Create this node's node_reference row, as glance-api does."""
        try:
            with self.engine.begin() as conn:
                found = conn.execute(sa.select(_nodes.c.node_reference_id)
                                     .where(_nodes.c.node_reference_url
                                            == self.url)).first()
                if found is None:
                    conn.execute(_nodes.insert().values(
                        node_reference_url=self.url))
                    LOG.warning(
                        'Registered this node as %s: glance-api had not. '
                        'If glance-api uses another '
                        'worker_self_reference_url, cache-maint sees none of '
                        'its records and prunes its files as untracked.',
                        self.url)
        except sa_exc.IntegrityError:
            pass    # glance-api registered it at the same moment
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'register this node')

    def recorded_ids(self):
        """Every id this node has a record for: a node-scoped read.

        On PostgreSQL, a scan of every node's rows: for clean's full
        reconciliation and for clearing the cache only.
        """
        query = sa.select(_images.c.image_id).where(
            _images.c.node_reference_id == self._node_scope())
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query).scalars())
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'read the cached images')

    def records_of(self, image_ids):
        return self._records(self._rows_of(image_ids))

    def lru_order(self, files):
        # The scan's own strings: at 200,000 images, a second copy of every
        # id would cost tens of MB at the peak of a prune.
        return [files[row.image_id].image_id
                for row in self._lru_rows(files, _LRU_COLUMNS)]

    def lru_records(self, files):
        return self._records(self._lru_rows(files))

    def _lru_rows(self, files, columns=node_rows.COLUMNS):
        """This node's rows of the images in ``files``, in LRU order.

        By image id, sorted here; or, where the optional index is there,
        all of this node's rows in one statement that the index orders.
        """
        if not self._has_lru_index():
            return node_rows.lru_sorted(self._rows_of(files, columns))
        try:
            with self.engine.connect() as conn:
                node = node_rows.node_id(conn, self._required_url())
                return [row for row in node_rows.lru_rows(conn, node,
                                                          columns)
                        if row.image_id in files]
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'read the cached images')

    def _has_lru_index(self):
        """Whether the recommended index is there: asked once an engine."""
        if self._lru_index is None:
            try:
                self._lru_index = node_rows.has_node_lru_index(self.engine)
            except sa_exc.SQLAlchemyError as e:
                raise self.failure(e, 'read the indexes of cached_images')
        return self._lru_index

    def list_records(self):
        """Every record of this node, by image id: a node-scoped read."""
        query = (sa.select(*node_rows.COLUMNS)
                 .where(_images.c.node_reference_id == self._node_scope())
                 .order_by(_images.c.image_id))
        try:
            with self.engine.connect() as conn:
                return self._records(conn.execute(query).all())
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'read the cached images')

    def _rows_of(self, image_ids, columns=node_rows.COLUMNS):
        """This node's rows of ``image_ids``, read by id, in no order."""
        try:
            with self.engine.connect() as conn:
                node = node_rows.node_id(conn, self._required_url())
                return node_rows.rows_of(conn, node, image_ids, columns)
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'read the cached images')

    def _records(self, rows):
        """ImageRecords of rows of node_rows.COLUMNS, in their order.

        Values Glance never writes are read as 0, and logged once.
        """
        records, odd = [], []
        for row in rows:
            record = base.ImageRecord.mended((
                row.image_id, _sane_epoch(row.last_accessed),
                _sane_epoch(row.last_modified), row.size, row.hits))
            if (record.size != row.size or record.hits != row.hits
                    or not isinstance(row.last_accessed, datetime.datetime)
                    or not isinstance(row.last_modified, datetime.datetime)):
                odd.append((row.image_id, row.last_accessed,
                            row.last_modified, row.size, row.hits))
            records.append(record)
        if odd:
            self.report_odd(odd)
        return records

    def cached_nodes(self, image_id):
        query = (sa.select(_nodes.c.node_reference_url)
                 .join(_images, _images.c.node_reference_id
                       == _nodes.c.node_reference_id)
                 .where(_images.c.image_id == image_id)
                 .order_by(_nodes.c.node_reference_url))
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query).scalars())
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'read the cached nodes')

    def forget(self, image_ids, recorded_before=None):
        """As the contract says; a batch is one transaction.

        Its statements delete node_rows.IDS_PER_STATEMENT ids each, by
        Glance's unique index, the node's id resolved once per batch.
        """
        image_ids = list(image_ids)
        deleted = []
        scope = []
        if recorded_before is not None:
            # Glance sets last_modified when it records a cached image;
            # MySQL rounds it to the second, so keep a second's margin. One
            # in the future tells nothing of when.
            scope.append(sa.or_(
                _images.c.last_modified < _naive_utc(
                    int(recorded_before) - 1),
                _images.c.last_modified > _naive_utc(
                    time.time() + RECORDED_MARGIN)))
        try:
            with self.all_or_nothing(deleted):
                for start in range(0, len(image_ids), IDS_PER_DELETE):
                    deleted += self._forget_batch(
                        image_ids[start:start + IDS_PER_DELETE], scope)
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'delete cached image records')
        return deleted

    def _forget_batch(self, image_ids, scope):
        """Delete this node's records of ``image_ids``: all or none."""
        deleted = []
        with self.engine.begin() as conn:
            node = node_rows.node_id(conn, self._required_url())
            if node is None:
                return deleted
            for ids in node_rows.batches(image_ids):
                where = (_images.c.image_id.in_(ids),
                         _images.c.node_reference_id == node, *scope)
                deleted += [base.StoredRecord(row.image_id, tuple(row))
                            for row in _delete_returning(conn, where)]
        return deleted

    def restore(self, records):
        """Insert each record back, one short transaction each.

        Rare (files that could not be unlinked), so one at a time: a record
        glance-api made again meanwhile is a unique-key conflict, skipped.
        """
        for record in records:
            values = dict(zip(_STORED_COLUMNS, record.row))
            try:
                with self.engine.begin() as conn:
                    conn.execute(_images.insert().values(
                        node_reference_id=self._node_scope(), **values))
            except sa_exc.IntegrityError:
                continue
            except sa_exc.SQLAlchemyError as e:
                raise self.failure(e, 'put back cached image records')

    def sync_schema(self):
        """Create Glance's two tables in a standalone database.

        Returns the names created. A database Glance manages is refused:
        its schema is changed by ``glance-manage db sync`` only.
        """
        try:
            present = set(sa.inspect(self.engine).get_table_names())
            missing = [t for t in tables.TABLES if t.name not in present]
            if missing and present & set(tables.GLANCE_MARKERS):
                raise exception.ConfigError(
                    'the database of [database] connection is a Glance '
                    'database without the cache tables; upgrade it with '
                    '"glance-manage db sync" instead')
            tables.metadata.create_all(self.engine, tables=missing)
        except sa_exc.SQLAlchemyError as e:
            raise self.failure(e, 'create the cache tables')
        return [t.name for t in missing]

    def close(self):
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        # Asked again with the next engine: an operator may have created
        # or dropped the index meanwhile (a reload closes the driver).
        self._lru_index = None
