"""The shared cache database as a whole: its nodes, the recommended index.

With ``centralized_db``, every glance-api node of a cloud keeps its records
in one ``cached_images`` table. The driver (``drivers/centralized_db.py``)
reads and writes one node's rows; this module looks at the table as a whole,
for the operator: which nodes have rows and how many (``cache-maint-manage
nodes``, to find the nodes that are gone), and the index cache-maint
recommends but never imposes (``cache-maint-manage db-index``, the "Node
index" upgrade check). Nothing here changes the database, except
``create_index`` when an operator asks for it; no row is ever deleted.
"""

import collections
import datetime
import time

from oslo_log import log as logging
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy import pool as sa_pool

from cache_maint.drivers import glance_tables as tables
from cache_maint import exception

LOG = logging.getLogger(__name__)

INDEX_NAME = tables.NODE_LRU_INDEX_NAME
INDEX_COLUMNS = tuple(tables.NODE_LRU_INDEX_COLUMNS)
TABLE = tables.cached_images.name

#: Past either, the index pays for the writes it costs glance-api: the
#: "Node index" upgrade check warns when it is absent.
MANY_NODES = 10
MANY_ROWS = 100000

#: Seconds the index's creation waits for MariaDB's metadata lock on the
#: table: while an online ALTER waits for it, every new statement on the
#: table queues behind it, glance-api's included. Better to fail and be
#: run again at a quieter moment.
MYSQL_LOCK_WAIT = 10

#: Seconds to connect for the index's creation (which itself may take
#: long: it has no statement timeout).
CONNECT_TIMEOUT = 10


class Node(collections.namedtuple(
        'Node', 'node_reference_id node_reference_url records bytes '
                'newest_last_accessed this_node')):
    """A node_reference row and what cached_images holds of it."""

    def to_dict(self):
        return self._asdict()


class IndexState(collections.namedtuple(
        'IndexState', 'present named valid columns equivalents by_node')):
    """What cached_images has of the recommended index.

    ``named``: an index of that name exists, on ``columns`` (its own),
    ``valid`` unless PostgreSQL left it half built. ``equivalents``: the
    other indexes that start with the recommended columns, which serve as
    well. ``present``: one of them, or the named one, is usable.
    ``by_node``: the other usable indexes led by node_reference_id (such as
    the one InnoDB makes for the foreign key), which find a node's rows,
    though not in LRU order.
    """

    @property
    def conflicting(self):
        """An index has the name, on other columns: it is not ours."""
        return self.named and tuple(self.columns[:len(INDEX_COLUMNS)]) != (
            INDEX_COLUMNS)

    def to_dict(self):
        return {'index': INDEX_NAME, 'table': TABLE,
                'columns': list(INDEX_COLUMNS), 'present': self.present,
                'named': self.named, 'valid': self.valid,
                'equivalents': list(self.equivalents),
                'node_reference_id_indexes': list(self.by_node)}


def describe_index():
    """The recommended index, as the messages name it."""
    return '%s on %s (%s)' % (INDEX_NAME, TABLE, ', '.join(INDEX_COLUMNS))


def _epoch(moment):
    """A naive UTC datetime as epoch seconds; None for no datetime."""
    if not isinstance(moment, datetime.datetime):
        return None     # no row, or MySQL's zero date
    try:
        return moment.replace(tzinfo=datetime.timezone.utc).timestamp()
    except (OverflowError, ValueError):
        return None


class SharedDatabase:
    """A centralized_db driver's cache tables, all nodes together.

    This node, the driver's ``worker_self_reference_url``, is marked.
    """

    def __init__(self, driver):
        self.driver = driver
        self.engine = driver.engine
        self.node_url = driver.url

    @property
    def backend(self):
        return self.engine.url.get_backend_name()

    def check_tables(self):
        """Raise unless Glance's two cache tables are there."""
        self.driver.check_tables()

    # -- The nodes -----------------------------------------------------

    def nodes(self):
        """Every node_reference row, with its records; sorted by URL.

        One GROUP BY over both tables (a LEFT JOIN: a node without records
        is listed too). It reads every row of cached_images: an operator's
        question, not a node's routine.
        """
        nodes, images = tables.node_reference.c, tables.cached_images.c
        query = (sa.select(
            nodes.node_reference_id, nodes.node_reference_url,
            sa.func.count(images.id).label('records'),
            sa.func.coalesce(sa.func.sum(images.size), 0).label('bytes'),
            sa.func.max(images.last_accessed).label('newest'))
            .select_from(tables.node_reference.outerjoin(
                tables.cached_images,
                images.node_reference_id == nodes.node_reference_id))
            .group_by(nodes.node_reference_id, nodes.node_reference_url))
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
        except sa_exc.SQLAlchemyError as e:
            raise self.driver.failure(e, 'read the nodes and their records')
        # Sorted here: the servers' collations order URLs differently.
        return sorted((Node(row.node_reference_id, row.node_reference_url,
                            int(row.records), int(row.bytes),
                            _epoch(row.newest),
                            row.node_reference_url == self.node_url)
                       for row in rows),
                      key=lambda node: node.node_reference_url)

    def size_estimate(self):
        """(nodes, rows of cached_images or None), cheaply.

        The rows are the server's own estimate (PostgreSQL's
        ``pg_class.reltuples``, MariaDB's ``information_schema``), never a
        count: None where there is none (a table PostgreSQL has not yet
        analysed, SQLite).
        """
        count_nodes = sa.select(sa.func.count()).select_from(
            tables.node_reference)
        try:
            with self.engine.connect() as conn:
                nodes = conn.execute(count_nodes).scalar_one()
                rows = None
                if self.backend == 'postgresql':
                    rows = conn.execute(sa.text(
                        'SELECT reltuples FROM pg_catalog.pg_class WHERE oid '
                        '= to_regclass(:table)'), {'table': TABLE}).scalar()
                elif self.backend == 'mysql':
                    rows = conn.execute(sa.text(
                        'SELECT TABLE_ROWS FROM information_schema.TABLES '
                        'WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '
                        ':table'), {'table': TABLE}).scalar()
        except sa_exc.SQLAlchemyError as e:
            raise self.driver.failure(e, 'estimate the size of %s' % TABLE)
        # reltuples is -1 for a table never vacuumed nor analysed.
        rows = None if rows is None or rows < 0 else int(rows)
        return int(nodes), rows

    # -- The recommended index -----------------------------------------

    def index_state(self):
        """An IndexState of cached_images, read from the schema only."""
        try:
            indexes = sa.inspect(self.engine).get_indexes(TABLE)
        except sa_exc.NoSuchTableError:
            raise exception.MetadataError(
                'the database of [database] connection has no %s table'
                % TABLE)
        except sa_exc.SQLAlchemyError as e:
            raise self.driver.failure(e, 'read the indexes of %s' % TABLE)
        named, valid, columns, equivalents, by_node = False, False, (), [], []
        for index in indexes:
            options = index.get('dialect_options', {})
            usable = not options.get('postgresql_invalid') and not (
                options.get('postgresql_where'))
            own = tuple(column or '(an expression)'
                        for column in index['column_names'])
            if index['name'] == INDEX_NAME:
                named, valid, columns = True, usable, own
            elif usable and own[:len(INDEX_COLUMNS)] == INDEX_COLUMNS:
                equivalents.append(index['name'])
            elif usable and own[:1] == INDEX_COLUMNS[:1]:
                by_node.append(index['name'])
        state = IndexState(False, named, valid, columns, sorted(equivalents),
                           sorted(by_node))
        return state._replace(present=bool(
            (named and valid and not state.conflicting) or equivalents))

    def create_index(self):
        """Create the recommended index, online; (IndexState, created).

        Nothing is done when it, or an equivalent, is there already.
        PostgreSQL builds it ``CONCURRENTLY`` (glance-api's writes go on;
        a half-built one, left by an interrupted build, is dropped and
        built again); MariaDB and MySQL ``ALGORITHM=INPLACE, LOCK=NONE``,
        waiting at most MYSQL_LOCK_WAIT seconds for the table's metadata
        lock.
        """
        self.check_tables()
        state = self.index_state()
        if state.present:
            return state, False
        if state.conflicting:
            raise exception.MetadataError(
                'an index named %s exists on %s (%s), not on the recommended '
                'columns: it is not cache-maint\'s; drop it or rename it '
                'first' % (INDEX_NAME, TABLE, ', '.join(state.columns)))
        started = time.monotonic()
        # A connection of its own: no statement timeout (a build on a large
        # table takes long), and autocommit, which CONCURRENTLY needs.
        ddl_engine = sa.create_engine(
            self.engine.url, poolclass=sa_pool.NullPool,
            isolation_level='AUTOCOMMIT',
            connect_args={} if self.backend == 'sqlite'
            else {'connect_timeout': CONNECT_TIMEOUT})
        try:
            with ddl_engine.connect() as conn:
                for statement in self._create_statements(state):
                    if not statement.startswith('SET '):
                        LOG.info('Creating the recommended index: %s',
                                 statement)
                    conn.execute(sa.text(statement))
        except sa_exc.SQLAlchemyError as e:
            raise self.driver.failure(e, 'create the index %s' % INDEX_NAME)
        finally:
            ddl_engine.dispose()
        LOG.info('Created the index %s in %.1f s', describe_index(),
                 time.monotonic() - started)
        state = self.index_state()
        if not state.present:
            raise exception.MetadataError(
                'the index %s was created but is not usable; run '
                '"cache-maint-manage db-index --create" again'
                % INDEX_NAME)
        return state, True

    def _create_statements(self, state):
        columns = ', '.join(INDEX_COLUMNS)
        if self.backend == 'postgresql':
            statements = ['SET statement_timeout = 0']
            if state.named:
                # Left invalid by a build that did not finish.
                statements.append('DROP INDEX CONCURRENTLY IF EXISTS %s'
                                  % INDEX_NAME)
            return statements + ['CREATE INDEX CONCURRENTLY IF NOT EXISTS '
                                 '%s ON %s (%s)' % (INDEX_NAME, TABLE,
                                                    columns)]
        if self.backend == 'mysql':
            return ['SET SESSION lock_wait_timeout = %d' % MYSQL_LOCK_WAIT,
                    'CREATE INDEX %s ON %s (%s) ALGORITHM=INPLACE LOCK=NONE'
                    % (INDEX_NAME, TABLE, columns)]
        return ['CREATE INDEX IF NOT EXISTS %s ON %s (%s)'
                % (INDEX_NAME, TABLE, columns)]
