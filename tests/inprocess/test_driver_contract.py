"""One contract, every subject: sqlite, xattr, and centralized_db on an
SQLite file, on PostgreSQL and on MariaDB.

The same scenarios run against each subject's real metadata store, through
the subject and the shared maintenance functions.
"""

import json
import os
import sqlite3
import subprocess
import time

import pytest

from cache_maint import cache as cm_cache
from cache_maint import drivers
from cache_maint import eviction
from cache_maint import exception
from cache_maint import images
from cache_maint import maintenance

from tests.support import caches
from tests.support import databases
from tests.support import plans
from tests.support import processes
from tests.support import settings

KIB = caches.KIB
BACKENDS = ['sqlite', 'xattr', 'centralized_db-sqlite',
            'centralized_db-postgresql', 'centralized_db-mysql']


def build(kind, tmp_path, server_urls):
    """A cache in the format of backend ``kind``."""
    path = tmp_path / 'cache'
    if kind == 'sqlite':
        built = caches.SqliteCache(path)
    elif kind == 'xattr':
        built = caches.XattrCache(path)
    else:
        server = kind.split('-', 1)[1]
        built = caches.CentralCache(
            path, databases.central_url(server, tmp_path, server_urls))
    return built


@pytest.fixture(params=BACKENDS)
def cache(request, tmp_path, server_urls):
    built = build(request.param, tmp_path, server_urls)
    yield built
    if hasattr(built, 'close'):
        built.close()


@pytest.fixture(params=[b for b in BACKENDS if b != 'xattr'])
def recorded_cache(request, tmp_path, server_urls):
    """A backend whose records live apart from its files.

    Only there can a file lack a record, or a record its file.
    """
    built = build(request.param, tmp_path, server_urls)
    yield built
    if hasattr(built, 'close'):
        built.close()


def open_cache(cache, **overrides):
    """The cache-maint Cache over a test's cache, set up."""
    subject = cm_cache.Cache.from_conf(cache.conf(**overrides))
    subject.setup()
    return subject


def lru(subject):
    """The LRU order of the images in the cache directory now."""
    return subject.metadata.lru_order(subject.files.scan_images())


def fill(cache, count, size=KIB, start=1000):
    """``count`` images accessed a whole second apart, oldest first."""
    return [cache.add_image(size=size, last_accessed=float(start + i))
            for i in range(count)]


class TestContract:
    def test_setup_keeps_what_is_there(self, cache):
        ids = fill(cache, 3)
        subject = open_cache(cache)
        subject.setup()
        assert set(lru(subject)) == set(ids)

    def test_lru_order(self, cache):
        ids = [cache.add_image(last_accessed=float(t))
               for t in (3000, 1000, 2000)]
        assert lru(open_cache(cache)) == [ids[1], ids[2], ids[0]]

    def test_listing(self, cache):
        image = cache.add_image(size=3 * KIB, last_accessed=5000.0, hits=4)
        record, = open_cache(cache).metadata.list_records()
        assert (record.image_id, record.size, record.hits) == (image,
                                                               3 * KIB, 4)
        assert record.last_accessed == pytest.approx(5000.0)
        assert isinstance(record.last_modified, (int, float))

    def test_prune_evicts_exactly_the_least_recently_used(self, cache):
        # Glance's test_prune: 5 KiB limit, 11 images of 1 KiB.
        ids = fill(cache, 11)
        result = maintenance.prune(open_cache(cache), 5 * KIB)
        assert (result.files, result.bytes) == (6, 6 * KIB)
        assert cache.images() == set(ids[6:])
        assert set(cache.rows()) == set(ids[6:])

    def test_prune_to_zero(self, cache):
        # LP #1039854: a limit of 0 empties the cache without an error.
        fill(cache, 4)
        result = maintenance.prune(open_cache(cache), 0)
        assert (result.files, result.bytes) == (4, 4 * KIB)
        assert cache.images() == set()
        assert cache.rows() == {}

    def test_freshly_cached_image_survives(self, cache):
        # LP #1438564: a new image (last_accessed = now) must not be first.
        old = fill(cache, 4)
        fresh = cache.add_image(last_accessed=time.time())
        maintenance.prune(open_cache(cache), 2 * KIB)
        assert cache.images() == {old[3], fresh}

    def test_untracked_files_do_not_stop_prune(self, recorded_cache):
        # Glance's centralized_db prune never ends here, and its sqlite
        # prune evicts every tracked image and still ends over the limit.
        cache = recorded_cache
        tracked = fill(cache, 5)
        untracked = [cache.add_image(tracked=False) for _ in range(20)]
        result = maintenance.prune(open_cache(cache), 10 * KIB)
        assert cache.size() == result.size_after <= 10 * KIB
        # The untracked go first: 15 of them, and no tracked image.
        assert result.files == 15
        assert set(tracked) <= cache.images()
        assert len(cache.images() & set(untracked)) == 5

    def test_records_without_files(self, recorded_cache):
        cache = recorded_cache
        ghosts = [cache.add_row(last_accessed=1.0) for _ in range(3)]
        ids = fill(cache, 4)
        subject = open_cache(cache)
        result = maintenance.prune(subject, 2 * KIB)
        assert (result.files, result.bytes) == (2, 2 * KIB)
        assert cache.images() == set(ids[2:])
        # The stale records are clean's business, and still there.
        assert set(ghosts) <= set(cache.rows())
        result = maintenance.clean(subject, 86400)
        assert result.records_forgotten == 3
        assert set(cache.rows()) == set(ids[2:])
        assert not set(ghosts) & set(cache.rows())

    def test_clean(self, cache):
        ids = fill(cache, 2)
        cache.add_invalid(size=2 * KIB)
        cache.add_incomplete(age=2 * 86400)
        fresh = cache.add_incomplete(age=0)
        result = maintenance.clean(open_cache(cache), 86400)
        assert (result.files, result.bytes) == (2, 3 * KIB)
        assert cache.listdir('invalid') == set()
        assert cache.listdir('incomplete') == {fresh}
        assert cache.images() == set(ids)

    def test_forget_is_batched(self, recorded_cache, monkeypatch):
        cache = recorded_cache
        module = __import__('cache_maint.drivers.%s' % cache.driver,
                            fromlist=['IDS_PER_DELETE'])
        monkeypatch.setattr(module, 'IDS_PER_DELETE', 4)
        ids = [cache.add_row() for _ in range(10)]
        subject = open_cache(cache)
        assert len(subject.metadata.forget(ids[:9] + [caches.new_id()])) == 9
        assert set(cache.rows()) == {ids[9]}

    def test_a_stale_glance_sqlite_db_is_not_an_image(self, cache):
        # Left behind by Glance's migration from sqlite to centralized_db.
        ids = fill(cache, 2)
        with open(os.path.join(cache.path, 'cache.db'), 'ab') as f:
            f.write(b'\0' * 100 * KIB)
        subject = open_cache(cache)
        assert maintenance.prune(subject, 2 * KIB).files == 0
        assert cache.images() == set(ids)


class TestSteering:
    """Dry runs, pins and in-use protection, the same with every driver."""

    def test_dry_run_lists_exactly_what_the_real_prune_evicts(self, cache):
        ids = fill(cache, 10)
        # Where files are their own records, no file lacks one.
        untracked = 0 if cache.records_in_files else 2
        for _ in range(untracked):
            cache.add_image(tracked=False)
        subject = open_cache(cache)
        preview = maintenance.prune(subject, 5 * KIB, dry_run=True)
        assert len(cache.images()) == 10 + untracked    # nothing removed
        answer = preview.to_dict()
        assert answer['dry_run'] is True
        planned = [image['image_id'] for image in answer['images']]
        assert answer['total_files_pruned'] == len(planned) == 5 + untracked
        real = maintenance.prune(open_cache(cache), 5 * KIB)
        assert real.removed_ids() == planned
        assert cache.images() == set(ids[5:])
        # Glance's metadata comes with each recorded victim.
        recorded = [i for i in answer['images'] if i['reason'] == 'size']
        assert [i['image_id'] for i in recorded] == ids[:5]
        assert all(isinstance(i['hits'], int) and i['last_accessed']
                   for i in recorded)
        assert all(i['hits'] is None for i in answer['images']
                   if i['reason'] == 'untracked')

    def test_dry_run_of_clean_lists_what_clean_removes(self, cache):
        cache.add_invalid(size=3 * KIB)
        cache.add_incomplete(size=2 * KIB, age=7200)
        cache.add_incomplete(size=KIB, age=0)       # a download going on
        subject = open_cache(cache, image_cache_stall_time=60)
        preview = maintenance.clean(subject, 60, dry_run=True).to_dict()
        assert preview['dry_run'] is True
        assert sorted((f['path'].split('/')[0], f['size'], f['reason'])
                      for f in preview['files']) == [
            ('incomplete', 2 * KIB, 'stalled'),
            ('invalid', 3 * KIB, 'invalid')]
        assert len(cache.listdir('invalid')) == 1
        real = maintenance.clean(subject, 60)
        assert sorted(real.removed_ids()) == sorted(
            f['path'] for f in preview['files'])

    def test_pinned_image_survives_a_prune_to_zero(self, cache):
        ids = fill(cache, 4)
        subject = open_cache(cache)
        subject.state.pin(ids[0])
        result = maintenance.prune(subject, 0)
        assert cache.images() == {ids[0]}
        assert ids[0] in cache.rows()
        assert (result.files, result.skipped_pinned) == (3, 1)

    def test_pinned_image_is_kept_and_the_next_goes_instead(self, cache):
        ids = fill(cache, 4)
        subject = open_cache(cache)
        subject.state.pin(ids[0])
        preview = maintenance.prune(subject, 2 * KIB, dry_run=True)
        assert [(i['image_id'], i['reason'])
                for i in preview.to_dict()['images']] == [
            (ids[0], 'pinned'), (ids[1], 'size'), (ids[2], 'size')]
        maintenance.prune(subject, 2 * KIB)
        assert cache.images() == {ids[0], ids[3]}

    def test_explicit_delete_removes_a_pinned_image_and_keeps_its_pin(
            self, cache):
        image_id = fill(cache, 1)[0]
        subject = open_cache(cache)
        subject.state.pin(image_id)
        images.delete(subject, image_id)
        assert cache.images() == set()
        assert subject.state.pinned_ids() == {image_id}

    def test_image_held_open_is_not_evicted(self, cache):
        ids = fill(cache, 4)
        reader = processes.Reader(os.path.join(cache.path, ids[1]))
        try:
            subject = open_cache(cache)
            preview = maintenance.prune(subject, 0, dry_run=True)
            reasons = {i['image_id']: i['reason']
                       for i in preview.to_dict()['images']}
            assert reasons[ids[1]] == 'in_use'
            result = maintenance.prune(subject, 0)
        finally:
            reader.close()
        assert cache.images() == {ids[1]}
        assert result.skipped_in_use == 1
        # Once closed, the next run may evict it.
        maintenance.prune(subject, 0)
        assert cache.images() == set()


class TestXattr:
    @pytest.fixture
    def cache(self, tmp_path):
        return caches.XattrCache(tmp_path / 'cache')

    def test_ties_break_as_glance_does(self, cache):
        # One-second atimes tie often: Glance then takes the smaller file,
        # then the smaller id.
        big = cache.add_image(size=2 * KIB, last_accessed=1000.0)
        small = [cache.add_image(size=KIB, last_accessed=1000.9)
                 for _ in range(3)]
        order = lru(open_cache(cache))
        assert order == sorted(small) + [big]

    def test_one_directory_scan_per_prune(self, cache, monkeypatch):
        # Glance's xattr prune lists the directory again for every victim.
        fill(cache, 50)
        subject = open_cache(cache)
        scans = []
        real_scan = subject.files.scan_images
        monkeypatch.setattr(subject.files, 'scan_images',
                            lambda: scans.append(1) or real_scan())
        assert maintenance.prune(subject, 10 * KIB).files == 40
        assert len(scans) == 1

    def test_refuses_a_filesystem_without_user_xattrs(self, tmp_path):
        mount = tmp_path / 'ramfs'
        mount.mkdir()
        # ramfs has no extended attributes at all. Mounting needs root.
        if os.getuid() != 0:
            pytest.skip('mounting a ramfs needs root')
        subprocess.run(['mount', '-t', 'ramfs', 'ramfs', str(mount)],
                       check=True)
        try:
            cache = caches.XattrCache(mount)
            with pytest.raises(exception.ConfigError,
                               match='extended attributes'):
                open_cache(cache)
            # The probe left nothing behind.
            assert cache.listdir('incomplete') == set()
        finally:
            subprocess.run(['umount', str(mount)], check=True)


class TestCentralizedDb:
    @pytest.fixture
    def cache(self, tmp_path):
        built = caches.CentralCache(tmp_path / 'cache',
                                    'sqlite:///%s' % (tmp_path / 'g.db'))
        yield built
        built.close()

    def test_other_nodes_rows_are_never_touched(self, cache):
        mine = fill(cache, 4)
        theirs = [plans.Image(caches.new_id(), KIB, 10.0 + i, 10.0 + i)
                  for i in range(4)]
        cache.record(theirs, node_url=caches.OTHER_NODE_URL)
        ghost = theirs[0].image_id    # no file here: on the other node
        subject = open_cache(cache)
        assert set(subject.metadata.recorded_ids()) == set(mine)
        maintenance.prune(subject, 0)
        maintenance.clean(subject, 0)
        assert cache.rows() == {}
        assert set(cache.rows(caches.OTHER_NODE_URL)) == {
            image.image_id for image in theirs}
        assert ghost in cache.rows(caches.OTHER_NODE_URL)

    def test_node_is_registered_when_missing(self, cache):
        open_cache(cache, worker_self_reference_url='http://new:9292')
        assert cache.node_id('http://new:9292')

    def test_missing_node_url_names_the_option(self, cache):
        with pytest.raises(exception.ConfigError,
                           match='worker_self_reference_url'):
            open_cache(cache, worker_self_reference_url=None)

    def test_missing_connection_names_the_option(self, cache):
        with pytest.raises(exception.ConfigError,
                           match=r'\[database\] connection'):
            open_cache(cache, database__connection=None)

    def test_missing_tables_are_not_created_by_the_service(self, tmp_path):
        url = 'sqlite:///%s' % (tmp_path / 'empty.db')
        conf = settings.make_conf(
            tmp_path, image_cache_driver='centralized_db',
            database__connection=url,
            worker_self_reference_url=caches.NODE_URL)
        subject = cm_cache.Cache.from_conf(conf)
        with pytest.raises(exception.MetadataError, match='db-sync'):
            subject.setup()
        assert subject.metadata.sync_schema() == ['node_reference',
                                                  'cached_images']
        assert subject.metadata.sync_schema() == []
        subject.setup()

    def test_db_sync_leaves_a_glance_database_to_glance(self, tmp_path):
        with sqlite3.connect(tmp_path / 'glance.db') as conn:
            conn.execute('CREATE TABLE images (id TEXT)')
        conf = settings.make_conf(
            tmp_path, image_cache_driver='centralized_db',
            database__connection='sqlite:///%s' % (tmp_path / 'glance.db'),
            worker_self_reference_url=caches.NODE_URL)
        with pytest.raises(exception.ConfigError, match='glance-manage'):
            drivers.load_driver(conf).sync_schema()

    def test_unreachable_database_fails_the_run_clearly(self, cache):
        subject = open_cache(cache)
        fill(cache, 2)
        subject.close()
        conf = subject.metadata.conf
        real_url = conf.database.connection
        conf.set_override(
            'connection', 'mysql+pymysql://root:secret@127.0.0.1:9/glance',
            group='database')
        with pytest.raises(exception.MetadataError) as caught:
            maintenance.prune(subject, 0)
        assert 'secret' not in str(caught.value)
        assert '[database] connection' in str(caught.value)
        assert len(cache.images()) == 2
        # The database is back: the next run works.
        subject.close()
        conf.set_override('connection', real_url, group='database')
        assert maintenance.prune(subject, 0).files == 2


#: Hits of the images of a prune's cache, read 100 s apart, oldest first:
#: three of them often.
HITS = [9, 0, 7, 0, 0, 8, 0, 0]


def fill_with_hits(cache):
    return [cache.add_image(last_accessed=1000.0 + 100 * i, hits=hits)
            for i, hits in enumerate(HITS)]


class TestEvictionPolicies:
    """The records a policy reads, and prune with every policy."""

    def test_lru_records_come_in_lru_order(self, cache):
        # Ties in last access, which each driver breaks its own way.
        images = {}
        for size, accessed, hits in ((2, 3000, 5), (1, 1000, 0),
                                     (3, 2000, 9), (1, 2000, 1),
                                     (2, 2000, 0), (1, 4000, 2)):
            image_id = cache.add_image(size=size * KIB,
                                       last_accessed=float(accessed),
                                       hits=hits)
            images[image_id] = (size * KIB, hits, accessed)
        if not cache.records_in_files:
            cache.add_row(last_accessed=500.0)      # no file: left out
        subject = open_cache(cache)
        files = subject.files.scan_images()
        assert set(files) == set(images)
        some = dict(list(files.items())[1::2])
        for scan in (files, some, {}):
            records = subject.metadata.lru_records(scan)
            assert [r.image_id for r in records] == \
                subject.metadata.lru_order(scan)
            assert {r.image_id for r in records} == set(scan)
            for r in records:
                size, hits, accessed = images[r.image_id]
                assert (r.size, r.hits) == (size, hits)
                assert r.last_accessed == pytest.approx(accessed)

    @pytest.mark.parametrize('policy', eviction.NAMES)
    def test_odd_hits_do_not_fail_a_prune(self, tmp_path, policy):
        # In the xattr driver, user.hits is whatever a process wrote.
        cache = caches.XattrCache(tmp_path / 'cache')
        for hits in (b'-1', b'9' * 4000, b'nan', b'3'):
            image_id = cache.add_image(last_accessed=time.time() - 100)
            os.setxattr(os.path.join(cache.path, image_id), 'user.hits',
                        hits)
        result = maintenance.prune(open_cache(cache), 2 * KIB,
                                   policy=policy)
        assert result.files == 2
        assert len(cache.images()) == 2

    @pytest.mark.parametrize('policy', eviction.NAMES)
    def test_prune_evicts_what_its_dry_run_listed(self, cache, policy):
        ids = fill_with_hits(cache)
        key = eviction.memory_key(policy)
        preview = maintenance.prune(open_cache(cache), 4 * KIB, now=2000.0,
                                    policy=policy, dry_run=True)
        assert len(cache.images()) == len(ids)
        # A dry run learns nothing.
        assert open_cache(cache).state.get(key) is None
        planned = preview.removed_ids()
        assert len(planned) == 4
        real = maintenance.prune(open_cache(cache), 4 * KIB, now=2000.0,
                                 policy=policy)
        assert real.removed_ids() == planned
        assert cache.images() == set(ids) - set(planned)
        assert set(cache.rows()) == cache.images()
        memory = open_cache(cache).state.get(key)
        if policy == eviction.LRU:
            assert planned == ids[:4]
            assert memory is None
        else:
            # The images read often outlive the one-offs read since.
            assert {ids[0], ids[2], ids[5]} <= cache.images()
            assert memory is not None
        if policy == eviction.LFUDA:
            # Those read once go, least recently used first.
            assert planned == [ids[1], ids[3], ids[4], ids[6]]

    @pytest.mark.parametrize('policy', [eviction.LFUDA, eviction.ADAPTIVE])
    def test_the_next_prune_reads_what_the_last_one_learnt(
            self, cache, policy, monkeypatch):
        ids = fill_with_hits(cache)
        key = eviction.memory_key(policy)
        first = maintenance.prune(open_cache(cache), 4 * KIB, now=2000.0,
                                  policy=policy)
        saved = open_cache(cache).state.get(key)
        assert saved is not None
        loaded = []
        real_load = eviction.load

        def load(name, state):
            chosen = real_load(name, state)
            loaded.append(json.loads(json.dumps(chosen.dump())))
            return chosen

        monkeypatch.setattr(eviction, 'load', load)
        # Soon after, glance-api caches again a victim LRU would have
        # kept (for the adaptive policy, a loss).
        back = [image_id for image_id in first.removed_ids()
                if image_id not in ids[:4]][-1]
        cache.add_image(image_id=back, last_accessed=2050.0, mtime=2050.0)
        preview = maintenance.prune(open_cache(cache), 4 * KIB, now=2100.0,
                                    policy=policy, dry_run=True)
        real = maintenance.prune(open_cache(cache), 4 * KIB, now=2100.0,
                                 policy=policy)
        assert real.files == 1
        assert real.removed_ids() == preview.removed_ids()
        assert loaded == [saved, saved]
        learnt = open_cache(cache).state.get(key)
        if policy == eviction.ADAPTIVE:
            assert learnt['theta'] < eviction.make(policy).theta
