"""Many nodes on one database: one node's list, clean and prune as N grows.

    python -m bench.nodes            # N = 10, 100, 1000 nodes of 2000 images
    python -m bench.nodes --quick    # N = 10, 30 of 200: correctness (CI)

For each server (PostgreSQL, MariaDB) and each N, a scratch database gets
Glance's own schema (``tests.support.glance_schema``) and N nodes of M
images each, in bulk (PostgreSQL ``COPY``, MariaDB multi-row ``INSERT``),
their rows interleaved as nodes cache over time, their image ids drawn from
one catalogue (a popular image is cached on many nodes). One node (three
with ``--quick``) also has a real cache directory holding its M files, and
10 records whose file is gone. On that node the real ``cache-maint-manage``
runs ``list``, ``clean`` and ``prune`` (to half: M/2 victims), round after
round (the evicted images are put back between rounds); the first round
after a build may read every row once (a first full reconciliation). Then
Glance 33's own ``ImageCache.prune()`` (``bench.glance_side``) prunes the
same node on the same database. All of it again with the optional index
(``cache-maint-manage db-index --create``, timed), from a fresh state.

What is reported, per operation:

* database time: the time the command's process spent in the DBAPI's
  ``cursor.execute`` (every statement, its rows fetched), summed by
  SQLAlchemy event hooks in that process (``probe``: the real command's
  ``main``, or ``bench.glance_side``'s, run under the hooks);
* rows read from ``cached_images``, from the server's own statistics:
  PostgreSQL's ``pg_stat_user_tables`` (``seq_tup_read + idx_tup_fetch``,
  and the index entries read, ``idx_tup_read`` of its indexes, which an
  index-only scan reads without fetching rows), read once the command's
  backends have exited and the counters no longer move; MariaDB's
  ``Handler_read%`` counters of the command's own sessions, read by the
  probe around each statement whose SQL names ``cached_images`` (MariaDB
  counts per session, not per table: Glance's statements, which join
  ``node_reference``, count its rows too), beside the server-wide counters
  (``SHOW GLOBAL STATUS``: every statement of every table and client
  meanwhile, node_reference's one row per node and the probe's own
  ``SHOW SESSION STATUS`` included);
* the run's own duration (``--show-run``) for clean and prune.

Timings are reported, never asserted; correctness is checked on every run:
each node with a directory ends with exactly its newest M/2 images, files
and records, and no other node's records change. The targets of issue 17
are printed as met or missed (not with ``--quick``).
"""

import argparse
import configparser
import dataclasses
import datetime
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid

import sqlalchemy as sa

from bench import measure
from bench import tables
from tests.support import caches
from tests.support import databases
from tests.support import glance_schema
from tests.support import plans

SERVERS = ('postgresql', 'mysql')
SERVER_NAMES = {'postgresql': 'PostgreSQL', 'mysql': 'MariaDB'}

FULL = {'nodes': (10, 100, 1000), 'images': 2000, 'rounds': 2,
        'directories': 1}
QUICK = {'nodes': (10, 30), 'images': 200, 'rounds': 1, 'directories': 3}

#: Records of a node with a directory whose file is gone, at build.
STALE = 10
#: Failed and stalled downloads clean finds on each round.
JUNK = 5
#: Rows per multi-row INSERT, and per transaction, on MariaDB.
INSERT_ROWS = 5000
COMMIT_ROWS = 200000
#: Seconds over which the accesses of the build spread.
HISTORY = plans.HISTORY
#: A prime: image j of node i is catalogue entry (a_i * j + b_i) mod it.
CATALOGUE = 4001


# -- The probe: the real command, its statements timed -------------------


class Probe:
    """Database time and, on MariaDB, rows read, of this process.

    On MariaDB the session's ``Handler_read%`` counters are read before and
    after each statement (outside its timing), and what a statement read
    is counted for cached_images if its SQL names that table: the counters
    are the session's, every table's, and a command also reads
    node_reference (one row per node, to check this node's URL against
    the others').
    """

    def __init__(self):
        self.seconds = 0.0
        self.statements = 0
        self.handler_reads = 0          # by statements on cached_images
        self.other_handler_reads = 0    # by the others
        self._read_cost = None

    def install(self):
        sa.event.listen(sa.engine.Engine, 'before_cursor_execute',
                        self._before)
        sa.event.listen(sa.engine.Engine, 'after_cursor_execute',
                        self._after)

    def _before(self, conn, cursor, statement, parameters, context,
                executemany):
        dbapi_connection = conn.connection.dbapi_connection
        if self._is_mysql(dbapi_connection):
            conn.info.setdefault('bench_reads', []).append(
                self._handler_reads(dbapi_connection))
        conn.info.setdefault('bench_started', []).append(
            time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context,
               executemany):
        self.seconds += time.perf_counter() - conn.info['bench_started'].pop()
        self.statements += 1
        dbapi_connection = conn.connection.dbapi_connection
        if self._is_mysql(dbapi_connection):
            read = (self._handler_reads(dbapi_connection)
                    - conn.info['bench_reads'].pop() - self._cost(
                        dbapi_connection))
            if 'cached_images' in statement:
                self.handler_reads += max(0, read)
            else:
                self.other_handler_reads += max(0, read)

    @staticmethod
    def _is_mysql(dbapi_connection):
        return type(dbapi_connection).__module__.startswith(
            ('pymysql', 'MySQLdb'))

    @staticmethod
    def _handler_reads(dbapi_connection):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
            return sum(int(value) for _name, value in cursor.fetchall())
        finally:
            cursor.close()

    def _cost(self, dbapi_connection):
        """What reading the counters adds to them, seen by the next read."""
        if self._read_cost is None:
            reads = [self._handler_reads(dbapi_connection) for _ in range(3)]
            self._read_cost = reads[2] - reads[1]
        return self._read_cost


def probe_main(argv):
    """``probe --out FILE manage|glance ARGS``: run it under the probe."""
    parser = argparse.ArgumentParser(prog='python -m bench.nodes probe')
    parser.add_argument('--out', required=True)
    parser.add_argument('target', choices=('manage', 'glance'))
    parser.add_argument('args', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    probe = Probe()
    probe.install()
    started = time.perf_counter()
    try:
        if args.target == 'manage':
            from cache_maint.cmd import manage
            manage.main(args.args)
        else:
            from bench import glance_side
            sys.argv = ['bench.glance_side'] + args.args
            glance_side.main()
    finally:
        with open(args.out, 'w') as f:
            json.dump({'seconds': probe.seconds,
                       'statements': probe.statements,
                       'handler_reads': probe.handler_reads,
                       'other_handler_reads': probe.other_handler_reads,
                       'wall': time.perf_counter() - started}, f)


# -- The database: built in bulk -----------------------------------------


def _naive(epoch):
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).replace(tzinfo=None)


class Layout:
    """N nodes of M images, image j of node i computed, never stored.

    Node 0 is this node (``caches.NODE_URL``); the first ``directories``
    nodes have real cache directories, their images planned in full.
    """

    def __init__(self, nodes, images, directories, now):
        self.nodes, self.images = nodes, images
        rnd = random.Random(CATALOGUE)
        self.catalogue = [plans.new_id(rnd) for _ in range(CATALOGUE)]
        assert len(set(self.catalogue)) == CATALOGUE
        self.start = int(now) - HISTORY - plans.DAY
        self.urls = [caches.NODE_URL] + [
            'http://glance-api-%04d.example.org:9292' % i
            for i in range(1, nodes)]
        self.planned = {i: self._plan(i) for i in range(min(directories,
                                                            nodes))}

    def _image_id(self, node, j):
        a = 1 + (node * 7919) % (CATALOGUE - 1)
        return self.catalogue[(a * j + node * 104729) % CATALOGUE]

    def _row(self, node, j):
        """(image_id, last_accessed epoch, size, hits) of a node's image."""
        accessed = self.start + (node * 7919 + j * 104729) % HISTORY
        return (self._image_id(node, j), accessed,
                plans.MIN_SIZE + (node * 31 + j * 17) % (
                    plans.MAX_SIZE - plans.MIN_SIZE), j % 7)

    def _plan(self, node):
        """The Images of a node with a directory: distinct access times."""
        spacing = HISTORY // self.images
        order = sorted(range(self.images),
                       key=lambda j: (j * 2654435761 + node) % (1 << 32))
        images = []
        for rank, j in enumerate(order):
            image_id, _accessed, size, hits = self._row(node, j)
            accessed = float(self.start + rank * spacing)
            images.append(plans.Image(image_id, size, accessed,
                                      time.time() - 3600, hits))
        by_j = {image.image_id: image for image in images}
        return [by_j[self._image_id(node, j)] for j in range(self.images)]

    def rows(self, node_ids):
        """Every row, nodes interleaved, as they cache over time.

        Each as (image_id, last_accessed, size, hits, node_reference_id).
        """
        for j in range(self.images):
            for node in range(self.nodes):
                if node in self.planned:
                    image = self.planned[node][j]
                    yield (image.image_id, image.last_accessed, image.size,
                           image.hits, node_ids[node])
                else:
                    image_id, accessed, size, hits = self._row(node, j)
                    yield image_id, accessed, size, hits, node_ids[node]


def _pg_connect(url):
    import psycopg
    url = sa.engine.make_url(url)
    return psycopg.connect(host=url.host, port=url.port or 5432,
                           user=url.username, password=url.password or '',
                           dbname=url.database)


def _stamp(epoch):
    """A naive UTC DATETIME, as both servers read it."""
    return time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(epoch))


def build(kind, url, layout):
    """Glance's schema, the nodes and their rows; {node: id}."""
    glance_schema.create_central_tables(url)
    engine = sa.create_engine(url)
    nodes = glance_schema.node_reference
    try:
        with engine.begin() as conn:
            conn.execute(nodes.insert(), [{'node_reference_url': u}
                                          for u in layout.urls])
            ids = dict(conn.execute(sa.select(
                nodes.c.node_reference_url, nodes.c.node_reference_id)).all())
    finally:
        engine.dispose()
    node_ids = [ids[u] for u in layout.urls]
    rows = layout.rows(node_ids)
    stale = [(str(uuid.uuid4()), layout.start + HISTORY, 1024, 0,
              node_ids[node]) for node in layout.planned
             for _ in range(STALE)]
    if kind == 'postgresql':
        _copy_postgresql(url, rows, stale)
    else:
        _insert_mysql(url, rows, stale)
    return node_ids


def _copy_postgresql(url, rows, stale):
    columns = ('image_id, last_accessed, last_modified, size, hits, '
               'node_reference_id')
    with _pg_connect(url) as conn:
        with conn.cursor() as cursor:
            with cursor.copy('COPY cached_images (%s) FROM STDIN'
                             % columns) as copy:
                for batch in _batches(rows, stale, INSERT_ROWS):
                    lines = []
                    for image_id, accessed, size, hits, node in batch:
                        stamp = _stamp(accessed)
                        lines.append('%s\t%s\t%s\t%d\t%d\t%d\n' % (
                            image_id, stamp, stamp, size, hits, node))
                    copy.write(''.join(lines))
        conn.commit()
        conn.autocommit = True
        conn.execute('VACUUM ANALYZE cached_images')
        conn.execute('VACUUM ANALYZE node_reference')


def _batches(rows, extra, size):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    yield batch + list(extra)


def _insert_mysql(url, rows, stale):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            cursor = conn.connection.cursor()
            cursor.execute('SET SESSION unique_checks = 0, '
                           'foreign_key_checks = 0')
            written = 0
            for batch in _batches(rows, stale, INSERT_ROWS):
                values = []
                for image_id, accessed, size, hits, node in batch:
                    stamp = _stamp(accessed)
                    values.append((image_id, stamp, stamp, size, hits, node))
                cursor.executemany(
                    'INSERT INTO cached_images (image_id, last_accessed, '
                    'last_modified, size, hits, node_reference_id) VALUES '
                    '(%s, %s, %s, %s, %s, %s)', values)
                written += len(batch)
                if written >= COMMIT_ROWS:
                    conn.connection.commit()
                    written = 0
            conn.connection.commit()
            cursor.execute('ANALYZE TABLE cached_images, node_reference')
            cursor.fetchall()
            cursor.close()
    finally:
        engine.dispose()


# -- The server's own statistics ------------------------------------------


class Counters:
    """Rows read from cached_images, as the server counts them."""

    def __init__(self, kind, url):
        self.kind = kind
        self.engine = sa.create_engine(url, isolation_level='AUTOCOMMIT',
                                       poolclass=sa.pool.NullPool)

    def read(self):
        """(rows, index entries) now, or (global handler reads, None)."""
        with self.engine.connect() as conn:
            if self.kind == 'mysql':
                return sum(int(value) for _name, value in conn.execute(
                    sa.text("SHOW GLOBAL STATUS LIKE 'Handler_read%'"))), None
            self._quiet(conn)
            previous = None
            deadline = time.monotonic() + 30
            while True:
                conn.execute(sa.text('SELECT pg_stat_clear_snapshot()'))
                now = tuple(conn.execute(sa.text(
                    'SELECT t.seq_tup_read + coalesce(t.idx_tup_fetch, 0), '
                    '(SELECT coalesce(sum(i.idx_tup_read), 0) FROM '
                    'pg_stat_user_indexes i WHERE i.relid = t.relid) FROM '
                    "pg_stat_user_tables t WHERE t.relname = 'cached_images'"
                )).one())
                if now == previous or time.monotonic() > deadline:
                    return int(now[0]), int(now[1])
                previous = now
                time.sleep(0.1)

    @staticmethod
    def _quiet(conn):
        """Wait for the other clients of the database to end.

        A backend flushes its counters as it exits.
        """
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and conn.execute(sa.text(
                'SELECT count(*) FROM pg_stat_activity WHERE datname = '
                "current_database() AND pid <> pg_backend_pid() AND "
                "backend_type IN ('client backend', 'parallel worker')"
        )).scalar():
            time.sleep(0.05)

    def close(self):
        self.engine.dispose()


# -- One node with a cache directory --------------------------------------


@dataclasses.dataclass
class Row:
    server: str
    nodes: int
    index: bool
    round: int
    operation: str
    db_ms: float = None
    statements: int = None
    rows: int = None
    index_entries: int = None
    global_rows: int = None
    run_s: float = None


class Node:
    """A node with a real cache directory, its images planned."""

    def __init__(self, bench, number, images, url, node_id):
        self.bench = bench
        self.number, self.images, self.url = number, images, url
        self.node_id = node_id
        self.cache = caches.FileCache(os.path.join(bench.dbdir,
                                                   'node-%d' % number))
        self.cache.add_planned(images, record=False)
        self.max_size, self.survivors = plans.limit_keeping(
            images, len(images) // 2)
        self.victims = [i for i in images
                        if i.image_id not in self.survivors]
        self.phase = None

    def configure(self, phase):
        """A configuration with a fresh state: a first run again."""
        self.phase = phase
        parser = configparser.ConfigParser(interpolation=None)
        parser['DEFAULT'] = {
            'image_cache_dir': self.cache.path,
            'image_cache_driver': 'centralized_db',
            'worker_self_reference_url': self.url,
            'image_cache_max_size': str(self.max_size),
            'image_cache_stall_time': '86400',
            'cache_clean_interval': '0', 'cache_prune_interval': '0'}
        parser['database'] = {'connection': self.bench.url}
        parser['maintenance'] = {'state_dir': os.path.join(
            self.bench.dbdir, 'state-%d-%s' % (self.number, phase))}
        self.config = os.path.join(self.bench.dbdir, 'node-%d-%s.conf'
                                   % (self.number, phase))
        with open(self.config, 'w') as f:
            parser.write(f)

    def add_junk(self):
        caches.write_files(os.path.join(self.cache.path, 'invalid'),
                           plans.junk(JUNK, seed=None, age=3600))
        caches.write_files(os.path.join(self.cache.path, 'incomplete'),
                           plans.junk(JUNK, seed=None, age=2 * plans.DAY))

    def check(self, what):
        """Exactly the newest half left: files and records."""
        rows = self.bench.node_image_ids(self.node_id)
        if self.cache.images() != self.survivors:
            raise Wrong('%s: node %d kept other files than its newest '
                        'images' % (what, self.number))
        if sorted(rows) != sorted(self.survivors):
            raise Wrong('%s: node %d has %d records, not exactly those of '
                        'its %d newest images' % (
                            what, self.number, len(rows),
                            len(self.survivors)))
        if self.cache.listdir('invalid') or self.cache.listdir('incomplete'):
            raise Wrong('%s: node %d kept failed or stalled downloads'
                        % (what, self.number))

    def restore(self):
        """The evicted images cached again: files, then records."""
        caches.write_files(self.cache.path, self.victims)
        self.bench.insert(self.node_id, self.victims)


class Wrong(Exception):
    """A node did not end as it must: no timing of the run means much."""


class Bench:
    def __init__(self, workdir, sizes):
        self.workdir = workdir
        self.sizes = sizes
        self.rows = []
        self.now = time.time()

    # The database of one case.

    def node_image_ids(self, node_id):
        images = glance_schema.cached_images
        with self.engine.connect() as conn:
            return conn.execute(sa.select(images.c.image_id).where(
                images.c.node_reference_id == node_id)).scalars().all()

    def others(self, node_ids):
        images = glance_schema.cached_images
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(
                images.c.node_reference_id.not_in(node_ids))).scalar()

    def insert(self, node_id, images):
        with self.engine.begin() as conn:
            conn.execute(glance_schema.cached_images.insert(), [
                {'image_id': i.image_id,
                 'last_accessed': _naive(i.last_accessed),
                 'last_modified': _naive(i.last_accessed), 'size': i.size,
                 'hits': i.hits, 'node_reference_id': node_id}
                for i in images])

    # Measuring one command.

    def _probe(self, target, args):
        out = os.path.join(self.dbdir, 'probe.json')
        before = self.counters.read()
        child = measure.checked(measure.run_child(
            [sys.executable, '-m', 'bench.nodes', 'probe', '--out', out,
             target] + list(args)), '%s %s' % (target, ' '.join(args)))
        after = self.counters.read()
        with open(out) as f:
            probed = json.load(f)
        return child, probed, before, after

    def measure(self, node, operation, index, round_number, target='manage',
                args=None):
        args = args or ['--config-file', node.config] + operation.split() + (
            ['--show-run'] if operation in ('clean', 'prune') else [])
        child, probed, before, after = self._probe(target, args)
        row = Row(SERVER_NAMES[self.kind], self.layout.nodes, index,
                  round_number, operation, db_ms=1000 * probed['seconds'],
                  statements=probed['statements'])
        if self.kind == 'postgresql':
            row.rows = after[0] - before[0]
            row.index_entries = after[1] - before[1]
        else:
            row.rows = probed['handler_reads']
            row.global_rows = after[0] - before[0]
        if operation in ('clean', 'prune'):
            row.run_s = json.loads(child.stdout)['duration']
        elif target == 'glance':
            row.run_s = json.loads(child.stdout.strip().splitlines()[-1])[
                'seconds'][0]
        else:
            row.run_s = probed['wall']
        if node.number == 0:
            self.rows.append(row)
        return child

    # One case: a server, N nodes.

    def case(self, kind, count):
        self.kind = kind
        layout = self.layout = Layout(count, self.sizes['images'],
                                      self.sizes['directories'], self.now)
        self.dbdir = tempfile.mkdtemp(prefix='%s-%d-' % (kind, count),
                                      dir=self.workdir)
        self.url = databases.create_database(kind)
        # No pool: an idle connection of the bench's would be a backend
        # the statistics wait for.
        self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        self.counters = Counters(kind, self.url)
        try:
            print('... %s, %d nodes of %d images: building' % (
                SERVER_NAMES[kind], count, layout.images), file=sys.stderr,
                flush=True)
            started = time.monotonic()
            node_ids = build(kind, self.url, layout)
            nodes = [Node(self, number, images, layout.urls[number],
                          node_ids[number])
                     for number, images in sorted(layout.planned.items())]
            print('... built in %.0f s' % (time.monotonic() - started),
                  file=sys.stderr, flush=True)
            others = self.others([node.node_id for node in nodes])
            for index in (False, True):
                if index:
                    self.create_index(nodes[0])
                self.rounds(nodes, index, others)
                self.glance_prune(nodes[0], index)
        finally:
            self.counters.close()
            self.engine.dispose()
            databases.drop_database(self.url)
            shutil.rmtree(self.dbdir, ignore_errors=True)

    def rounds(self, nodes, index, others):
        phase = 'index' if index else 'plain'
        for node in nodes:
            node.configure(phase)
        for round_number in range(1, self.sizes['rounds'] + 1):
            what = '%s, %d nodes, %s, round %d' % (
                SERVER_NAMES[self.kind], self.layout.nodes,
                'with the index' if index else 'without the index',
                round_number)
            print('... %s' % what, file=sys.stderr, flush=True)
            for node in nodes:
                node.add_junk()
                for operation in ('list', 'clean', 'prune'):
                    self.measure(node, operation, index, round_number)
                node.check(what)
            if self.others([node.node_id for node in nodes]) != others:
                raise Wrong("%s: other nodes' records changed" % what)
            for node in nodes:
                node.restore()

    def create_index(self, node):
        child = self.measure(node, 'db-index --create', True, 0)
        if 'Created the index' not in child.stdout:
            raise Wrong('db-index --create did not create the index: %s'
                        % child.stdout)

    def glance_prune(self, node, index):
        """Glance 33's own prune of the same node, on the same database."""
        url = sa.engine.make_url(self.url)
        if self.kind == 'postgresql':
            # psycopg2: the driver Glance's oslo.db uses.
            url = url.set(drivername='postgresql+psycopg2')
        self.measure(node, 'Glance prune', index, 0, target='glance', args=[
            'prune', '--driver', 'centralized_db', '--cache-dir',
            node.cache.path, '--connection',
            url.render_as_string(hide_password=False), '--node-url',
            node.url, '--max-size', str(node.max_size)])
        if node.cache.images() != node.survivors:
            raise Wrong("Glance's prune did not leave the newest images")
        node.restore()


# -- The report ------------------------------------------------------------


def table(rows):
    header = ('server', 'nodes', 'index', 'round', 'operation', 'DB ms',
              'statements', 'rows read', 'index entries', 'global reads',
              'run s')
    fmt = tables.fmt
    return tables.grid(header, [(
        r.server, str(r.nodes), 'yes' if r.index else 'no',
        str(r.round) if r.round else '-', r.operation, fmt(r.db_ms, '%.1f'),
        str(r.statements), fmt(r.rows, '%d'), fmt(r.index_entries, '%d'),
        fmt(r.global_rows, '%d'), fmt(r.run_s, '%.3f')) for r in rows])


def _last_round(rows, server, nodes, index, operation):
    found = [r for r in rows if (r.server, r.nodes, r.index, r.operation)
             == (server, nodes, index, operation)]
    return max(found, key=lambda r: r.round) if found else None


def ratios(rows, small, large):
    """Rows read and database time at ``large`` nodes over ``small``."""
    lines = []
    for server in SERVER_NAMES.values():
        for index in (False, True):
            for operation in ('list', 'clean', 'prune', 'Glance prune'):
                one = _last_round(rows, server, small, index, operation)
                other = _last_round(rows, server, large, index, operation)
                if one is None or other is None:
                    continue
                lines.append((
                    server, 'yes' if index else 'no', operation,
                    '%d' % one.rows, '%d' % other.rows,
                    tables.fmt(other.rows / one.rows if one.rows else None,
                               '%.2fx'),
                    '%.1f' % one.db_ms, '%.1f' % other.db_ms,
                    tables.fmt(other.db_ms / one.db_ms if one.db_ms
                               else None, '%.2fx')))
    return tables.grid(
        ('server', 'index', 'operation (last round)',
         'rows at %d' % small, 'rows at %d' % large, 'ratio',
         'DB ms at %d' % small, 'DB ms at %d' % large, 'ratio'), lines)


def targets(rows, small, large, victims):
    """Issue 17's targets: (what, measured, met)."""
    found = []
    for server in SERVER_NAMES.values():
        for operation in ('list', 'clean', 'prune'):
            one = _last_round(rows, server, small, False, operation)
            other = _last_round(rows, server, large, False, operation)
            if one is None or other is None or not one.rows:
                continue
            ratio = other.rows / one.rows
            found.append(('%s %s: rows read at %d <= 1.5x at %d' % (
                server, operation, large, small), '%.2fx (%d / %d)' % (
                    ratio, other.rows, one.rows), ratio <= 1.5))
    prune = _last_round(rows, 'PostgreSQL', large, False, 'prune')
    if prune is not None:
        found.append(('PostgreSQL prune of %d victims at %d nodes < 100 ms '
                      'DB' % (victims, large),
                      '%.1f ms' % prune.db_ms, prune.db_ms < 100))
    return found


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['probe']:
        return probe_main(argv[1:])
    parser = argparse.ArgumentParser(prog='python -m bench.nodes',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='N = 10 and 30 of 200 images, one round, three '
                             'nodes with a directory: correctness, timings '
                             'not judged')
    parser.add_argument('--server', action='append', choices=SERVERS,
                        help='only this server (repeatable); both by default')
    parser.add_argument('--nodes', default=None,
                        help='comma-separated node counts, instead of the '
                             "mode's")
    parser.add_argument('--workdir', default=None,
                        help='where to build the caches (default: a new '
                             'temporary directory, removed afterwards)')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)

    sizes = dict(QUICK if args.quick else FULL)
    if args.nodes:
        sizes['nodes'] = tuple(int(n) for n in args.nodes.split(','))
    workdir = tempfile.mkdtemp(prefix='cache-maint-bench-nodes-',
                               dir=args.workdir)
    bench = Bench(workdir, sizes)
    started = time.monotonic()
    try:
        for kind in args.server or SERVERS:
            for count in sizes['nodes']:
                bench.case(kind, count)
    except Wrong as e:
        print('WRONG: %s; no timing of this run means anything' % e,
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    small, large = min(sizes['nodes']), max(sizes['nodes'])
    print('%d images per node; %d s in all' % (
        sizes['images'], time.monotonic() - started))
    print(table(bench.rows))
    print()
    print(ratios(bench.rows, small, large))
    if args.quick:
        print('\nquick mode: every node with a directory ended with exactly '
              'its newest images, files and records, and no other node\'s '
              'records changed; timings of small tables mean nothing and '
              'are not judged')
        found = []
    else:
        found = targets(bench.rows, small, large, sizes['images'] // 2)
        print('\ntargets (issue 17):')
        for label, measured, met in found:
            print('  %-58s %-28s %s' % (label, measured,
                                        'met' if met else 'MISSED'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'sizes': sizes,
                       'rows': [dataclasses.asdict(r) for r in bench.rows],
                       'targets': found}, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
