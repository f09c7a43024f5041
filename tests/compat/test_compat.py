"""cache-maint against Glance 33's own cache code, for every driver.

Glance's ``ImageCache`` fills and reads a cache; the real
``cache-maint-manage`` cleans and prunes it; Glance's own view afterwards
must agree with what cache-maint reported, and Glance's own ``prune()`` on an
identical copy must choose the same victims. Run with ``tox -e compat``.
"""

import json
import os
import shutil
import threading
import time
import uuid

import pytest

pytest.importorskip('glance.image_cache', reason='needs glance==33.0.0')

import sqlalchemy as sa  # noqa: E402

from tests.support import caches  # noqa: E402
from tests.support import glance as glance_harness  # noqa: E402
from tests.support import processes  # noqa: E402
from tests.support import settings  # noqa: E402

KIB = 1024
CASES = ['sqlite', 'xattr', 'centralized_db-sqlite',
         'centralized_db-postgresql', 'centralized_db-mysql']
RECORDED = [case for case in CASES if case != 'xattr']


class Node:
    """One node's cache: Glance's view of it and cache-maint's config."""

    def __init__(self, tmp_path, name, driver, connection, max_size):
        self.path = str(tmp_path / name)
        self.driver = driver
        self.connection = connection
        self.node_url = 'http://%s.example.org:9292' % name
        self.config = str(tmp_path / ('%s.conf' % name))
        self.log = str(tmp_path / ('%s.log' % name))
        self.glance = glance_harness.GlanceImageCache(
            self.path, driver, max_size, connection=connection,
            node_url=self.node_url)
        self.set_limit(max_size)

    def set_limit(self, max_size):
        """The same limit for Glance and for cache-maint."""
        self.glance.max_size = max_size
        # No lock_path: cache-maint's defaults must keep its lock files out
        # of Glance's listing (xattr lists every regular file as an image).
        sections = {'DEFAULT': {
            'image_cache_dir': self.path, 'image_cache_driver': self.driver,
            'image_cache_max_size': max_size, 'image_cache_stall_time': 3600,
            'worker_self_reference_url': self.node_url,
            'log_file': self.log}}
        if self.connection:
            sections['database'] = {'connection': self.connection}
        settings.write_config(self.config, sections)

    def manage(self, *args):
        """Run the real cache-maint-manage; return its parsed JSON."""
        result = processes.run_script('cache-maint-manage',
                                      ['--config-file', self.config] +
                                      list(args))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def images(self):
        """Image files on disk, by id."""
        return {name for name in os.listdir(self.path)
                if name.count('-') == 4
                and os.path.isfile(os.path.join(self.path, name))}

    def glance_ids(self):
        return {entry['image_id'] for entry in self.glance.cached_images()}


@pytest.fixture(params=CASES)
def nodes(request, tmp_path, databases):
    yield from _nodes(request.param, tmp_path, databases)


@pytest.fixture(params=RECORDED)
def recorded_nodes(request, tmp_path, databases):
    """Drivers whose records live apart from the files."""
    yield from _nodes(request.param, tmp_path, databases)


def _nodes(case, tmp_path, databases):
    driver, _, server = case.partition('-')
    connection = databases(server) if server else None
    made = []

    def node(name, max_size=10 * 1024 * KIB):
        made.append(Node(tmp_path, name, driver, connection, max_size))
        return made[-1]

    yield node
    for each in made:
        each.glance.close()


def fill_and_read(node, count=8, reads=3):
    """Glance caches ``count`` images, then reads ``reads`` of them.

    The reads are a second apart: atime and MySQL DATETIME keep whole
    seconds. Returns (unread ids, read ids in read order).
    """
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for image_id in ids:
        assert node.glance.cache(image_id, b'x' * KIB)
    read = ids[:reads]
    for image_id in read:
        time.sleep(1.1)
        assert node.glance.read(image_id) == b'x' * KIB
    return ids[reads:], read


def copy_node(source, target):
    """Make ``target`` an identical copy of ``source``.

    Files keep their times and xattrs (and are read without touching their
    atime); the sqlite database is copied, and the centralized_db rows are
    copied under the target's node.
    """
    for name in os.listdir(source.path):
        src = os.path.join(source.path, name)
        dst = os.path.join(target.path, name)
        if os.path.isdir(src):
            os.makedirs(dst, exist_ok=True)
            continue
        if name == 'cache.db':
            shutil.copyfile(src, dst)
            continue
        st = os.stat(src)
        fd = os.open(src, os.O_RDONLY | os.O_NOATIME)
        with os.fdopen(fd, 'rb') as f, open(dst, 'wb') as out:
            out.write(f.read())
        for attr in os.listxattr(src):
            os.setxattr(dst, attr, os.getxattr(src, attr))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    if source.driver == 'centralized_db':
        _copy_rows(source.connection, source.node_url, target.node_url)


def _copy_rows(url, from_node, to_node):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            ids = {row.node_reference_url: row.node_reference_id
                   for row in conn.execute(sa.text(
                       'SELECT node_reference_id, node_reference_url '
                       'FROM node_reference'))}
            conn.execute(sa.text(
                'INSERT INTO cached_images (image_id, last_accessed, '
                'last_modified, size, hits, checksum, node_reference_id) '
                'SELECT image_id, last_accessed, last_modified, size, hits, '
                'checksum, :target FROM cached_images '
                'WHERE node_reference_id = :source'),
                {'source': ids[from_node], 'target': ids[to_node]})
    finally:
        engine.dispose()


def test_prune_agrees_with_glance(nodes):
    """Same victims as Glance's prune, and Glance's view agrees after."""
    ours, theirs = nodes('ours'), nodes('theirs')
    unread, read = fill_and_read(ours)
    copy_node(ours, theirs)

    for limit, survivors in ((3 * KIB, set(read)), (1 * KIB, {read[-1]})):
        ours.set_limit(limit)
        theirs.set_limit(limit)
        glance_files, glance_bytes = theirs.glance.prune()
        assert ours.manage('prune') == {'total_files_pruned': glance_files,
                                        'total_bytes_pruned': glance_bytes}
        assert ours.images() == theirs.images() == survivors
        # Glance's own view of the cache cache-maint pruned.
        assert ours.glance_ids() == survivors
        assert all(ours.glance.is_cached(i) for i in survivors)
        assert not any(ours.glance.is_cached(i) for i in unread)
        assert ours.glance.prune() == (0, 0)
    # Nothing was pruned beyond need: hits survive with their images.
    assert ours.glance.hits(read[-1]) == 1


def test_clean_agrees_with_glance(nodes):
    ours = nodes('ours')
    kept, _read = fill_and_read(ours, count=3, reads=0)
    invalid = os.path.join(ours.path, 'invalid', str(uuid.uuid4()))
    stalled = os.path.join(ours.path, 'incomplete', str(uuid.uuid4()))
    fresh = os.path.join(ours.path, 'incomplete', str(uuid.uuid4()))
    for path, size in ((invalid, 2 * KIB), (stalled, KIB), (fresh, KIB)):
        with open(path, 'wb') as f:
            f.write(b'p' * size)
    os.utime(stalled, (time.time() - 2 * 86400,) * 2)

    assert ours.manage('clean') == {'total_files_cleaned': 2,
                                    'total_bytes_cleaned': 3 * KIB}
    assert os.listdir(os.path.join(ours.path, 'invalid')) == []
    assert os.listdir(os.path.join(ours.path, 'incomplete')) == [
        os.path.basename(fresh)]
    # Glance's clean finds nothing more to do, and its view is unchanged.
    ours.glance.clean()
    assert os.listdir(os.path.join(ours.path, 'incomplete')) == [
        os.path.basename(fresh)]
    assert ours.glance_ids() == set(kept)


def test_queue_is_shared_with_glance(nodes):
    ours = nodes('ours')
    from cache_maint import cachedir
    by_us = str(uuid.uuid4())
    assert cachedir.CacheDir(ours.path).queue_image(by_us)
    by_glance = str(uuid.uuid4())
    assert ours.glance.queue(by_glance)
    assert set(ours.glance.queued()) == {by_us, by_glance}
    listed = ours.manage('list', '--format', 'json')
    assert set(listed['queued_images']) == {by_us, by_glance}


def test_listing_agrees_with_glance(nodes):
    ours = nodes('ours')
    fill_and_read(ours, count=3, reads=1)
    listed = ours.manage('list', '--format', 'json')['cached_images']
    glance = sorted(ours.glance.cached_images(),
                    key=lambda entry: entry['image_id'])
    assert [r['image_id'] for r in listed] == [g['image_id'] for g in glance]
    for record, entry in zip(listed, glance):
        assert (record['size'], record['hits']) == (entry['size'],
                                                    entry['hits'])
        assert record['last_accessed'] == pytest.approx(
            float(entry['last_accessed']), abs=1)


def test_untracked_files_end_under_the_limit(recorded_nodes):
    """Prune ends under the limit, keeping the tracked images that fit.

    On the same cache Glance's sqlite prune evicts every tracked image and
    stays over the limit, and its centralized_db prune never ends.
    """
    ours, theirs = recorded_nodes('ours'), recorded_nodes('theirs')
    tracked, _read = fill_and_read(ours, count=4, reads=0)
    old = time.time() - 3600
    for _ in range(6):
        path = os.path.join(ours.path, str(uuid.uuid4()))
        with open(path, 'wb') as f:
            f.write(b'u' * KIB)
        os.utime(path, (old, old))
    copy_node(ours, theirs)
    ours.set_limit(3 * KIB)
    theirs.set_limit(3 * KIB)

    result = ours.manage('prune')
    assert result['total_files_pruned'] == 7
    assert len(ours.images()) * KIB <= 3 * KIB
    assert ours.images() <= set(tracked)
    assert ours.glance_ids() == ours.images()
    assert ours.glance.prune() == (0, 0)

    if ours.driver == 'sqlite':
        assert theirs.glance.prune() == (4, 4 * KIB)
        assert len(theirs.images()) == 6    # still over the limit
        assert not theirs.images() & set(tracked)
    else:
        with pytest.raises(glance_harness.UnprunableCache):
            theirs.glance.prune()


def test_glance_reads_while_we_prune_a_large_sqlite_cache(tmp_path):
    """A Glance reader never hits its 2 s sqlite lock timeout."""
    builder = caches.SqliteCache(tmp_path / 'ours')
    builder.add_images(3000, size=16)
    node = Node(tmp_path, 'ours', 'sqlite', None, 10 * 1024 * KIB)
    hot = str(uuid.uuid4())
    assert node.glance.cache(hot, b'h' * 16)
    node.set_limit(16 * 10)
    errors, reads, done = [], [], threading.Event()

    def glance_api():
        while not done.is_set():
            try:
                node.glance.read(hot)
                node.glance.cached_images()
                reads.append(1)
            except Exception as e:     # TimeoutError is Glance's failure
                errors.append(e)

    reader = threading.Thread(target=glance_api)
    reader.start()
    try:
        result = node.manage('prune')
    finally:
        done.set()
        reader.join()
        node.glance.close()
    assert errors == []
    assert reads
    assert result['total_files_pruned'] == 2991
    assert hot in node.images()


def test_glance_xattr_prune_lists_the_directory_per_victim(tmp_path):
    """The quadratic Glance prune that cache-maint does not have."""
    from glance.image_cache.drivers import xattr as glance_xattr

    from cache_maint import cache as cm_cache
    from cache_maint import maintenance

    theirs = Node(tmp_path, 'theirs', 'xattr', None, 10 * 1024 * KIB)
    ids = [str(uuid.uuid4()) for _ in range(30)]
    for image_id in ids:
        theirs.glance.cache(image_id, b'x' * KIB)
    ours = Node(tmp_path, 'ours', 'xattr', None, 10 * 1024 * KIB)
    copy_node(theirs, ours)

    listings = []
    real_listdir = os.listdir

    def counting_listdir(path='.'):
        if path == theirs.path:
            listings.append(path)
        return real_listdir(path)

    theirs.glance.max_size = 10 * KIB
    glance_xattr.os.listdir = counting_listdir
    try:
        assert theirs.glance.prune() == (20, 20 * KIB)
    finally:
        glance_xattr.os.listdir = real_listdir
    assert len(listings) > 20

    subject = cm_cache.Cache.from_conf(settings.make_conf(
        ours.path, image_cache_driver='xattr'))
    subject.setup()
    scans = []
    real_scan = subject.files.scan_images
    subject.files.scan_images = lambda: scans.append(1) or real_scan()
    assert maintenance.prune(subject, 10 * KIB).files == 20
    assert scans == [1]
    assert ours.images() == theirs.images()
