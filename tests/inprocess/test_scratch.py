"""``cache_maint.scratch``: a scratch cache in Glance's format, per driver.

Each scratch cache is read back by the project's own drivers and
maintenance code (list, status, clean, prune) and by the raw formats Glance
writes (rows, xattrs, times, modes). A refusal changes nothing.
"""

import datetime
import errno
import os
import random
import sqlite3
import stat
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from cache_maint import cache as cm_cache
from cache_maint import cachedir
from cache_maint.cmd import simulate
from cache_maint import exception
from cache_maint import images as cm_images
from cache_maint import locks
from cache_maint import maintenance
from cache_maint import runs
from cache_maint import scratch
from cache_maint import state as cm_state
from cache_maint import status as cm_status

from tests.support import caches
from tests.support import databases
from tests.support import env
from tests.support import fs
from tests.support import glance_schema
from tests.support import settings

KIB = 1024
MIB = 1024 ** 2
BACKENDS = ['sqlite', 'xattr', 'centralized_db-sqlite',
            'centralized_db-postgresql', 'centralized_db-mysql']
NOW = 1796605200.0      # 2026-12-07 01:00:00 UTC
SIZE = 3 * MIB
LIMIT = 2 * MIB
COUNT = 12
SEED = 1234


class Place:
    """Where a scratch cache goes: a directory and, maybe, a database."""

    def __init__(self, kind, tmp_path, url=None):
        self.kind = kind
        self.path = str(tmp_path / 'cache')
        self.url = url
        self.driver = kind.split('-')[0]

    def conf(self, path=None, **overrides):
        options = {'image_cache_driver': self.driver,
                   'image_cache_max_size': LIMIT}
        if self.url:
            options.update(database__connection=self.url,
                           worker_self_reference_url=caches.NODE_URL)
        options.update(overrides)
        return settings.make_conf(path or self.path, **options)

    def cache(self, conf=None):
        return cm_cache.Cache.from_conf(conf or self.conf())

    def build(self, conf=None, **kwargs):
        conf = conf or self.conf()
        kwargs.setdefault('size', SIZE)
        kwargs.setdefault('images', COUNT)
        kwargs.setdefault('seed', SEED)
        kwargs.setdefault('now', NOW)
        cache = self.cache(conf)
        try:
            return scratch.build(conf, cache, **kwargs)
        finally:
            cache.close()

    def planned(self, size=SIZE, images=COUNT, seed=SEED, now=NOW,
                stall_time=86400):
        return scratch.plan(random.Random(seed), size, images, now,
                            stall_time)


@pytest.fixture(params=BACKENDS)
def place(request, tmp_path):
    kind = request.param
    if not kind.startswith('centralized_db'):
        yield Place(kind, tmp_path)
        return
    server = kind.split('-', 1)[1]
    if server == 'sqlite':
        yield Place(kind, tmp_path, 'sqlite:///%s' % (tmp_path / 'glance.db'))
        return
    with databases.scratch_database(server) as url:
        yield Place(kind, tmp_path, url)


@pytest.fixture
def sqlite_place(tmp_path):
    return Place('sqlite', tmp_path)


@pytest.fixture(params=['sqlite', 'postgresql', 'mysql'])
def central_url(request, tmp_path):
    """An empty database for centralized_db: no table yet."""
    if request.param == 'sqlite':
        yield 'sqlite:///%s' % (tmp_path / 'glance.db')
        return
    with databases.scratch_database(request.param) as url:
        yield url


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs with these options (root only): its path."""
    mounted = []

    def mount(options):
        if os.getuid() != 0:
            env.unavailable('mounting a tmpfs needs root')
        where = tmp_path / ('tmpfs%d' % len(mounted))
        where.mkdir()
        result = subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(where)],
            capture_output=True, text=True)
        if result.returncode != 0:
            env.unavailable('cannot mount a tmpfs: %s' % result.stderr)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        fs.unmount(where)


def tree(path):
    """Every entry under ``path``: its kind, size, mode, times and xattrs."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            st = os.lstat(full)
            found[os.path.relpath(full, path)] = (
                stat.S_IFMT(st.st_mode), st.st_size, st.st_mode,
                st.st_mtime_ns, sorted(os.listxattr(full,
                                                    follow_symlinks=False)))
    return found


def content(path):
    """The files a scratch cache holds, with their sizes, times, xattrs."""
    found = {}
    for sub in ('', 'incomplete', 'invalid', 'queue'):
        for name in os.listdir(os.path.join(path, sub)):
            full = os.path.join(path, sub, name)
            if sub or len(name) == 36:
                st = os.lstat(full)
                found[os.path.join(sub, name)] = (
                    st.st_mode, st.st_size, st.st_mtime_ns, st.st_atime_ns,
                    {key: os.getxattr(full, key)
                     for key in os.listxattr(full)})
    return found


def db_rows(url):
    """{table: sorted rows} of Glance's two tables, or {} without them."""
    engine = sa.create_engine(url)
    try:
        present = set(sa.inspect(engine).get_table_names())
        found = {}
        with engine.connect() as conn:
            for table in (glance_schema.node_reference,
                          glance_schema.cached_images):
                if table.name in present:
                    found[table.name] = sorted(
                        tuple(map(str, row))
                        for row in conn.execute(sa.select(table)))
        return found
    finally:
        engine.dispose()


class TestFill:
    """What the project's own code reads from a scratch cache."""

    def test_list_shows_the_images_as_planned(self, place):
        made = place.build()
        planned = place.planned()
        cache = place.cache()
        listing = cm_images.list_cache(cache)
        got = {r['image_id']: r for r in listing['cached_images']}
        expected = {i.image_id: i for i in planned.images}
        if place.driver == 'xattr':
            # The files are the records: those without user.hits too.
            expected.update({i.image_id: i for i in planned.untracked})
        assert set(got) == set(expected)
        for image_id, image in expected.items():
            record = got[image_id]
            assert record['size'] == image.size
            assert record['hits'] == image.hits
            # xattr keeps whole-second atimes; MySQL whole seconds.
            assert record['last_accessed'] == pytest.approx(
                image.last_accessed, abs=1)
            assert record['last_modified'] == pytest.approx(
                image.cached_at, abs=1)
        assert listing['queued_images'] == [q for q, _ in planned.queued]
        assert made['images'] == {
            'files': COUNT, 'bytes': sum(i.size for i in planned.images)}
        assert made['size_bytes'] == SIZE
        assert made['over_limit_bytes'] == SIZE - LIMIT
        cache.close()

    def test_status_counts_everything(self, place):
        place.build()
        planned = place.planned()
        conf = place.conf()
        cache = place.cache(conf)
        document = cm_status.status(
            conf, cache, runs.TaskRunner(conf, cache, threading.Event()),
            service_running=False, public=False)
        part = document['cache']
        assert part['images'] == COUNT + scratch.EXTRAS
        assert part['size_bytes'] == SIZE
        assert part['incomplete'] == {
            'files': 2 * scratch.EXTRAS,
            'bytes': sum(p.size for p in planned.incomplete)}
        assert part['invalid'] == {
            'files': scratch.EXTRAS,
            'bytes': sum(p.size for p in planned.invalid)}
        assert part['queued'] == {'files': scratch.EXTRAS, 'bytes': 0}
        cache.close()

    def test_clean_finds_exactly_the_stalled_and_failed(self, place):
        now = time.time()
        place.build(now=now)
        planned = place.planned(now=now)
        cache = place.cache()
        result = maintenance.clean(cache, 86400, dry_run=True)
        expected = {'invalid/%s' % p.image_id for p in planned.invalid} | {
            'incomplete/%s' % p.image_id for p in planned.incomplete
            if p.note == 'stalled'}
        assert set(result.removed_ids()) == expected
        assert result.records_forgotten == 0
        result = maintenance.clean(cache, 86400)
        assert set(result.removed_ids()) == expected
        fresh = {p.image_id for p in planned.incomplete if p.note == 'fresh'}
        assert set(os.listdir(os.path.join(place.path, 'incomplete'))) == \
            fresh
        assert os.listdir(os.path.join(place.path, 'invalid')) == []
        cache.close()

    def test_prune_brings_it_under_the_limit(self, place):
        place.build(now=time.time())
        planned = place.planned()
        cache = place.cache()
        cache.setup()
        result = maintenance.prune(cache, LIMIT)
        left = cache.files.scan_images()
        assert sum(f.size for f in left.values()) <= LIMIT
        assert result.size_before == SIZE
        assert result.files >= 1
        if place.driver != 'xattr':
            # Untracked files go first, then the least recently used.
            assert not {i.image_id for i in planned.untracked} & set(left)
        cache.close()

    def test_lru_and_hits_tell_different_orders(self, sqlite_place):
        """The eviction policies have something to tell apart."""
        planned = sqlite_place.planned()
        by_recency = [i.image_id for i in sorted(
            planned.images, key=lambda i: i.last_accessed)]
        by_hits = [i.image_id for i in sorted(
            planned.images, key=lambda i: (i.hits, i.last_accessed))]
        assert by_recency != by_hits
        assert len({i.hits for i in planned.images}) > 3
        assert 0 in {i.hits for i in planned.images}


class TestGlanceFormat:
    """The raw formats, as Glance's drivers write them."""

    def test_files(self, place):
        umask = os.umask(0o022)
        try:
            place.build()
        finally:
            os.umask(umask)
        planned = place.planned()
        base = place.path
        assert stat.S_IMODE(os.stat(base).st_mode) == 0o755
        for sub in ('incomplete', 'invalid', 'queue'):
            assert stat.S_IMODE(os.stat(os.path.join(base, sub)).st_mode) \
                == 0o755
        for image in planned.images + planned.untracked:
            st = os.stat(os.path.join(base, image.image_id))
            assert stat.S_IMODE(st.st_mode) == 0o644
            assert st.st_size == image.size
            assert st.st_mtime == pytest.approx(image.cached_at)
            assert st.st_atime == pytest.approx(image.last_accessed)
            # Sparse: next to no blocks.
            assert st.st_blocks * 512 < image.size
        for partial in planned.incomplete:
            st = os.stat(os.path.join(base, 'incomplete', partial.image_id))
            assert (st.st_size, st.st_mtime) == (partial.size,
                                                 pytest.approx(partial.mtime))
        for partial in planned.invalid:
            st = os.stat(os.path.join(base, 'invalid', partial.image_id))
            assert st.st_size == partial.size
        for image_id, mtime in planned.queued:
            st = os.stat(os.path.join(base, 'queue', image_id))
            assert (st.st_size, st.st_mtime) == (0, pytest.approx(mtime))

    def test_xattrs(self, tmp_path):
        place = Place('xattr', tmp_path)
        place.build()
        planned = place.planned()
        for image in planned.images:
            path = os.path.join(place.path, image.image_id)
            assert os.listxattr(path) == ['user.hits']
            assert os.getxattr(path, 'user.hits') == str(image.hits).encode()
        for image in planned.untracked:
            assert os.listxattr(os.path.join(place.path, image.image_id)) \
                == []
        for partial in planned.invalid:
            path = os.path.join(place.path, 'invalid', partial.image_id)
            assert os.listxattr(path) == ['user.error']
            assert os.getxattr(path, 'user.error') == partial.note.encode()
        for partial in planned.incomplete:
            path = os.path.join(place.path, 'incomplete', partial.image_id)
            assert os.listxattr(path) == []

    def test_sqlite_rows(self, sqlite_place):
        sqlite_place.build()
        planned = sqlite_place.planned()
        conn = sqlite3.connect(os.path.join(sqlite_place.path, 'cache.db'))
        try:
            schema, = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'cached_images'"
            ).fetchone()
            rows = conn.execute(
                'SELECT image_id, last_accessed, last_modified, size, hits, '
                'checksum, typeof(last_accessed), typeof(hits) '
                'FROM cached_images').fetchall()
        finally:
            conn.close()
        assert ' '.join(schema.split()) == ' '.join(
            glance_schema.SQLITE.replace('IF NOT EXISTS ', '').strip()
            .rstrip(';').split())
        assert sorted(rows) == sorted(
            (i.image_id, i.last_accessed, i.cached_at, i.size, i.hits, None,
             'real', 'integer') for i in planned.images)

    def test_central_rows(self, tmp_path, central_url):
        url = central_url
        place = Place('centralized_db-x', tmp_path, url)
        place.build()
        planned = place.planned()
        engine = sa.create_engine(url)
        images = glance_schema.cached_images
        nodes = glance_schema.node_reference
        try:
            with engine.connect() as conn:
                urls = {url: node for url, node in conn.execute(sa.select(
                    nodes.c.node_reference_url, nodes.c.node_reference_id))}
                rows = conn.execute(sa.select(
                    images.c.image_id, images.c.last_accessed,
                    images.c.last_modified, images.c.size, images.c.hits,
                    images.c.checksum, images.c.node_reference_id)).all()
        finally:
            engine.dispose()
        assert set(urls) == {caches.NODE_URL}
        expected = {i.image_id: i for i in planned.images}
        assert {r.image_id for r in rows} == set(expected)
        for row in rows:
            image = expected[row.image_id]
            assert row.node_reference_id == urls[caches.NODE_URL]
            assert row.last_accessed.tzinfo is None
            assert (row.size, row.hits, row.checksum) == (image.size,
                                                          image.hits, None)
            for value, epoch in ((row.last_accessed, image.last_accessed),
                                 (row.last_modified, image.cached_at)):
                assert value.replace(
                    tzinfo=datetime.timezone.utc).timestamp() == \
                    pytest.approx(epoch, abs=1)

    def test_central_this_node_registered_without_rows(self, tmp_path):
        """As glance-api leaves it: this node alone, no cached image."""
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        central = caches.CentralCache(tmp_path / 'elsewhere', url)
        central.node_id()
        central.engine.dispose()
        made = Place('centralized_db-sqlite', tmp_path, url).build()
        assert made['images']['files'] == COUNT
        rows = db_rows(url)
        assert len(rows['node_reference']) == 1
        assert len(rows['cached_images']) == COUNT

    def test_central_tables_made_as_db_sync_does(self, tmp_path):
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        Place('centralized_db-sqlite', tmp_path, url).build()
        engine = sa.create_engine(url)
        try:
            assert set(sa.inspect(engine).get_table_names()) == {
                'node_reference', 'cached_images'}
        finally:
            engine.dispose()


class TestDeterminism:
    def test_same_seed_same_cache(self, tmp_path):
        first = Place('sqlite', tmp_path / 'a')
        second = Place('sqlite', tmp_path / 'b')
        os.makedirs(tmp_path / 'a')
        os.makedirs(tmp_path / 'b')
        assert first.build() == dict(second.build(),
                                     image_cache_dir=first.path)
        assert content(first.path) == content(second.path)
        assert len(content(first.path)) == COUNT + 5 * scratch.EXTRAS
        listings = [cm_images.list_cache(p.cache()) for p in (first, second)]
        assert listings[0] == listings[1]

    def test_another_seed_another_cache(self, tmp_path):
        first = Place('sqlite', tmp_path / 'a')
        second = Place('sqlite', tmp_path / 'b')
        os.makedirs(tmp_path / 'a')
        os.makedirs(tmp_path / 'b')
        first.build(seed=1)
        second.build(seed=2)
        assert not set(content(first.path)) & set(content(second.path))

    def test_a_seed_is_drawn_and_reported(self, sqlite_place):
        made = sqlite_place.build(seed=None)
        assert isinstance(made['seed'], int)


class TestEmptyLayout:
    def test_an_empty_glance_layout_is_filled(self, place):
        os.makedirs(place.path)
        conf = place.conf()
        cache = place.cache(conf)
        if place.url:
            cache.metadata.sync_schema()
        cache.setup()       # what glance-api or cache-maint leave
        cache.close()
        made = place.build(conf)
        assert made['images']['files'] == COUNT

    def test_state_dir_and_lock_files_are_no_content(self, sqlite_place):
        os.makedirs(os.path.join(sqlite_place.path, '.cache-maint'))
        open(os.path.join(sqlite_place.path, 'glance-cache-prune'),
             'w').close()
        assert sqlite_place.build()['images']['files'] == COUNT

    @pytest.mark.parametrize('driver', ['sqlite', 'xattr'])
    def test_what_cache_maint_leaves(self, tmp_path, driver):
        """Its state database, its locks, its service lock with a pid."""
        place = Place(driver, tmp_path)
        os.makedirs(place.path)
        conf = place.conf()
        store = cm_state.StateStore(os.path.join(place.path, '.cache-maint'))
        store.pin('8d6e3c4a-7d51-4b0e-9f4c-1a2b3c4d5e6f')
        with locks.TaskLocks(conf).hold('prune', 1):
            pass
        locks.ServiceLock(conf).release()
        lock_dir = locks.lock_path(conf)
        with open(os.path.join(lock_dir, locks.SERVICE_LOCK_NAME)) as f:
            assert f.read() == '%d\n' % os.getpid()
        for name in ('-journal', '-wal', '-shm'):
            open(os.path.join(place.path, '.cache-maint', 'state.db' + name),
                 'w').close()
        assert place.build(conf)['images']['files'] == COUNT


def refusal(place, conf=None, **kwargs):
    """Build, expecting a refusal: its one-line message."""
    with pytest.raises(exception.CacheMaintError) as raised:
        place.build(conf, **kwargs)
    message = str(raised.value)
    assert '\n' not in message
    return message


class TestRefusals:
    """A refusal writes nothing, in the directory or the database."""

    @pytest.mark.parametrize('where', ['', 'incomplete', 'invalid', 'queue'])
    def test_a_file_anywhere(self, place, where, tmp_path):
        place.build()
        os.makedirs(tmp_path / 'other')
        placed = Place(place.kind, tmp_path / 'other', place.url)
        os.makedirs(os.path.join(placed.path, where), exist_ok=True)
        for sub in ('incomplete', 'invalid', 'queue'):
            os.makedirs(os.path.join(placed.path, sub), exist_ok=True)
        with open(os.path.join(placed.path, where, 'stray'), 'w') as f:
            f.write('x')
        before = tree(placed.path)
        rows = db_rows(place.url) if place.url else None
        message = refusal(placed)
        assert 'not empty' in message and 'stray' in message
        assert tree(placed.path) == before
        if place.url:
            assert db_rows(place.url) == rows

    def test_a_filled_cache_is_refused(self, place):
        place.build()
        before = tree(place.path)
        rows = db_rows(place.url) if place.url else None
        message = refusal(place)
        assert 'refusing to fill' in message
        assert tree(place.path) == before
        if place.url:
            assert db_rows(place.url) == rows

    def test_records_of_this_node_are_refused(self, tmp_path):
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        central = caches.CentralCache(tmp_path / 'elsewhere', url)
        central.add_row()
        central.engine.dispose()
        place = Place('centralized_db-sqlite', tmp_path, url)
        rows = db_rows(url)
        message = refusal(place)
        assert caches.NODE_URL in message and '1 cached image' in message
        assert not os.path.exists(place.path)
        assert db_rows(url) == rows

    def test_sqlite_records_are_refused(self, sqlite_place):
        os.makedirs(sqlite_place.path)
        built = caches.SqliteCache(sqlite_place.path)
        built.add_row()
        before = tree(sqlite_place.path)
        assert 'records 1 cached image' in refusal(sqlite_place)
        assert tree(sqlite_place.path) == before

    @pytest.mark.parametrize('content', [b'', b'not a database' * 100])
    def test_a_corrupt_or_empty_cache_db(self, sqlite_place, content):
        os.makedirs(sqlite_place.path)
        db = os.path.join(sqlite_place.path, 'cache.db')
        with open(db, 'wb') as f:
            f.write(content)
        before = tree(sqlite_place.path)
        assert 'cache.db' in refusal(sqlite_place)
        assert tree(sqlite_place.path) == before

    def test_a_glance_database(self, tmp_path):
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text('CREATE TABLE images (id VARCHAR(36))'))
        engine.dispose()
        glance_schema.create_central_tables(url)
        place = Place('centralized_db-sqlite', tmp_path, url)
        message = refusal(place)
        assert 'Glance database' in message
        assert not os.path.exists(place.path)
        assert set(db_rows(url)) == {'node_reference', 'cached_images'}
        assert db_rows(url) == {'node_reference': [], 'cached_images': []}

    def test_no_node_url(self, tmp_path):
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        place = Place('centralized_db-sqlite', tmp_path, url)
        conf = place.conf(worker_self_reference_url=None)
        assert 'worker_self_reference_url' in refusal(place, conf)
        assert not os.path.exists(place.path)
        assert not os.path.exists(tmp_path / 'glance.db')

    def test_a_file_in_place_of_the_directory(self, sqlite_place):
        with open(sqlite_place.path, 'w') as f:
            f.write('x')
        assert 'not a directory' in refusal(sqlite_place)
        with open(sqlite_place.path) as f:
            assert f.read() == 'x'

    def test_a_symlinked_directory(self, sqlite_place, tmp_path):
        os.makedirs(tmp_path / 'real')
        os.symlink(tmp_path / 'real', sqlite_place.path)
        assert 'symlink' in refusal(sqlite_place)
        assert os.listdir(tmp_path / 'real') == []

    def test_a_missing_parent(self, tmp_path):
        place = Place('sqlite', tmp_path / 'missing')
        assert 'parent directory' in refusal(place)
        assert not os.path.exists(tmp_path / 'missing')

    def test_a_read_only_parent(self, tmp_path):
        from tests.support import fs
        os.makedirs(tmp_path / 'parent')
        place = Place('sqlite', tmp_path / 'parent')
        with fs.read_only(tmp_path / 'parent'):
            message = refusal(place)
            assert 'cannot create' in message
            assert os.listdir(tmp_path / 'parent') == []

    @pytest.mark.parametrize('kwargs, needle', [
        ({'images': 0}, '--images 0'),
        ({'images': scratch.MAX_IMAGES + 1}, '--images'),
        ({'size': 0}, '--size 0'),
        ({'size': 10 * KIB}, 'too small'),
        ({'size': 2 ** 62}, 'more than a scratch cache holds'),
        ({'size': scratch.MAX_SIZE + 1}, '--size %d is more than'
         % (scratch.MAX_SIZE + 1)),
    ])
    def test_bad_counts(self, sqlite_place, kwargs, needle):
        assert needle in refusal(sqlite_place, **kwargs)
        assert not os.path.exists(sqlite_place.path)

    def test_a_failed_build_takes_back_what_it_made(self, sqlite_place,
                                                    monkeypatch):
        def fail(self, images):
            raise exception.MetadataError('disk on fire')

        monkeypatch.setattr(scratch._SqliteRecords, 'write', fail)
        assert refusal(sqlite_place) == 'disk on fire'
        assert not os.path.exists(sqlite_place.path)

    def test_a_failed_build_in_an_empty_layout_leaves_it_empty(
            self, sqlite_place, monkeypatch):
        os.makedirs(os.path.join(sqlite_place.path, 'queue'))

        def fail(self, images):
            raise exception.MetadataError('disk on fire')

        monkeypatch.setattr(scratch._SqliteRecords, 'write', fail)
        refusal(sqlite_place)
        for sub in ('incomplete', 'invalid', 'queue'):
            assert os.listdir(os.path.join(sqlite_place.path, sub)) == []
        monkeypatch.undo()
        assert sqlite_place.build()['images']['files'] == COUNT


def glance_db(path):
    """An existing sqlite cache database with Glance's empty table."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(glance_schema.SQLITE)
    finally:
        conn.close()
    return path


def sqlite_rows(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute('SELECT * FROM cached_images').fetchall()
    finally:
        conn.close()


class TestSqliteDatabaseElsewhere:
    """image_cache_sqlite_db must land in the scratch cache's directory."""

    @pytest.mark.parametrize('exists', [False, True])
    @pytest.mark.parametrize('option', ['absolute', 'dotdot', 'subdir'])
    def test_refused(self, tmp_path, option, exists):
        real = glance_db(str(tmp_path / 'realcache' / 'cache.db'))
        given = {'absolute': real, 'dotdot': '../realcache/cache.db',
                 'subdir': 'sub/cache.db'}[option]
        place = Place('sqlite', tmp_path)
        if exists:
            os.makedirs(os.path.join(place.path, 'queue'))
        before = tree(str(tmp_path))
        conf = place.conf(image_cache_sqlite_db=given)
        message = refusal(place, conf)
        assert 'outside image_cache_dir' in message
        assert tree(str(tmp_path)) == before
        assert sqlite_rows(real) == []

    def test_a_symlinked_database(self, tmp_path):
        real = glance_db(str(tmp_path / 'realcache' / 'cache.db'))
        place = Place('sqlite', tmp_path)
        os.makedirs(place.path)
        os.symlink(real, os.path.join(place.path, 'cache.db'))
        before = tree(str(tmp_path))
        assert 'it holds cache.db (a symlink)' in refusal(place)
        assert tree(str(tmp_path)) == before
        # Were the directory not looked at, the database itself is refused.
        records = scratch._SqliteRecords(place.conf(), place.cache().metadata)
        with pytest.raises(exception.ConfigError) as raised:
            records.check()
        assert 'lands on %s, outside image_cache_dir' % real in str(
            raised.value)
        assert sqlite_rows(real) == []

    def test_a_symlinked_parent_is_the_directory(self, tmp_path):
        """Links resolved on both sides: the same directory is accepted."""
        os.makedirs(tmp_path / 'real')
        os.symlink(tmp_path / 'real', tmp_path / 'link')
        place = Place('sqlite', tmp_path / 'link')
        assert place.build()['images']['files'] == COUNT
        assert len(sqlite_rows(str(tmp_path / 'real' / 'cache' / 'cache.db'))
                   ) == COUNT


class TestSharedDatabase:
    """centralized_db: only an empty database, or one of this node only."""

    def _refused(self, tmp_path, url):
        place = Place('centralized_db-x', tmp_path, url)
        rows = db_rows(url)
        message = refusal(place)
        assert not os.path.exists(place.path)
        assert db_rows(url) == rows
        return message

    def test_rows_of_another_node(self, tmp_path, central_url):
        other = caches.CentralCache(tmp_path / 'other', central_url,
                                    node_url=caches.OTHER_NODE_URL)
        other.add_image(size=5 * KIB, hits=3)
        other.engine.dispose()
        message = self._refused(tmp_path, central_url)
        assert message == (
            'refusing to write scratch records in the database of '
            '[database] connection: it holds 1 cached image record and 1 '
            'other node in node_reference (%s); a scratch cache goes only '
            'into an empty database, or one where this node (%s) alone is '
            'registered' % (caches.OTHER_NODE_URL, caches.NODE_URL))

    def test_another_node_without_rows(self, tmp_path):
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        other = caches.CentralCache(tmp_path / 'other', url,
                                    node_url=caches.OTHER_NODE_URL)
        other.node_id()
        other.node_id('http://NODE-1.example.org:9292')
        other.engine.dispose()
        message = self._refused(tmp_path, url)
        assert ('it holds 2 other nodes in node_reference '
                '(http://NODE-1.example.org:9292, %s)'
                % caches.OTHER_NODE_URL) in message

    def test_rows_of_another_node_under_this_node(self, tmp_path):
        """Any row is refused, whoever's: here this node is registered."""
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        central = caches.CentralCache(tmp_path / 'elsewhere', url)
        central.add_row()
        central.engine.dispose()
        message = self._refused(tmp_path, url)
        assert 'it holds 1 cached image record;' in message

    def test_many_nodes_are_counted_up_to_a_bound(self, tmp_path,
                                                  monkeypatch):
        monkeypatch.setattr(scratch, 'COUNTED', 3)
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        other = caches.CentralCache(tmp_path / 'other', url)
        for n in range(5):
            other.node_id('http://node-%d.example.org' % (n + 10))
        other.engine.dispose()
        message = self._refused(tmp_path, url)
        assert ('more than 3 other nodes in node_reference '
                '(http://node-10.example.org, http://node-11.example.org, '
                'http://node-12.example.org, ...)') in message

    def test_a_node_table_alone(self, tmp_path):
        """A table missing is no reason to look past the other."""
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')
        engine = sa.create_engine(url)
        try:
            glance_schema.node_reference.create(engine)
            with engine.begin() as conn:
                conn.execute(glance_schema.node_reference.insert().values(
                    node_reference_url=caches.OTHER_NODE_URL))
            message = self._refused(tmp_path, url)
            assert '1 other node in node_reference' in message
            assert set(sa.inspect(engine).get_table_names()) == {
                'node_reference'}
        finally:
            engine.dispose()

    def test_another_node_coming_meanwhile(self, tmp_path, central_url,
                                           monkeypatch):
        """Checked again in the transaction that writes."""
        real_prepare = scratch._CentralRecords.prepare

        def prepare(records):
            real_prepare(records)
            other = caches.CentralCache(tmp_path / 'other', central_url,
                                        node_url=caches.OTHER_NODE_URL)
            other.node_id()
            other.engine.dispose()

        monkeypatch.setattr(scratch._CentralRecords, 'prepare', prepare)
        place = Place('centralized_db-x', tmp_path, central_url)
        message = refusal(place)
        assert '1 other node in node_reference' in message
        assert not os.path.exists(place.path)
        rows = db_rows(central_url)
        assert [url for _, url in rows['node_reference']] == [
            caches.OTHER_NODE_URL]
        assert rows['cached_images'] == []

    def test_a_failed_write_is_one_line(self, tmp_path, monkeypatch):
        """The database's error, its password left out, files taken back."""
        url = 'sqlite:///%s' % (tmp_path / 'glance.db')

        def prepare(records):
            records.driver.sync_schema()
            with records.driver.engine.begin() as conn:
                conn.execute(sa.text('DROP TABLE cached_images'))

        monkeypatch.setattr(scratch._CentralRecords, 'prepare', prepare)
        place = Place('centralized_db-x', tmp_path, url)
        message = refusal(place)
        assert message.startswith(
            'cannot record the scratch images in the database of '
            '[database] connection (%s): ' % url)
        assert 'cached_images' in message
        assert not os.path.exists(place.path)

    def test_an_unreachable_server_is_one_line(self, tmp_path):
        # The driver named: without one, SQLAlchemy's default (psycopg2)
        # is taken where it is installed, psycopg where it is not.
        url = 'postgresql+psycopg://cm:secret@127.0.0.1:1/nowhere'
        place = Place('centralized_db-x', tmp_path, url)
        message = refusal(place)
        assert message.startswith(
            'cannot read the schema in the database of [database] '
            'connection (postgresql+psycopg://cm:***@127.0.0.1:1/nowhere): ')
        assert 'secret' not in message
        assert not os.path.exists(place.path)


class TestNotEmpty:
    """Lock files are empty; cache-maint's directories hold their own."""

    @pytest.mark.parametrize('where, name, data, found', [
        ('', 'glance-cache-prune', b'x' * 100 * KIB,
         'glance-cache-prune (a lock file of 102400 bytes)'),
        ('', 'cache-maint-service', b'not a pid\n',
         'cache-maint-service (a lock file of 10 bytes)'),
        ('', 'cache-maint-service', b'1234\n' * 2,
         'cache-maint-service (a lock file of 10 bytes)'),
        ('.cache-maint-locks', 'glance-cache-clean', b'data',
         '.cache-maint-locks/glance-cache-clean (a lock file of 4 bytes)'),
        ('.cache-maint-locks', 'anything', b'',
         '.cache-maint-locks/anything'),
        ('.cache-maint', 'notes.txt', b'', '.cache-maint/notes.txt'),
        ('.cache-maint', 'state.db.bak', b'x', '.cache-maint/state.db.bak'),
        ('.cache-maint/state.db', 'inside', b'',
         '.cache-maint/state.db'),
        ('.cache-maint-locks/sub', 'glance-cache', b'',
         '.cache-maint-locks/sub'),
    ])
    def test_refused(self, sqlite_place, where, name, data, found):
        os.makedirs(os.path.join(sqlite_place.path, where))
        with open(os.path.join(sqlite_place.path, where, name), 'wb') as f:
            f.write(data)
        before = tree(sqlite_place.path)
        message = refusal(sqlite_place)
        assert 'it is not empty (it holds %s)' % found in message
        assert tree(sqlite_place.path) == before

    @pytest.mark.parametrize('name', ['glance-cache-prune', 'cache.db',
                                      '.cache-maint/state.db'])
    def test_a_symlink_in_place_of_a_file(self, sqlite_place, tmp_path,
                                          name):
        os.makedirs(os.path.join(sqlite_place.path, '.cache-maint'))
        target = tmp_path / 'elsewhere'
        target.write_text('')
        os.symlink(target, os.path.join(sqlite_place.path, name))
        before = tree(sqlite_place.path)
        message = refusal(sqlite_place)
        assert 'not empty' in message or 'outside' in message
        assert tree(sqlite_place.path) == before
        assert target.read_text() == ''

    def test_a_symlinked_lock_file_is_named(self, sqlite_place, tmp_path):
        os.makedirs(sqlite_place.path)
        os.symlink(tmp_path / 'nowhere',
                   os.path.join(sqlite_place.path, 'glance-cache'))
        assert 'it holds glance-cache (a symlink)' in refusal(sqlite_place)


class TestFullFilesystem:
    """An error of the filesystem while writing is one line, taken back."""

    @pytest.fixture(params=['queue', 'utime'])
    def failing(self, request, monkeypatch):
        if request.param == 'queue':
            def queue_image(files, image_id):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                              image_id)
            monkeypatch.setattr(cachedir.CacheDir, 'queue_image',
                                queue_image)
        else:
            real_utime = os.utime

            def utime(path, *args, **kwargs):
                if '/queue/' in str(path):
                    raise OSError(errno.EIO, os.strerror(errno.EIO), path)
                return real_utime(path, *args, **kwargs)
            monkeypatch.setattr(os, 'utime', utime)
        return request.param

    def test_a_new_directory_goes(self, sqlite_place, failing):
        message = refusal(sqlite_place)
        assert message.startswith('cannot write the scratch cache %s: '
                                  % sqlite_place.path)
        assert ('No space left on device' if failing == 'queue'
                else 'Input/output error') in message
        assert not os.path.exists(sqlite_place.path)

    def test_an_empty_layout_stays_empty(self, place, failing,
                                         monkeypatch):
        os.makedirs(os.path.join(place.path, 'queue'))
        assert 'cannot write the scratch cache' in refusal(place)
        assert not {n for n in os.listdir(place.path) if len(n) == 36}
        for sub in ('incomplete', 'invalid', 'queue'):
            assert os.listdir(os.path.join(place.path, sub)) == []
        if place.url:
            assert db_rows(place.url)['cached_images'] == []
        monkeypatch.undo()
        assert place.build()['images']['files'] == COUNT

    def test_a_real_full_filesystem(self, tmpfs, monkeypatch):
        """No inode is left when the queue is written: taken back."""
        monkeypatch.setattr(scratch, 'EXTRA_INODES', 0)
        mount = tmpfs('size=200m,nr_inodes=15')
        place = Place('sqlite', mount)
        place.path = str(mount / 'sc')
        message = refusal(place, size=10 * KIB, images=1)
        assert message.startswith('cannot write the scratch cache %s: No '
                                  'space left on device (' % place.path)
        assert os.listdir(mount) == []

    def test_out_of_inodes_is_refused_first(self, tmpfs):
        """The repro: a tmpfs of 15 inodes, 3 images: nothing written."""
        mount = tmpfs('size=200m,nr_inodes=15')
        place = Place('sqlite', mount)
        place.path = str(mount / 'sc')
        message = refusal(place, size=10 * KIB, images=3)
        assert message == (
            'a scratch cache of 13 files needs 29 free inodes, and the '
            'filesystem of %s has 14: give fewer --images' % mount)
        assert os.listdir(mount) == []


class TestRoom:
    """Sparse files: what they take, not their size, must be free."""

    def test_more_than_free_space_on_a_tmpfs(self, tmpfs):
        mount = tmpfs('size=200m')
        place = Place('sqlite', mount)
        made = place.build(size=150 * MIB, images=COUNT)
        assert made['size_bytes'] == 150 * MIB
        st = os.statvfs(mount)
        assert (st.f_blocks - st.f_bfree) * st.f_frsize < 2 * MIB
        assert not [n for n in os.listdir(mount) if 'probe' in n]

    def test_no_room_for_the_margin(self, tmpfs):
        mount = tmpfs('size=8m')
        place = Place('sqlite', mount)
        message = refusal(place, size=100 * KIB, images=3)
        assert 'as they are sparse' in message
        assert 'give fewer --images' in message
        assert os.listdir(mount) == []

    def test_a_filesystem_without_sparse_files(self, tmpfs, monkeypatch):
        mount = tmpfs('size=200m')
        monkeypatch.setattr(scratch, '_sparse_files', lambda where: False)
        place = Place('sqlite', mount)
        message = refusal(place, size=190 * MIB, images=COUNT)
        assert 'the filesystem keeps no sparse file' in message
        assert 'give a smaller --size' in message
        assert os.listdir(mount) == []
        assert place.build(size=150 * MIB)['size_bytes'] == 150 * MIB

    def test_the_probe(self, tmpfs):
        mount = tmpfs('size=8m')
        assert scratch._sparse_files(str(mount)) is True
        assert os.listdir(mount) == []

    def test_no_probe_when_the_size_fits(self, sqlite_place, monkeypatch):
        def probe(where):
            raise AssertionError('probed')

        monkeypatch.setattr(scratch, '_sparse_files', probe)
        assert sqlite_place.build()['size_bytes'] == SIZE


class TestSizes:
    @pytest.mark.parametrize('text, expected', [
        ('1536M', 1536 * MIB), ('1.5G', 1536 * MIB), ('800K', 800 * KIB),
        ('12345', 12345), ('2GiB', 2 * 1024 * MIB), ('1t', 1024 ** 4),
        (' 3 M ', 3 * MIB), ('.5K', 512), ('0', 0)])
    def test_parse(self, text, expected):
        assert scratch.parse_size(text) == expected

    @pytest.mark.parametrize('text, expected', [
        ('1023.99999999999999999K', 1024 * KIB - 1),
        ('0.3K', 307), ('5.0K', 5 * KIB), ('5.K', 5 * KIB),
        ('16T', scratch.MAX_SIZE), ('%dK' % (scratch.MAX_SIZE // KIB - 1),
                                    scratch.MAX_SIZE - KIB),
        ('0.000000000000000000000000000000001T', 0)])
    def test_parse_is_exact(self, text, expected):
        """Decimal, not float: a fraction of a byte goes, nothing else."""
        assert scratch.parse_size(text) == expected

    @pytest.mark.parametrize('text', [
        '', 'garbage', '1.5', '5.0', '5.', '1.5B', '-5', '1e3', '5x', 'G',
        '1.2.3G', '٣M', 'inf', 'nan', '1,5G'])
    def test_parse_refuses(self, text):
        with pytest.raises(exception.ConfigError) as raised:
            scratch.parse_size(text)
        message = str(raised.value)
        assert message.startswith('--size %r is not a size' % text)
        assert '\n' not in message

    @pytest.mark.parametrize('text', [
        '9' * 30, '17T', '16.0000000000000000000000000001T',
        '%d' % (scratch.MAX_SIZE + 1), '9' * 5000 + 'K'])
    def test_parse_refuses_absurd_sizes(self, text):
        with pytest.raises(exception.ConfigError) as raised:
            scratch.parse_size(text)
        message = str(raised.value)
        assert 'is more than a scratch cache holds: give at most %d (16T)' \
            % scratch.MAX_SIZE in message
        assert len(message) < 200

    def test_plan_counts_its_files_and_bytes(self):
        planned = scratch.plan(random.Random(3), 10 * MIB, 7, NOW, 86400)
        assert planned.files() == 7 + 5 * scratch.EXTRAS
        assert planned.bytes() == 10 * MIB + sum(
            p.size for p in planned.incomplete + planned.invalid)

    def test_human_bytes(self):
        assert simulate.human_bytes(scratch.DEFAULT_SIZE_CAP) == '16.0 GiB'
        assert simulate.human_bytes(1536) == '1.5 KiB'
        assert simulate.human_bytes(7) == '7 B'

    def test_default_is_half_again_the_limit(self, sqlite_place):
        conf = sqlite_place.conf(image_cache_max_size=4 * MIB)
        assert scratch.default_size(conf, 20) == 6 * MIB
        made = sqlite_place.build(conf, size=None)
        assert made['size_bytes'] == 6 * MIB
        assert made['over_limit_bytes'] == 2 * MIB

    def test_default_is_capped(self, sqlite_place):
        conf = sqlite_place.conf(image_cache_max_size=1024 ** 4)
        assert scratch.default_size(conf, 20) == scratch.DEFAULT_SIZE_CAP

    def test_default_with_no_limit(self, sqlite_place):
        conf = sqlite_place.conf(image_cache_max_size=0)
        assert scratch.default_size(conf, 20) == 22 * scratch.MIN_IMAGE_SIZE

    @pytest.mark.parametrize('images', [1, 7, 500])
    def test_sizes_add_up(self, images):
        size = 10 * MIB + 7
        planned = scratch.plan(random.Random(5), size, images, NOW, 86400)
        sizes = [i.size for i in planned.images + planned.untracked]
        assert sum(sizes) == size
        assert min(sizes) >= scratch.MIN_IMAGE_SIZE
        assert len(planned.images) == images
        assert len({i.image_id for i in planned.images + planned.untracked}
                   | {p.image_id for p in planned.incomplete
                      + planned.invalid}
                   | {q for q, _ in planned.queued}) == images + 10
