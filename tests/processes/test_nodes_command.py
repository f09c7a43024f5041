"""``cache-maint-manage nodes`` and ``db-index`` on real database servers.

The database is laid out with Glance's own schema (``tests.support``), and
what the commands leave behind is compared with it: ``nodes`` changes
nothing, ``db-index --create`` adds one index and changes no row.
"""

import json
import time

import pytest
import sqlalchemy as sa

from tests.support import caches
from tests.support import databases
from tests.support import indexes
from tests.support import plans
from tests.support import running
from tests.support import settings

#: ``db-index --check``'s status when the index is absent.
ABSENT = 3

INDEX = ('%s on cached_images (node_reference_id, last_accessed, id)'
         % indexes.NAME)


@pytest.fixture(params=['postgresql', 'mysql'])
def shared(request, tmp_path, server_urls):
    """This node's centralized_db cache, on a database of several nodes."""
    built = caches.CentralCache(tmp_path / 'cache', databases.central_url(
        request.param, tmp_path, server_urls))
    built.node_id()
    yield built
    indexes.restore_glance_schema(built.engine)
    built.close()


def config(tmp_path, cache, **options):
    return settings.write_config(tmp_path / 'cache-maint.conf',
                                 settings.cache_sections(cache, **options))


def rows(engine):
    """Every row of every table, and the tables."""
    with engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
        return {name: sorted(map(tuple, conn.execute(sa.text(
            'SELECT * FROM %s' % name)))) for name in names}


def image(last_accessed, size):
    return plans.Image(caches.new_id(), size, float(last_accessed),
                       float(last_accessed))


class TestNodes:
    def populate(self, cache):
        """Three nodes besides this one: with records, and one empty."""
        mine = [image(1700000000 + i, 100 * (i + 1)) for i in range(3)]
        cache.add_planned(mine)
        other = [image(1700000500, 7000), image(1700000100, 5)]
        cache.record(other, node_url=caches.OTHER_NODE_URL)
        cache.record([image(1600000000, 1)],
                     node_url='http://a-gone-pod:9292')
        cache.node_id('http://node-0.example.org:9292')     # no records

    def test_every_node_with_its_records(self, tmp_path, shared):
        self.populate(shared)
        before = rows(shared.engine)
        listed = running.manage_json(config(tmp_path, shared), 'nodes',
                                     '--format', 'json')
        assert [{key: value for key, value in node.items()
                 if key != 'node_reference_id'}
                for node in listed['nodes']] == [
            {'node_reference_url': 'http://a-gone-pod:9292', 'records': 1,
             'bytes': 1, 'newest_last_accessed': 1600000000.0,
             'this_node': False},
            {'node_reference_url': 'http://node-0.example.org:9292',
             'records': 0, 'bytes': 0, 'newest_last_accessed': None,
             'this_node': False},
            {'node_reference_url': caches.NODE_URL, 'records': 3,
             'bytes': 600, 'newest_last_accessed': 1700000002.0,
             'this_node': True},
            {'node_reference_url': caches.OTHER_NODE_URL, 'records': 2,
             'bytes': 7005, 'newest_last_accessed': 1700000500.0,
             'this_node': False}]
        ids = {node['node_reference_url']: node['node_reference_id']
               for node in listed['nodes']}
        assert ids[caches.NODE_URL] == shared.node_id()
        assert rows(shared.engine) == before

    def test_as_a_table(self, tmp_path, shared):
        self.populate(shared)
        result = running.manage(config(tmp_path, shared), 'nodes')
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split() == ['node_reference_url', 'records', 'bytes',
                                    'newest', 'last_accessed', '(UTC)']
        assert lines[1].split() == ['http://a-gone-pod:9292', '1', '1',
                                    '2020-09-13', '12:26:40']
        assert lines[2].split() == ['http://node-0.example.org:9292', '0',
                                    '0', 'N/A']
        assert lines[3].split() == ['*', caches.NODE_URL, '3', '600',
                                    '2023-11-14', '22:13:22']
        assert lines[4].startswith('  ' + caches.OTHER_NODE_URL)
        assert lines[5] == ('4 node(s), 6 record(s), 7606 byte(s); * this '
                            'node (worker_self_reference_url)')

    def test_this_node_unregistered(self, tmp_path, shared):
        self.populate(shared)
        url = 'http://node-9.example.org:9292'
        result = running.manage(config(
            tmp_path, shared, worker_self_reference_url=url), 'nodes')
        assert result.returncode == 0, result.stderr
        assert '*' not in result.stdout
        assert result.stdout.splitlines()[-1].endswith(
            '; this node (%s) has no node_reference row' % url)
        with shared.engine.connect() as conn:
            assert url not in conn.execute(sa.text(
                'SELECT node_reference_url FROM node_reference')
            ).scalars().all()


class TestDbIndex:
    def test_check_create_check(self, tmp_path, shared):
        shared.add_images(5)
        shared.record([image(time.time(), 10)],
                      node_url=caches.OTHER_NODE_URL)
        path = config(tmp_path, shared)
        before = rows(shared.engine)

        absent = running.manage(path, 'db-index', '--check')
        assert absent.returncode == ABSENT, absent.stderr
        # MariaDB's InnoDB indexes the foreign key; PostgreSQL does not.
        assert absent.stdout == (
            'The index %s does not exist%s; create it with: '
            'cache-maint-manage --config-file %s db-index --create\n' % (
                INDEX, " (node_reference_id finds each node's rows, not in "
                'LRU order)' if shared.engine.dialect.name == 'mysql'
                else '', path))
        assert indexes.NAME not in indexes.names(shared.engine)

        created = running.manage(path, 'db-index', '--create')
        assert created.returncode == 0, created.stderr
        assert created.stdout == 'Created the index %s.\n' % INDEX
        assert indexes.names(shared.engine)[indexes.NAME] == indexes.COLUMNS

        again = running.manage(path, 'db-index', '--create')
        assert again.returncode == 0, again.stderr
        assert again.stdout == ('The index %s exists; nothing to do.\n'
                                % INDEX)

        present = running.manage(path, 'db-index', '--check')
        assert present.returncode == 0, present.stderr
        assert present.stdout == 'The index %s exists.\n' % INDEX
        assert rows(shared.engine) == before

    def test_json(self, tmp_path, shared):
        path = config(tmp_path, shared)
        absent = running.manage(path, 'db-index', '--check', '--format',
                                'json')
        assert absent.returncode == ABSENT
        assert json.loads(absent.stdout) == {
            'index': indexes.NAME, 'table': 'cached_images',
            'columns': list(indexes.COLUMNS), 'present': False,
            'named': False, 'valid': False, 'equivalents': [],
            'node_reference_id_indexes': ['node_reference_id']
            if shared.engine.dialect.name == 'mysql' else []}
        created = running.manage_json(path, 'db-index', '--create',
                                      '--format', 'json')
        assert created['created'] is True and created['present'] is True

    def test_another_name_on_the_same_columns(self, tmp_path, shared):
        indexes.create(shared.engine, 'ix_operators_own',
                       indexes.COLUMNS + ('size',))
        path = config(tmp_path, shared)
        found = running.manage(path, 'db-index', '--check')
        assert found.returncode == 0, found.stderr
        assert found.stdout == (
            'No index is named %s, but ix_operators_own starts with the same '
            'columns (node_reference_id, last_accessed, id) and serves as '
            'well.\n' % indexes.NAME)
        created = running.manage(path, 'db-index', '--create')
        assert created.returncode == 0, created.stderr
        assert created.stdout.endswith('serves as well; nothing to do.\n')
        assert indexes.NAME not in indexes.names(shared.engine)

    def test_the_name_on_other_columns_is_refused(self, tmp_path, shared):
        indexes.create(shared.engine, indexes.NAME, ('last_accessed',))
        path = config(tmp_path, shared)
        found = running.manage(path, 'db-index', '--check')
        assert found.returncode == ABSENT
        assert found.stdout.startswith(
            'An index named %s exists on cached_images (last_accessed), not '
            'on the recommended columns' % indexes.NAME)
        refused = running.manage(path, 'db-index', '--create')
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines()[-1].startswith(
            'cache-maint-manage db-index failed: an index named %s exists '
            'on cached_images (last_accessed)' % indexes.NAME)
        assert indexes.names(shared.engine)[indexes.NAME] == (
            'last_accessed',)

    def test_either_check_or_create(self, tmp_path, shared):
        path = config(tmp_path, shared)
        for args in ((), ('--check', '--create')):
            result = running.manage(path, 'db-index', *args)
            assert result.returncode == 78
            assert 'configuration error' in result.stderr
            assert 'Traceback' not in result.stderr


def test_a_half_built_index_is_built_again(tmp_path):
    """PostgreSQL: what an interrupted CREATE INDEX CONCURRENTLY leaves."""
    with databases.scratch_database('postgresql') as url:
        cache = caches.CentralCache(tmp_path / 'cache', url)
        try:
            cache.add_images(2)
            indexes.create_invalid(cache.engine)
            path = config(tmp_path, cache)
            found = running.manage(path, 'db-index', '--check')
            assert found.returncode == ABSENT
            assert found.stdout.startswith(
                'The index %s exists but is not valid' % INDEX)
            created = running.manage(path, 'db-index', '--create')
            assert created.returncode == 0, created.stderr
            assert running.manage(path, 'db-index', '--check').returncode == 0
            with cache.engine.connect() as conn:
                assert conn.execute(sa.text(
                    "SELECT indisvalid, pg_get_expr(indpred, indrelid) "
                    "FROM pg_index WHERE indexrelid = to_regclass('%s')"
                    % indexes.NAME)).one() == (True, None)
        finally:
            cache.engine.dispose()


@pytest.mark.parametrize('command', [('nodes',), ('db-index', '--check'),
                                     ('db-index', '--create')])
class TestRefused:
    def test_another_driver(self, tmp_path, command):
        cache = caches.SqliteCache(tmp_path / 'cache')
        result = running.manage(config(tmp_path, cache), *command)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            'cache-maint-manage %s failed: only the centralized_db driver '
            'keeps its records in a database shared by nodes, and '
            '[DEFAULT] image_cache_driver is sqlite' % command[0])
        assert result.stdout == ''

    @pytest.mark.parametrize('kind', ['postgresql', 'mysql'])
    def test_a_database_without_glances_tables(self, tmp_path, command,
                                               kind):
        with databases.scratch_database(kind) as url:
            cache = caches.FileCache(tmp_path / 'cache')
            path = settings.write_config(tmp_path / 'cache-maint.conf', {
                'DEFAULT': {'image_cache_dir': cache.path,
                            'image_cache_driver': 'centralized_db',
                            'worker_self_reference_url': caches.NODE_URL},
                'database': {'connection': url}})
            result = running.manage(path, *command)
            engine = sa.create_engine(url)
            try:
                assert sa.inspect(engine).get_table_names() == []
            finally:
                engine.dispose()
        assert result.returncode == 1
        assert 'has no node_reference and no cached_images table' in (
            result.stderr)
        assert 'glance-manage db sync' in result.stderr
