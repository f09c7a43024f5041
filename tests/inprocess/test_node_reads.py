"""A node's reads of the shared cached_images, by image id (issue 17).

On Glance's own schema, with other nodes holding records of the same image
ids, on PostgreSQL, MariaDB and an SQLite file: the records read by id are
exactly this node's; prune's LRU order is the one the server's ``ORDER BY
last_accessed, id`` gives, across statements; the listing is the files on
disk with their records; and every statement that reads or deletes rows by
id goes through Glance's unique index (the servers' own EXPLAIN).
"""

import datetime

import pytest
import sqlalchemy as sa

from cache_maint import cache as cm_cache
from cache_maint.drivers import node_rows
from cache_maint import images
from cache_maint import maintenance

from tests.support import caches
from tests.support import databases
from tests.support import glance_schema
from tests.support import indexes
from tests.support import plans

KIB = caches.KIB
SERVERS = ['sqlite', 'postgresql', 'mysql']
UNIQUE_INDEX = 'ix_cached_images_image_id_node_reference_id'
BYSTANDERS = ['http://node-%d.example.org:9292' % i for i in range(3, 6)]


@pytest.fixture(params=SERVERS)
def cache(request, tmp_path, server_urls):
    url = databases.central_url(request.param, tmp_path, server_urls)
    built = caches.CentralCache(tmp_path / 'cache', url)
    yield built
    built.close()


def open_cache(cache, **overrides):
    subject = cm_cache.Cache.from_conf(cache.conf(**overrides))
    subject.setup()
    return subject


def share(cache, image_ids, urls=BYSTANDERS, accessed=5.0):
    """Other nodes record the same images (their files are elsewhere)."""
    for url in urls:
        cache.record([plans.Image(image_id, 7 * KIB, accessed, accessed, 3)
                      for image_id in image_ids], node_url=url)


def server_lru_order(cache):
    """This node's ids as Glance orders them: the server sorts."""
    rows = glance_schema.cached_images.c
    query = (sa.select(rows.image_id)
             .where(rows.node_reference_id == cache.node_id())
             .order_by(rows.last_accessed, rows.id))
    with cache.engine.connect() as conn:
        return list(conn.execute(query).scalars())


@pytest.fixture
def small_statements(monkeypatch):
    """Three ids a statement: every read spans several of them."""
    monkeypatch.setattr(node_rows, 'IDS_PER_STATEMENT', 3)


class TestByImageId:
    def test_records_of_are_this_nodes_only(self, cache, small_statements):
        mine = [cache.add_image(size=(i + 1) * KIB, last_accessed=1000.0 + i,
                                hits=i) for i in range(8)]
        elsewhere = [caches.new_id() for _ in range(3)]
        share(cache, mine + elsewhere)
        subject = open_cache(cache)
        records = subject.metadata.records_of(mine[:5] + elsewhere)
        assert sorted(r.image_id for r in records) == sorted(mine[:5])
        for record in records:
            i = mine.index(record.image_id)
            assert (record.size, record.hits) == ((i + 1) * KIB, i)
            assert record.last_accessed == pytest.approx(1000.0 + i)
        assert subject.metadata.records_of([]) == []

    def test_lru_order_is_the_servers_across_statements(
            self, cache, small_statements):
        # Whole-second ties, broken by the row id: the caching order.
        accessed = [3000, 1000, 2000, 2000, 1000, 2000, 4000, 1000, 2000]
        ids = [cache.add_image(last_accessed=float(t)) for t in accessed]
        share(cache, ids)
        cache.add_row(last_accessed=500.0)     # no file: left out
        subject = open_cache(cache)
        files = subject.files.scan_images()
        expected = [i for i in server_lru_order(cache) if i in files]
        statements = []
        sa.event.listen(subject.metadata.engine, 'before_cursor_execute',
                        lambda *args: statements.append(args[2]))
        assert subject.metadata.lru_order(files) == expected
        # Nine ids, three a statement (and the schema asked once).
        assert len([s for s in statements
                    if s.lstrip().startswith('SELECT cached_images')]) == 3
        assert [r.image_id for r in subject.metadata.lru_records(files)] \
            == expected
        some = {i: files[i] for i in ids[::2]}
        assert subject.metadata.lru_order(some) == [
            i for i in expected if i in some]

    def test_with_the_optional_index_one_ordered_read(
            self, cache, small_statements):
        accessed = [3000, 1000, 2000, 2000, 1000, 4000, 1000]
        ids = [cache.add_image(last_accessed=float(t)) for t in accessed]
        share(cache, ids)
        cache.add_row(last_accessed=500.0)     # no file: left out
        indexes.create(cache.engine)
        try:
            subject = open_cache(cache)
            statements = []
            sa.event.listen(
                subject.metadata.engine, 'before_cursor_execute',
                lambda *args: statements.append(args[2]))
            files = subject.files.scan_images()
            order = subject.metadata.lru_order(files)
            records = subject.metadata.lru_records(files)
            subject.close()
        finally:
            indexes.restore_glance_schema(cache.engine)
        expected = [i for i in server_lru_order(cache) if i in files]
        assert order == [r.image_id for r in records] == expected
        reads = [s for s in statements if 'FROM cached_images' in s]
        assert len(reads) == 2 and all('ORDER BY' in s for s in reads)

    def test_prune_leaves_other_nodes_records_of_the_same_images(
            self, cache, small_statements):
        ids = [cache.add_image(last_accessed=1000.0 + i) for i in range(10)]
        share(cache, ids)
        before = {url: cache.rows(url) for url in BYSTANDERS}
        result = maintenance.prune(open_cache(cache), 4 * KIB)
        assert result.removed_ids() == ids[:6]
        assert cache.images() == set(cache.rows()) == set(ids[6:])
        assert {url: cache.rows(url) for url in BYSTANDERS} == before

    def test_a_node_without_a_node_reference_row_reads_nothing(self, cache):
        ids = [cache.add_image() for _ in range(2)]
        subject = open_cache(cache, worker_self_reference_url='http://new')
        with cache.engine.begin() as conn:
            conn.execute(glance_schema.node_reference.delete().where(
                glance_schema.node_reference.c.node_reference_url
                == 'http://new'))
        assert subject.metadata.records_of(ids) == []
        assert subject.metadata.forget(ids) == []
        assert set(cache.rows()) == set(ids)


class TestListing:
    def test_lists_the_files_on_disk_with_their_records(self, cache):
        ids = sorted(cache.add_image(size=KIB, hits=2) for _ in range(4))
        share(cache, ids)
        cache.add_row(last_accessed=100.0)        # its file is gone
        cache.add_image(tracked=False)            # no record
        queued = cache.queue()
        document = images.list_cache(open_cache(cache))
        assert [r['image_id'] for r in document['cached_images']] == ids
        assert all(r['hits'] == 2 and r['size'] == KIB
                   for r in document['cached_images'])
        assert document['queued_images'] == [queued]


class TestNodeIdentity:
    def test_files_recorded_under_another_url_are_a_problem(self, cache):
        ids = [cache.add_image() for _ in range(3)]
        subject = open_cache(cache, worker_self_reference_url='http://other')
        problem = subject.metadata.identity_problem(ids)
        assert 'has no record in cached_images' in problem
        assert subject.metadata.identity_problem([]) is None

    def test_a_node_with_records_of_its_files_has_none(self, cache):
        ids = [cache.add_image() for _ in range(3)]
        share(cache, ids)
        subject = open_cache(cache)
        assert subject.metadata.identity_problem(ids) is None

    def test_untracked_files_no_node_records_are_no_problem(self, cache):
        # Other nodes' records of other images say nothing of these files.
        share(cache, [caches.new_id() for _ in range(3)])
        ids = [cache.add_image(tracked=False) for _ in range(3)]
        subject = open_cache(cache)
        assert subject.metadata.identity_problem(ids) is None


#: Rows of the plan tests: 25 nodes of 2,000 images, as the issue's small
#: cluster (PostgreSQL chooses by the table's size).
NODES, PER_NODE = 25, 2000


@pytest.fixture(scope='module', params=['postgresql', 'mysql'])
def cluster(request):
    """A scratch database of NODES nodes with PER_NODE rows each."""
    with databases.scratch_database(request.param) as url:
        engine = sa.create_engine(url)
        glance_schema.metadata.create_all(engine)
        images_table = glance_schema.cached_images
        moment = datetime.datetime(2026, 1, 1)
        pool = [plans.new_id() for _ in range(PER_NODE * 4)]
        with engine.begin() as conn:
            for node in range(1, NODES + 1):
                node_id = conn.execute(
                    glance_schema.node_reference.insert().values(
                        node_reference_url='http://node-%d:9292' % node)
                ).inserted_primary_key[0]
                # Neighbours share most of their images.
                start = node * PER_NODE // 10
                conn.execute(images_table.insert(), [
                    {'image_id': image_id, 'last_accessed': moment,
                     'last_modified': moment, 'size': KIB, 'hits': 0,
                     'node_reference_id': node_id}
                    for image_id in (pool * 2)[start:start + PER_NODE]])
        with engine.connect() as conn:
            if request.param == 'postgresql':
                conn.execute(sa.text('ANALYZE cached_images'))
            else:
                conn.execute(sa.text('ANALYZE TABLE cached_images')).all()
            conn.commit()
        yield request.param, url, engine
        engine.dispose()


def explained(kind, engine, statements):
    """The plan of each captured (statement, parameters), as text."""
    plans_ = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute('EXPLAIN ' + statement, parameters)
            rows = cursor.fetchall()
            if kind == 'mysql':
                columns = [d[0] for d in cursor.description]
                plans_.append([dict(zip(columns, row)) for row in rows])
            else:
                plans_.append('\n'.join(row[0] for row in rows))
        raw.rollback()
    finally:
        raw.close()
    return plans_


def test_reads_and_deletes_by_id_use_glances_unique_index(cluster, tmp_path):
    kind, url, engine = cluster
    node_url = 'http://node-%d:9292' % (NODES // 2)
    with engine.connect() as conn:
        node_id = conn.execute(sa.text(
            'SELECT node_reference_id FROM node_reference WHERE '
            'node_reference_url = :url'), {'url': node_url}).scalar()
        mine = list(conn.execute(sa.text(
            'SELECT image_id FROM cached_images WHERE node_reference_id = '
            ':node'), {'node': node_id}).scalars())
    conf = caches.CentralCache(tmp_path / 'cache', url, node_url).conf()
    subject = cm_cache.Cache.from_conf(conf)
    statements = []

    def capture(conn, cursor, statement, parameters, context, many):
        if 'cached_images' in statement and not many:
            statements.append((statement, parameters))

    sa.event.listen(subject.metadata.engine, 'before_cursor_execute',
                    capture)
    try:
        assert len(subject.metadata.records_of(mine)) == PER_NODE
        subject.metadata.identity_problem(mine)
        # Deletes of ids it has no record of: the plans are the same, and
        # the cluster stays as it is for the other case.
        subject.metadata.forget([plans.new_id() for _ in range(250)])
    finally:
        subject.close()
    assert len(statements) >= PER_NODE // node_rows.IDS_PER_STATEMENT + 3
    for statement, plan in zip(statements, explained(kind, engine,
                                                     statements)):
        if kind == 'mysql':
            (step,) = [s for s in plan if s['table'] == 'cached_images']
            assert step['key'] == UNIQUE_INDEX, (statement, plan)
            assert step['type'] in ('range', 'ref', 'eq_ref'), plan
        else:
            assert UNIQUE_INDEX in plan and 'Seq Scan' not in plan, (
                statement, plan)
