"""``cache-maint-status upgrade check``: each check, on real files and
databases, and that none of them changes anything.
"""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap

from oslo_config import cfg
from oslo_upgradecheck import upgradecheck
import pytest
import sqlalchemy as sa

from cache_maint.cmd import common
from cache_maint.drivers import sqlite as sqlite_driver
from cache_maint import upgrade_checks

from tests.support import caches
from tests.support import databases
from tests.support import fs
from tests.support import indexes
from tests.support import settings

SUCCESS = upgradecheck.Code.SUCCESS
WARNING = upgradecheck.Code.WARNING
FAILURE = upgradecheck.Code.FAILURE

TITLES = ['Configuration', 'Cache directory', 'Metadata driver',
          'Node reference', 'Node index', 'Keystone authentication',
          'Policy file']

PASSWORD = 's3cret-Pa55'


@pytest.fixture(autouse=True)
def glance_api_conf(tmp_path, monkeypatch):
    """glance-api.conf is the test's own (absent until a test writes it)."""
    path = tmp_path / 'glance' / 'glance-api.conf'
    monkeypatch.setattr(upgrade_checks, 'GLANCE_API_CONF', str(path))
    return path


@pytest.fixture
def sqlite_cache(tmp_path):
    return caches.SqliteCache(tmp_path / 'cache')


@pytest.fixture(params=['postgresql', 'mysql'])
def central_cache(request, tmp_path, server_urls):
    """A centralized_db cache on a real server; this node registered."""
    url = sa.engine.make_url(databases.central_url(
        request.param, tmp_path, server_urls))
    # A password for the tests that must never see it (trust auth and an
    # empty root password accept any).
    if request.param == 'postgresql':
        url = url.set(password=PASSWORD)
    built = caches.CentralCache(tmp_path / 'cache',
                                url.render_as_string(hide_password=False))
    built.node_id()
    yield built
    built.close()


def checks(tmp_path, sections, *before, name='cache-maint.conf'):
    """Checks on a config file of ``sections``, read after ``before``.

    Parsed as ``cache-maint-status`` parses it.
    """
    path = settings.write_config(tmp_path / name, sections)
    conf = cfg.ConfigOpts()
    common.register_opts(conf)
    args = []
    for config_file in list(before) + [path]:
        args += ['--config-file', str(config_file)]
    common.parse(conf, args, default_config_files=[])
    return upgrade_checks.Checks(conf)


def sections_for(cache, api=None, **options):
    """A working configuration of ``cache``: noauth2, its driver."""
    sections = settings.cache_sections(cache, **options)
    sections['api'] = dict({'auth_strategy': 'noauth2'}, **(api or {}))
    return sections


def run(tmp_path, sections, method, *before):
    """The Result of one check, run as the command runs it."""
    subject = checks(tmp_path, sections, *before)
    subject.prepare()
    try:
        found = getattr(subject, method)()
    finally:
        subject.close()
    assert found.code in (SUCCESS, WARNING, FAILURE)
    assert isinstance(found.details, str) and found.details
    return found


def test_titles_are_the_documented_ones():
    assert [title for title, _check in
            upgrade_checks.Checks._upgrade_checks] == TITLES


def test_a_working_sqlite_cache_passes_every_check(tmp_path, sqlite_cache,
                                                   capsys):
    subject = checks(tmp_path, sections_for(sqlite_cache))
    assert subject.check() == SUCCESS
    table = capsys.readouterr().out
    for title in TITLES:
        assert 'Check: %s' % title in table
    assert 'Failure' not in table and 'Warning' not in table


class TestConfiguration:
    def test_valid(self, tmp_path, sqlite_cache):
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_configuration')
        assert found.code == SUCCESS

    def test_an_invalid_value_fails_naming_it(self, tmp_path, sqlite_cache):
        found = run(tmp_path, sections_for(
            sqlite_cache, image_cache_max_size='lots'),
            'check_configuration')
        assert found.code == FAILURE
        assert "invalid value 'lots' for [DEFAULT] image_cache_max_size" in (
            found.details)

    def test_watermarks_the_wrong_way_round_fail(self, tmp_path,
                                                 sqlite_cache):
        sections = sections_for(sqlite_cache)
        sections['prune'] = {'low_watermark': 90, 'high_watermark': 80}
        found = run(tmp_path, sections, 'check_configuration')
        assert found.code == FAILURE
        assert '[prune] low_watermark' in found.details

    def test_no_cache_dir_fails(self, tmp_path):
        found = run(tmp_path, {'DEFAULT': {'image_cache_driver': 'sqlite'},
                               'api': {'auth_strategy': 'noauth2'}},
                    'check_configuration')
        assert found.code == FAILURE
        assert '[DEFAULT] image_cache_dir is not set' in found.details

    def test_an_option_nothing_reads_warns(self, tmp_path, sqlite_cache):
        sections = sections_for(sqlite_cache, image_cache_max_sise='1024')
        sections['prune'] = {'eviction_polcy': 'lru'}
        found = run(tmp_path, sections, 'check_configuration')
        assert found.code == WARNING
        assert ('[DEFAULT] image_cache_max_sise is not an option cache-maint '
                'knows') in found.details
        assert 'did you mean image_cache_max_size?' in found.details
        assert '[prune] eviction_polcy' in found.details


class TestCacheDirectory:
    def test_glances_cache_directory(self, tmp_path, sqlite_cache):
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_cache_directory')
        assert found.code == SUCCESS
        assert 'lock_path is not set: the locks are in image_cache_dir' in (
            found.details)

    def test_missing(self, tmp_path):
        found = run(tmp_path, {'DEFAULT': {
            'image_cache_dir': str(tmp_path / 'nowhere'),
            'image_cache_driver': 'sqlite'}}, 'check_cache_directory')
        assert found.code == FAILURE
        assert '[DEFAULT] image_cache_dir %s does not exist' % (
            tmp_path / 'nowhere') in found.details
        assert not (tmp_path / 'nowhere').exists()

    def test_a_file(self, tmp_path):
        (tmp_path / 'file').write_text('')
        found = run(tmp_path, {'DEFAULT': {
            'image_cache_dir': str(tmp_path / 'file'),
            'image_cache_driver': 'sqlite'}}, 'check_cache_directory')
        assert found.code == FAILURE
        assert '[DEFAULT] image_cache_dir %s is not a directory' % (
            tmp_path / 'file') in found.details

    def test_without_glances_subdirectories_warns(self, tmp_path):
        cache = tmp_path / 'cache'
        cache.mkdir()
        (cache / 'queue').mkdir()
        found = run(tmp_path, {'DEFAULT': {
            'image_cache_dir': str(cache), 'image_cache_driver': 'sqlite'}},
            'check_cache_directory')
        assert found.code == WARNING
        assert 'has no incomplete/, invalid/: glance-api has not run there' \
            in found.details
        assert sorted(os.listdir(cache)) == ['queue']

    def test_a_symlinked_subdirectory_fails(self, tmp_path, sqlite_cache):
        invalid = os.path.join(sqlite_cache.path, 'invalid')
        os.rmdir(invalid)
        os.symlink(str(tmp_path), invalid)
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_cache_directory')
        assert found.code == FAILURE
        assert '%s is not a directory' % invalid in found.details

    def test_read_only(self, tmp_path, sqlite_cache):
        with fs.read_only(sqlite_cache.path):
            found = run(tmp_path, sections_for(sqlite_cache),
                        'check_cache_directory')
        assert found.code == FAILURE
        assert '[DEFAULT] image_cache_dir %s is not writable' % (
            sqlite_cache.path) in found.details

    def test_a_state_dir_that_is_a_file(self, tmp_path, sqlite_cache):
        (tmp_path / 'state').write_text('')
        sections = sections_for(sqlite_cache)
        sections['maintenance'] = {'state_dir': str(tmp_path / 'state')}
        found = run(tmp_path, sections, 'check_cache_directory')
        assert found.code == FAILURE
        assert '([maintenance] state_dir) is not a directory' in (
            found.details)

    def test_an_operators_lock_path(self, tmp_path, sqlite_cache):
        (tmp_path / 'locks').mkdir()
        sections = sections_for(sqlite_cache)
        sections['oslo_concurrency'] = {'lock_path': str(tmp_path / 'locks')}
        found = run(tmp_path, sections, 'check_cache_directory')
        assert found.code == SUCCESS
        assert '[oslo_concurrency] lock_path %s is usable' % (
            tmp_path / 'locks') in found.details
        assert os.listdir(tmp_path / 'locks') == []

    def test_a_lock_path_that_is_a_file(self, tmp_path, sqlite_cache):
        (tmp_path / 'locks').write_text('')
        sections = sections_for(sqlite_cache)
        sections['oslo_concurrency'] = {'lock_path': str(tmp_path / 'locks')}
        found = run(tmp_path, sections, 'check_cache_directory')
        assert found.code == FAILURE
        assert '[oslo_concurrency] lock_path %s is not a directory' % (
            tmp_path / 'locks') in found.details

    def test_a_lock_path_yet_to_be_made_warns(self, tmp_path, sqlite_cache):
        sections = sections_for(sqlite_cache)
        sections['oslo_concurrency'] = {
            'lock_path': str(tmp_path / 'run' / 'locks')}
        found = run(tmp_path, sections, 'check_cache_directory')
        assert found.code == WARNING
        assert 'lock_path %s does not exist' % (
            tmp_path / 'run' / 'locks') in found.details
        assert not (tmp_path / 'run').exists()

    def test_a_lock_path_that_cannot_be_made_fails(self, tmp_path,
                                                   sqlite_cache):
        (tmp_path / 'file').write_text('')
        sections = sections_for(sqlite_cache)
        sections['oslo_concurrency'] = {
            'lock_path': str(tmp_path / 'file' / 'locks')}
        found = run(tmp_path, sections, 'check_cache_directory')
        assert found.code == FAILURE
        assert 'cannot be created' in found.details

    def test_a_read_only_lock_path_fails(self, tmp_path, sqlite_cache):
        (tmp_path / 'locks').mkdir()
        sections = sections_for(sqlite_cache)
        sections['oslo_concurrency'] = {'lock_path': str(tmp_path / 'locks')}
        with fs.read_only(tmp_path / 'locks'):
            found = run(tmp_path, sections, 'check_cache_directory')
        assert found.code == FAILURE
        assert 'lock_path %s is not writable' % (tmp_path / 'locks') in (
            found.details)

    def test_xattr_without_a_lock_path_warns(self, tmp_path):
        cache = caches.XattrCache(tmp_path / 'cache')
        found = run(tmp_path, sections_for(cache), 'check_cache_directory')
        assert found.code == WARNING
        assert ('[oslo_concurrency] lock_path is not set: with the xattr '
                'driver') in found.details
        assert not os.path.exists(
            os.path.join(cache.path, '.cache-maint-locks'))

    def test_the_same_as_glance_apis(self, tmp_path, sqlite_cache,
                                     glance_api_conf):
        glance_api_conf.parent.mkdir()
        settings.write_config(glance_api_conf, {'DEFAULT': {
            'image_cache_dir': sqlite_cache.path + '/',
            'image_cache_driver': 'sqlite', 'bind_port': 9292}})
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_cache_directory')
        assert found.code == SUCCESS
        assert "the same as glance-api's in %s" % glance_api_conf in (
            found.details)

    def test_another_cache_than_glance_apis(self, tmp_path, sqlite_cache,
                                            glance_api_conf):
        glance_api_conf.parent.mkdir()
        settings.write_config(glance_api_conf, {'DEFAULT': {
            'image_cache_dir': '/var/lib/glance/image-cache',
            'image_cache_driver': 'centralized_db'}})
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_cache_directory')
        assert found.code == FAILURE
        assert ('[DEFAULT] image_cache_dir is %s here but '
                '/var/lib/glance/image-cache in %s'
                % (sqlite_cache.path, glance_api_conf)) in found.details
        assert ('[DEFAULT] image_cache_driver is sqlite here but '
                'centralized_db in') in found.details

    def test_another_lock_path_than_glance_apis(self, tmp_path, sqlite_cache,
                                                glance_api_conf):
        glance_api_conf.parent.mkdir()
        settings.write_config(glance_api_conf, {
            'DEFAULT': {'image_cache_dir': sqlite_cache.path,
                        'image_cache_driver': 'sqlite'},
            'oslo_concurrency': {'lock_path': '/var/lib/glance/lock'}})
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_cache_directory')
        assert found.code == FAILURE
        assert ('[oslo_concurrency] lock_path is %s here but '
                '/var/lib/glance/lock in' % sqlite_cache.path) in (
            found.details)

    def test_glance_api_conf_read_first_is_compared_alone(
            self, tmp_path, sqlite_cache, glance_api_conf):
        """As the unit runs it: glance-api.conf, then a file of ours."""
        glance_api_conf.parent.mkdir()
        settings.write_config(glance_api_conf, {'DEFAULT': {
            'image_cache_dir': '/var/lib/glance/image-cache'}})
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_cache_directory', glance_api_conf)
        assert found.code == FAILURE
        assert ('[DEFAULT] image_cache_dir is %s here but '
                '/var/lib/glance/image-cache in %s'
                % (sqlite_cache.path, glance_api_conf)) in found.details

    def test_glance_api_conf_read_first_and_not_overridden_passes(
            self, tmp_path, sqlite_cache, glance_api_conf):
        glance_api_conf.parent.mkdir()
        settings.write_config(glance_api_conf, {'DEFAULT': {
            'image_cache_dir': sqlite_cache.path,
            'image_cache_driver': 'sqlite'}})
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_cache_directory', glance_api_conf)
        assert found.code == SUCCESS
        assert "the same as glance-api's in %s" % glance_api_conf in (
            found.details)

    def test_an_unparsable_glance_api_conf_warns(
            self, tmp_path, sqlite_cache, glance_api_conf):
        glance_api_conf.parent.mkdir()
        glance_api_conf.write_text('[DEFAULT\nimage_cache_dir = x\n')
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_cache_directory')
        assert found.code == WARNING
        assert '%s cannot be read' % glance_api_conf in found.details


class TestMetadataDriver:
    def test_sqlite(self, tmp_path, sqlite_cache):
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_metadata_driver')
        assert found.code == SUCCESS
        assert "cached_images" in found.details

    def test_sqlite_without_a_database_yet_warns(self, tmp_path):
        cache = caches.FileCache(tmp_path / 'cache')
        found = run(tmp_path, {'DEFAULT': {'image_cache_dir': cache.path,
                                           'image_cache_driver': 'sqlite'}},
                    'check_metadata_driver')
        assert found.code == WARNING
        assert '([DEFAULT] image_cache_sqlite_db) does not exist yet' in (
            found.details)
        assert cache.listdir() == {'incomplete', 'invalid', 'queue'}

    def test_sqlite_without_the_table_warns(self, tmp_path):
        cache = caches.FileCache(tmp_path / 'cache')
        conn = sqlite3.connect(os.path.join(cache.path, 'cache.db'))
        conn.execute('CREATE TABLE other (x)')
        conn.close()
        found = run(tmp_path, {'DEFAULT': {'image_cache_dir': cache.path,
                                           'image_cache_driver': 'sqlite'}},
                    'check_metadata_driver')
        assert found.code == WARNING
        assert 'has no cached_images table yet' in found.details

    def test_sqlite_corrupt(self, tmp_path, sqlite_cache):
        with open(sqlite_cache.db_path, 'wb') as f:
            f.write(os.urandom(8192))
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_metadata_driver')
        assert found.code == FAILURE
        assert 'is unusable (file is not a database)' in found.details

    def test_sqlite_a_directory(self, tmp_path, sqlite_cache):
        os.unlink(sqlite_cache.db_path)
        os.mkdir(sqlite_cache.db_path)
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_metadata_driver')
        assert found.code == FAILURE
        assert 'is not a regular file' in found.details

    def test_sqlite_a_fifo_is_not_waited_on(self, tmp_path, sqlite_cache):
        os.unlink(sqlite_cache.db_path)
        os.mkfifo(sqlite_cache.db_path)
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_metadata_driver')
        assert found.code == FAILURE

    def test_sqlite_locked(self, tmp_path, sqlite_cache, monkeypatch):
        monkeypatch.setattr(sqlite_driver, 'LOCKED_ATTEMPTS', 1)
        holder = sqlite3.connect(sqlite_cache.db_path, isolation_level=None)
        try:
            holder.execute('BEGIN EXCLUSIVE')
            found = run(tmp_path, sections_for(sqlite_cache),
                        'check_metadata_driver')
        finally:
            holder.execute('ROLLBACK')
            holder.close()
        assert found.code == FAILURE
        assert 'stayed locked' in found.details

    def test_sqlite_outside_the_cache_never_made(self, tmp_path,
                                                 sqlite_cache):
        found = run(tmp_path, sections_for(
            sqlite_cache, image_cache_sqlite_db='../elsewhere.db'),
            'check_metadata_driver')
        assert found.code == FAILURE
        assert '[DEFAULT] image_cache_sqlite_db points to' in found.details
        assert not (tmp_path / 'elsewhere.db').exists()

    def test_xattr(self, tmp_path):
        cache = caches.XattrCache(tmp_path / 'cache')
        found = run(tmp_path, sections_for(cache), 'check_metadata_driver')
        assert found.code == SUCCESS
        assert 'supports user extended attributes' in found.details

    def test_xattr_on_a_filesystem_without_them(self, tmp_path):
        if os.getuid() != 0:
            pytest.skip('mounting a ramfs needs root')
        mount = tmp_path / 'ramfs'
        mount.mkdir()
        subprocess.run(['mount', '-t', 'ramfs', 'ramfs', str(mount)],
                       check=True)
        try:
            cache = caches.XattrCache(mount)
            found = run(tmp_path, sections_for(cache),
                        'check_metadata_driver')
            assert cache.listdir('incomplete') == set()
        finally:
            subprocess.run(['umount', str(mount)], check=True)
        assert found.code == FAILURE
        assert ('[DEFAULT] image_cache_driver = xattr, but the filesystem '
                'of image_cache_dir') in found.details

    def test_centralized_db(self, tmp_path, central_cache):
        found = run(tmp_path, sections_for(central_cache),
                    'check_metadata_driver')
        assert found.code == SUCCESS, found.details
        assert 'node_reference and cached_images tables' in found.details
        assert PASSWORD not in found.details

    def test_sqlite_unwritable_fails(self, tmp_path, sqlite_cache):
        with fs.read_only(sqlite_cache.path):
            found = run(tmp_path, sections_for(sqlite_cache),
                        'check_metadata_driver')
        assert found.code == FAILURE
        assert 'or its directory for the journal, cannot be written' in (
            found.details)

    def test_centralized_db_for_a_user_who_cannot_delete(self, tmp_path,
                                                         central_cache):
        url = sa.engine.make_url(central_cache.url)
        user = 'cm_read_only_%d' % os.getpid()
        if url.get_backend_name() == 'postgresql':
            grant = ('CREATE ROLE %s LOGIN' % user,
                     'GRANT SELECT ON node_reference, cached_images TO %s'
                     % user)
            revoke = ('DROP OWNED BY %s' % user, 'DROP ROLE %s' % user)
        else:
            grant = ("CREATE USER '%s'@'%%'" % user,
                     "GRANT SELECT ON %s.* TO '%s'@'%%'"
                     % (url.database, user))
            revoke = ("DROP USER '%s'@'%%'" % user,)
        with central_cache.engine.begin() as conn:
            for statement in grant:
                conn.execute(sa.text(statement))
        try:
            before = schema_and_rows(central_cache.url)
            sections = sections_for(central_cache)
            sections['database'] = {'connection': url.set(
                username=user, password=None).render_as_string(
                    hide_password=False)}
            found = run(tmp_path, sections, 'check_metadata_driver')
            assert schema_and_rows(central_cache.url) == before
        finally:
            with central_cache.engine.begin() as conn:
                for statement in revoke:
                    conn.execute(sa.text(statement))
        assert found.code == FAILURE
        assert ('cannot delete from cached_images, as prune and clean must,'
                in found.details), found.details

    @pytest.mark.parametrize('kind', ['postgresql', 'mysql'])
    def test_centralized_db_without_glances_tables(self, tmp_path, kind):
        with databases.scratch_database(kind) as url:
            found = run(tmp_path, {
                'DEFAULT': {'image_cache_dir': str(tmp_path),
                            'image_cache_driver': 'centralized_db',
                            'worker_self_reference_url': caches.NODE_URL},
                'database': {'connection': url}}, 'check_metadata_driver')
            engine = sa.create_engine(url)
            try:
                assert sa.inspect(engine).get_table_names() == []
            finally:
                engine.dispose()
        assert found.code == FAILURE
        assert 'has no node_reference and no cached_images table' in (
            found.details)

    @pytest.mark.parametrize('url', [
        'postgresql+psycopg://glance:%s@127.0.0.1:1/glance' % PASSWORD,
        'mysql+pymysql://glance:%s@127.0.0.1:1/glance' % PASSWORD,
        'nosuchdialect://glance:%s@db/glance' % PASSWORD,
    ])
    def test_centralized_db_unreachable(self, tmp_path, url):
        found = run(tmp_path, {
            'DEFAULT': {'image_cache_dir': str(tmp_path),
                        'image_cache_driver': 'centralized_db',
                        'worker_self_reference_url': caches.NODE_URL},
            'database': {'connection': url}}, 'check_metadata_driver')
        assert found.code == FAILURE
        assert '[database] connection' in found.details
        assert PASSWORD not in found.details
        assert '\n' not in found.details

    def test_centralized_db_on_a_sqlite_file_never_made(self, tmp_path):
        found = run(tmp_path, {
            'DEFAULT': {'image_cache_dir': str(tmp_path),
                        'image_cache_driver': 'centralized_db',
                        'worker_self_reference_url': caches.NODE_URL},
            'database': {'connection': 'sqlite:///%s' % (
                tmp_path / 'glance.db')}}, 'check_metadata_driver')
        assert found.code == FAILURE
        assert not (tmp_path / 'glance.db').exists()


def unreachable_database(tmp_path):
    """centralized_db settings whose database server is not there."""
    url = 'postgresql+psycopg://glance:%s@127.0.0.1:1/glance' % PASSWORD
    return {'DEFAULT': {'image_cache_dir': str(tmp_path),
                        'image_cache_driver': 'centralized_db',
                        'worker_self_reference_url': caches.NODE_URL},
            'database': {'connection': url}}


class TestNodeReference:
    def test_not_used_by_other_drivers(self, tmp_path, sqlite_cache):
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_node_reference')
        assert found.code == SUCCESS
        assert found.details == 'not used by the sqlite driver'

    def test_registered(self, tmp_path, central_cache):
        found = run(tmp_path, sections_for(central_cache),
                    'check_node_reference')
        assert found.code == SUCCESS
        assert '%s is registered in node_reference' % caches.NODE_URL in (
            found.details)

    def test_unset_fails(self, tmp_path, central_cache):
        sections = sections_for(central_cache)
        del sections['DEFAULT']['worker_self_reference_url']
        found = run(tmp_path, sections, 'check_node_reference')
        assert found.code == FAILURE
        assert '[DEFAULT] worker_self_reference_url is not set' in (
            found.details)

    def test_no_row_yet_warns_and_none_is_made(self, tmp_path,
                                               central_cache):
        url = 'http://node-3.example.org:9292'
        found = run(tmp_path, sections_for(
            central_cache, worker_self_reference_url=url),
            'check_node_reference')
        assert found.code == WARNING
        assert ('[DEFAULT] worker_self_reference_url = %s has no '
                'node_reference row: glance-api adds it' % url) in (
            found.details)
        nodes = caches.glance_schema.node_reference
        with central_cache.engine.connect() as conn:
            assert conn.execute(sa.select(nodes.c.node_reference_url)
                                ).scalars().all() == [caches.NODE_URL]

    def test_another_spelling_of_a_registered_url_fails(self, tmp_path,
                                                        central_cache):
        found = run(tmp_path, sections_for(
            central_cache,
            worker_self_reference_url='HTTP://Node-1.example.org:9292/'),
            'check_node_reference')
        assert found.code == FAILURE
        assert 'but %s is' % caches.NODE_URL in found.details

    def test_database_unreachable(self, tmp_path):
        found = run(tmp_path, unreachable_database(tmp_path),
                    'check_node_reference')
        assert found.code == FAILURE
        assert 'node_reference cannot be read' in found.details


INDEX = ('%s on cached_images (node_reference_id, last_accessed, id)'
         % indexes.NAME)


class TestNodeIndex:
    """The recommended index on a shared cached_images, never made here."""

    @pytest.fixture
    def shared(self, central_cache):
        """central_cache, with Glance's own indexes back afterwards."""
        yield central_cache
        indexes.restore_glance_schema(central_cache.engine)

    def add_nodes(self, cache, count):
        for i in range(count):
            cache.node_id('http://node-%d.example.org:9292' % (i + 10))

    def test_not_used_by_other_drivers(self, tmp_path, sqlite_cache):
        found = run(tmp_path, sections_for(sqlite_cache), 'check_node_index')
        assert found.code == SUCCESS
        assert found.details == 'not used by the sqlite driver'

    def test_few_nodes_need_none(self, tmp_path, shared):
        shared.add_images(3)
        self.add_nodes(shared, 9)
        found = run(tmp_path, sections_for(shared), 'check_node_index')
        assert found.code == SUCCESS, found.details
        assert found.details.startswith('cached_images holds 10 node(s)')
        assert 'is not needed up to 10 nodes and 100000 rows' in (
            found.details)

    def test_many_nodes_without_it_warn_and_none_is_made(
            self, tmp_path, shared):
        """On PostgreSQL; MariaDB finds a node's rows by its foreign key."""
        self.add_nodes(shared, 10)
        sections = sections_for(shared)
        before = indexes.names(shared.engine)
        found = run(tmp_path, sections, 'check_node_index')
        assert found.details.startswith('cached_images holds 11 node(s)')
        assert PASSWORD not in found.details
        assert indexes.names(shared.engine) == before
        if shared.engine.dialect.name == 'mysql':
            assert found.code == SUCCESS, found.details
            assert ('the index node_reference_id finds each node\'s rows '
                    '(the recommended index %s would also keep them in LRU '
                    'order' % INDEX) in found.details
            return
        assert found.code == WARNING
        assert ('the recommended index %s does not exist' % INDEX) in (
            found.details)
        assert ('create it, online, with "cache-maint-manage --config-file '
                '%s db-index --create"' % (tmp_path / 'cache-maint.conf')) in (
            found.details)

    def test_many_rows_without_it_warn(self, tmp_path, shared, monkeypatch):
        """The rows are the server's estimate, once it has analysed."""
        shared.add_images(40)
        with shared.engine.begin() as conn:
            conn.execute(sa.text('ANALYZE %s cached_images' % (
                'TABLE' if conn.dialect.name == 'mysql' else '')))
        monkeypatch.setattr(upgrade_checks.shared_db, 'MANY_ROWS', 20)
        found = run(tmp_path, sections_for(shared), 'check_node_index')
        assert found.details.startswith(
            'cached_images holds 1 node(s) and about ')
        assert found.code == (SUCCESS if shared.engine.dialect.name
                              == 'mysql' else WARNING), found.details

    def test_present(self, tmp_path, shared):
        self.add_nodes(shared, 20)
        indexes.create(shared.engine)
        found = run(tmp_path, sections_for(shared), 'check_node_index')
        assert found.code == SUCCESS, found.details
        assert found.details == 'the index %s exists' % INDEX

    def test_another_name_on_the_same_columns_serves(self, tmp_path,
                                                     shared):
        self.add_nodes(shared, 20)
        indexes.create(shared.engine, 'ix_operators_own',
                       indexes.COLUMNS + ('size',))
        found = run(tmp_path, sections_for(shared), 'check_node_index')
        assert found.code == SUCCESS, found.details
        assert found.details.startswith('the index ix_operators_own on '
                                        'cached_images starts with the '
                                        'columns of %s' % indexes.NAME)

    def test_an_index_led_by_node_reference_id_finds_the_rows(
            self, tmp_path, shared):
        self.add_nodes(shared, 20)
        indexes.create(shared.engine, 'ix_operators_own',
                       ('node_reference_id', 'size'))
        found = run(tmp_path, sections_for(shared), 'check_node_index')
        assert found.code == SUCCESS, found.details
        assert 'ix_operators_own' in found.details
        assert 'finds each node\'s rows' in found.details

    def test_the_name_on_other_columns_warns(self, tmp_path, shared):
        indexes.create(shared.engine, indexes.NAME, ('last_accessed',))
        found = run(tmp_path, sections_for(shared), 'check_node_index')
        assert found.code == WARNING
        assert found.details.startswith(
            'an index named %s exists on cached_images (last_accessed), not '
            'on the recommended columns' % indexes.NAME)

    def test_half_built_warns(self, tmp_path):
        """PostgreSQL leaves an interrupted concurrent build invalid."""
        with databases.scratch_database('postgresql') as url:
            cache = caches.CentralCache(tmp_path / 'cache', url)
            try:
                cache.add_images(2)
                indexes.create_invalid(cache.engine)
                found = run(tmp_path, sections_for(cache), 'check_node_index')
            finally:
                cache.engine.dispose()
        assert found.code == WARNING
        assert found.details.startswith(
            'the index %s exists but is not valid' % INDEX)
        assert 'db-index --create' in found.details

    def test_database_unreachable(self, tmp_path):
        found = run(tmp_path, unreachable_database(tmp_path),
                    'check_node_index')
        assert found.code == FAILURE
        assert 'cached_images cannot be read' in found.details
        assert PASSWORD not in found.details


#: Complete settings, for a Keystone that is not there (the discard port):
#: tests/keystone has the real one.
KEYSTONE = {'auth_type': 'password', 'auth_url': 'http://127.0.0.1:9/v3',
            'username': 'glance', 'password': PASSWORD,
            'user_domain_name': 'Default', 'project_name': 'service',
            'project_domain_name': 'Default',
            'www_authenticate_uri': 'http://127.0.0.1:9'}
UNREACHABLE = ('could not connect to Keystone at [keystone_authtoken] '
               'auth_url = http://127.0.0.1:9/v3')


class TestKeystoneAuthentication:
    def sections(self, cache, **authtoken):
        sections = sections_for(cache, api={'auth_strategy': 'keystone'})
        if authtoken:
            sections['keystone_authtoken'] = {
                name: value for name, value in authtoken.items() if value}
        return sections

    def test_noauth2(self, tmp_path, sqlite_cache):
        found = run(tmp_path, sections_for(sqlite_cache),
                    'check_keystone_authentication')
        assert found.code == SUCCESS
        assert 'auth_strategy is noauth2' in found.details

    def test_complete_but_keystone_unreachable(self, tmp_path,
                                               sqlite_cache):
        found = run(tmp_path, self.sections(sqlite_cache, **KEYSTONE),
                    'check_keystone_authentication')
        assert found.code == FAILURE
        assert found.details.startswith('Keystone cannot validate tokens')
        assert UNREACHABLE in found.details
        assert PASSWORD not in found.details

    def test_from_glance_api_conf_read_first(self, tmp_path, sqlite_cache):
        glance = settings.write_config(tmp_path / 'glance-api.conf', {
            'DEFAULT': {'bind_port': 9292},
            'keystone_authtoken': KEYSTONE})
        found = run(tmp_path, self.sections(sqlite_cache),
                    'check_keystone_authentication', glance)
        # Its settings are those used: Keystone is asked at its auth_url.
        assert UNREACHABLE in found.details

    def test_no_section(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(sqlite_cache),
                    'check_keystone_authentication')
        assert found.code == FAILURE
        assert 'there is no [keystone_authtoken] section' in found.details

    def test_no_auth_type(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            sqlite_cache, www_authenticate_uri='http://keystone:5000'),
            'check_keystone_authentication')
        assert found.code == FAILURE
        assert ('[keystone_authtoken] sets no auth_type, auth_url, username, '
                'password') in found.details

    def test_no_auth_url(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            sqlite_cache, **dict(KEYSTONE, auth_url=None)),
            'check_keystone_authentication')
        assert found.code == FAILURE
        assert '[keystone_authtoken] auth_type = password needs auth_url' in (
            found.details)

    def test_no_credentials(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            sqlite_cache, **dict(KEYSTONE, username=None, password=None)),
            'check_keystone_authentication')
        assert found.code == FAILURE
        assert ('[keystone_authtoken] auth_type = password sets no username '
                'or user_id, password') in found.details

    def test_an_unknown_plugin(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            sqlite_cache, **dict(KEYSTONE, auth_type='pasword')),
            'check_keystone_authentication')
        assert found.code == FAILURE
        assert 'auth_type = pasword: keystoneauth has no such plugin' in (
            found.details)


class TestPolicyFile:
    def sections(self, tmp_path, cache, text=None, name='policy.yaml'):
        sections = sections_for(cache)
        if text is not None:
            (tmp_path / name).write_text(textwrap.dedent(text))
            sections['oslo_policy'] = {'policy_file': str(tmp_path / name)}
        return sections

    def test_none(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(tmp_path, sqlite_cache),
                    'check_policy_file')
        assert found.code == SUCCESS
        assert 'the default rules apply' in found.details

    def test_cache_maints_rules_and_an_alias(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(tmp_path, sqlite_cache, '''
            cache_admin: "role:admin or role:cache_operator"
            cache_list: "rule:cache_admin"
            cache_prune: "rule:cache_admin"
            context_is_admin: "role:admin"
        '''), 'check_policy_file')
        assert found.code == SUCCESS, found.details

    def test_found_beside_the_config_file(self, tmp_path, sqlite_cache):
        (tmp_path / 'policy.yaml').write_text('cache_list: "role:admin"\n')
        found = run(tmp_path, self.sections(tmp_path, sqlite_cache),
                    'check_policy_file')
        assert found.code == SUCCESS
        assert str(tmp_path / 'policy.yaml') in found.details

    def test_not_found_warns(self, tmp_path, sqlite_cache):
        sections = self.sections(tmp_path, sqlite_cache)
        sections['oslo_policy'] = {'policy_file': 'cache-policy.yaml'}
        found = run(tmp_path, sections, 'check_policy_file')
        assert found.code == WARNING
        assert '[oslo_policy] policy_file = cache-policy.yaml' in (
            found.details)

    def test_an_absolute_path_to_nothing_warns(self, tmp_path, sqlite_cache):
        sections = self.sections(tmp_path, sqlite_cache)
        sections['oslo_policy'] = {'policy_file': str(tmp_path / 'no.yaml')}
        found = run(tmp_path, sections, 'check_policy_file')
        assert found.code == WARNING
        assert '%s does not exist, so the default rules apply' % (
            tmp_path / 'no.yaml') in found.details

    def test_unknown_rule_names_warn(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(tmp_path, sqlite_cache, '''
            cache_lsit: "role:admin"
            get_image: "rule:default"
            cache_list: "role:admin"
        '''), 'check_policy_file')
        assert found.code == WARNING
        assert 'cache-maint does not have, which are ignored: cache_lsit, ' \
            'get_image' in found.details

    def test_a_syntax_error_fails(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            tmp_path, sqlite_cache, 'cache_list: "role:admin\n  - ]: {\n'),
            'check_policy_file')
        assert found.code == FAILURE
        assert 'is neither YAML nor JSON' in found.details

    def test_not_a_mapping_fails(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            tmp_path, sqlite_cache, '- cache_list\n- role:admin\n'),
            'check_policy_file')
        assert found.code == FAILURE
        assert 'no mapping of rule names' in found.details

    def test_an_invalid_check_string_fails(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            tmp_path, sqlite_cache, 'cache_prune: "role:admin or"\n'),
            'check_policy_file')
        assert found.code == FAILURE
        assert "rule 'cache_prune' = 'role:admin or', which oslo.policy " \
            'cannot parse' in found.details

    def test_a_reference_to_no_rule_fails(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            tmp_path, sqlite_cache, 'cache_prune: "rule:cache_admins"\n'),
            'check_policy_file')
        assert found.code == FAILURE
        assert 'is not usable' in found.details

    def test_a_directory_fails(self, tmp_path, sqlite_cache):
        (tmp_path / 'policy.d').mkdir()
        sections = self.sections(tmp_path, sqlite_cache)
        sections['oslo_policy'] = {'policy_file': str(tmp_path / 'policy.d')}
        found = run(tmp_path, sections, 'check_policy_file')
        assert found.code == FAILURE
        assert 'is not a regular file' in found.details

    def dirs_sections(self, tmp_path, cache, files):
        """A policy.d directory holding ``files`` ({name: text})."""
        (tmp_path / 'policy.d').mkdir()
        for name, text in files.items():
            (tmp_path / 'policy.d' / name).write_text(text)
        sections = self.sections(tmp_path, cache)
        sections['oslo_policy'] = {'policy_dirs': str(tmp_path / 'policy.d')}
        return sections

    def test_policy_dirs_files_are_read_too(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.dirs_sections(tmp_path, sqlite_cache, {
            'a.yaml': 'cache_prune: "role:admin"\n',
            'b.yaml': 'cache_prnue: "role:admin"\n'}), 'check_policy_file')
        assert found.code == WARNING
        assert ('the policy file %s has rules cache-maint does not have, '
                'which are ignored: cache_prnue'
                % (tmp_path / 'policy.d' / 'b.yaml')) in found.details

    def test_policy_dirs_errors_name_their_file(self, tmp_path,
                                                sqlite_cache):
        found = run(tmp_path, self.dirs_sections(tmp_path, sqlite_cache, {
            'a.yaml': 'cache_prune: "rule:nothing_here"\n'}),
            'check_policy_file')
        assert found.code == FAILURE
        assert ('the policy file %s (in [oslo_policy] policy_dirs) is not '
                'usable' % (tmp_path / 'policy.d' / 'a.yaml')) in (
            found.details)
        assert 'policy_file = policy.yaml' not in found.details

    def test_a_fifo_in_policy_dirs_is_not_waited_on(self, tmp_path,
                                                    sqlite_cache):
        sections = self.dirs_sections(tmp_path, sqlite_cache, {})
        os.mkfifo(tmp_path / 'policy.d' / 'fifo.yaml')
        found = run(tmp_path, sections, 'check_policy_file')
        assert found.code == FAILURE
        assert '%s ([oslo_policy] policy_dirs) is not a regular file' % (
            tmp_path / 'policy.d' / 'fifo.yaml') in found.details

    def test_json_warns(self, tmp_path, sqlite_cache):
        found = run(tmp_path, self.sections(
            tmp_path, sqlite_cache, json.dumps({'cache_list': 'role:admin'}),
            name='policy.json'), 'check_policy_file')
        assert found.code == WARNING
        assert 'JSON-formatted' in found.details


def tree(path):
    """Every entry under ``path``: its type, mode, size, times, content."""
    entries = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            st = os.lstat(full)
            digest = None
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, 'rb') as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            entries[os.path.relpath(full, path)] = (
                st.st_mode, st.st_size, st.st_mtime_ns, digest,
                sorted(os.listxattr(full, follow_symlinks=False)))
    return entries


def schema_and_rows(url):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sorted(sa.inspect(conn).get_table_names())
            return names, {name: sorted(map(tuple, conn.execute(sa.text(
                'SELECT * FROM %s' % name)))) for name in names}
    finally:
        engine.dispose()


class TestChangesNothing:
    """A whole run, warnings and failures included, leaves all as it was."""

    def run_all(self, subject, capsys):
        code = subject.check()
        capsys.readouterr()
        return code

    def test_sqlite(self, tmp_path, sqlite_cache, capsys):
        sqlite_cache.add_image()
        sqlite_cache.add_invalid()
        subject = checks(tmp_path, sections_for(sqlite_cache))
        before = tree(tmp_path)
        assert self.run_all(subject, capsys) == SUCCESS
        assert tree(tmp_path) == before

    def test_a_bare_directory(self, tmp_path, capsys):
        cache = tmp_path / 'cache'
        cache.mkdir()
        sections = {'DEFAULT': {'image_cache_dir': str(cache),
                                'image_cache_driver': 'sqlite'},
                    'api': {'auth_strategy': 'keystone'},
                    'oslo_concurrency': {
                        'lock_path': str(tmp_path / 'locks')}}
        subject = checks(tmp_path, sections)
        before = tree(tmp_path)
        assert self.run_all(subject, capsys) == FAILURE
        assert tree(tmp_path) == before
        assert os.listdir(cache) == []

    def test_xattr(self, tmp_path, capsys):
        cache = caches.XattrCache(tmp_path / 'cache')
        cache.add_image(hits=3)
        subject = checks(tmp_path, sections_for(cache))
        before = tree(tmp_path)
        assert self.run_all(subject, capsys) == WARNING    # no lock_path
        assert tree(tmp_path) == before

    def test_centralized_db(self, tmp_path, central_cache, capsys):
        central_cache.add_image()
        for node_url in (caches.NODE_URL, 'http://node-3.example.org:9292'):
            subject = checks(tmp_path, sections_for(
                central_cache, worker_self_reference_url=node_url))
            before = tree(tmp_path), schema_and_rows(central_cache.url)
            assert self.run_all(subject, capsys) in (SUCCESS, WARNING)
            assert (tree(tmp_path), schema_and_rows(central_cache.url)) == (
                before)


def test_an_invalid_value_a_check_reads_is_its_failure(tmp_path,
                                                       sqlite_cache):
    """Not a crash: each check that reads it fails, naming it."""
    sections = sections_for(sqlite_cache, image_cache_driver='memcache',
                            api={'auth_strategy': 'nokeystone'})
    subject = checks(tmp_path, sections)
    found = {title: check(subject) for title, check
             in upgrade_checks.Checks._upgrade_checks}
    subject.close()
    driver = ("invalid value 'memcache' for [DEFAULT] image_cache_driver in "
              '%s' % (tmp_path / 'cache-maint.conf'))
    assert found['Configuration'].code == FAILURE
    for title in ('Cache directory', 'Metadata driver', 'Node reference',
                  'Node index'):
        assert found[title].code == FAILURE
        assert found[title].details.startswith('not checked: ' + driver)
    assert found['Keystone authentication'].code == FAILURE
    assert ("not checked: invalid value 'nokeystone' for [api] "
            'auth_strategy') in found['Keystone authentication'].details
    assert found['Policy file'].code == SUCCESS


class Crashing(upgrade_checks.Checks):
    """A check with a bug: what a crash looks like."""

    def check_broken(self):
        return {}['missing']

    _upgrade_checks = upgrade_checks.Checks._upgrade_checks + (
        ('Broken', upgrade_checks._guarded('Broken', check_broken)),)


def test_a_crashing_check_is_one_line_and_the_error_status(
        tmp_path, sqlite_cache, capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['cache-maint-status'])
    subject = checks(tmp_path, sections_for(sqlite_cache))
    crashing = Crashing(subject.conf)
    assert crashing.check() == 255
    out, err = capsys.readouterr()
    assert out == ''
    assert err == ('cache-maint-status: error: the "Broken" check failed '
                   "unexpectedly: KeyError: 'missing'\n")
