"""Which files are images, and how files are removed without following
symlinks.
"""

import os

import pytest

from cache_maint import cachedir
from cache_maint import exception

from tests.support import caches
from tests.support import fs


def test_image_ids():
    assert cachedir.is_image_id('3b2c1a7e-6a4f-4d1e-9c2b-0f1e2d3c4b5a')


@pytest.mark.parametrize('name', [
    '3B2C1A7E-6A4F-4D1E-9C2B-0F1E2D3C4B5A',
    '', 'cache.db', 'cache.db-journal', 'glance-cache-prune', '..',
    '3b2c1a7e6a4f4d1e9c2b0f1e2d3c4b5a',
    '3b2c1a7e-6a4f-4d1e-9c2b-0f1e2d3c4b5a\n',
    '3b2c1a7e-6a4f-4d1e-9c2b-0f1e2d3c4b5a.tmp',
    '../3b2c1a7e-6a4f-4d1e-9c2b-0f1e2d3c4b5',
    '3b2c1a7e-6a4f-4d1e-9c2b-0f1e2d3c4b5\x00',
    'g' * 36, None, 42,
])
def test_not_image_ids(name):
    assert not cachedir.is_image_id(name)


def test_scan_sees_only_regular_files_named_by_an_id(tmp_path):
    cache = caches.SqliteCache(tmp_path)
    image = cache.add_image(size=3)
    os.symlink('/etc/passwd', tmp_path / caches.new_id())
    os.mkdir(tmp_path / caches.new_id())
    os.mkfifo(tmp_path / caches.new_id())
    (tmp_path / 'glance-cache-prune').write_bytes(b'')
    images = cachedir.CacheDir(str(tmp_path)).scan_images()
    assert list(images) == [image]
    assert images[image].size == 3


def test_remove_images_removes_only_regular_files(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp('outside') / 'target'
    outside.write_text('keep')
    cache = caches.SqliteCache(tmp_path)
    image = cache.add_image(size=5)
    link = caches.new_id()
    os.symlink(outside, tmp_path / link)
    gone = caches.new_id()
    removal = cachedir.CacheDir(str(tmp_path)).remove_images(
        [image, link, gone])
    assert removal.removed == (image,)
    assert removal.bytes_freed == 5
    assert removal.vanished == (gone,)
    assert removal.failed == (link,)
    assert outside.read_text() == 'keep'
    assert os.path.islink(tmp_path / link)


def test_queued_images_in_queue_order(tmp_path):
    cache = caches.SqliteCache(tmp_path)
    second = cache.queue(age=10)
    first = cache.queue(age=100)
    (tmp_path / 'queue' / 'not-an-id').write_text('')
    queued = cachedir.CacheDir(str(tmp_path)).queued_images()
    assert queued == [first, second]


def test_prepare_creates_subdirectories(tmp_path):
    cachedir.CacheDir(str(tmp_path)).prepare()
    assert sorted(os.listdir(tmp_path)) == ['incomplete', 'invalid', 'queue']


def test_prepare_refuses_a_missing_directory(tmp_path):
    missing = tmp_path / 'missing'
    with pytest.raises(exception.ConfigError, match='image_cache_dir'):
        cachedir.CacheDir(str(missing)).prepare()
    assert not missing.exists()


def test_prepare_refuses_a_file(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(exception.ConfigError, match='not a directory'):
        cachedir.CacheDir(str(tmp_path / 'file')).prepare()


def test_prepare_refuses_a_read_only_directory(tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    with fs.read_only(cache):
        with pytest.raises(exception.ConfigError, match='not writable'):
            cachedir.CacheDir(str(cache)).prepare()
        assert os.listdir(cache) == []


def test_queue_image_as_glance_does(tmp_path):
    cache = caches.SqliteCache(tmp_path)
    cached = cache.add_image()
    downloading = cache.add_incomplete()
    queued = cache.queue()
    directory = cachedir.CacheDir(str(tmp_path))
    new = caches.new_id()
    assert directory.queue_image(new)
    assert not directory.queue_image(new)
    assert not directory.queue_image(cached)
    assert not directory.queue_image(downloading)
    assert not directory.queue_image(queued)
    assert set(directory.queued_images()) == {queued, new}
    assert os.path.getsize(tmp_path / 'queue' / new) == 0
    with pytest.raises(exception.InvalidImageId):
        directory.queue_image('../../etc/passwd')


def test_evict_removes_scanned_images_by_name_and_follows_nothing(
        tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp('outside') / 'target'
    outside.write_text('keep')
    cache = caches.SqliteCache(tmp_path)
    ids = cache.add_images(cachedir.PARALLEL_FROM * 2, size=7)
    directory = cachedir.CacheDir(str(tmp_path))
    scanned = directory.scan_images()
    # After the scan: one image is gone, one became a symlink out of the
    # cache, one a directory.
    gone, swapped, made_dir = ids[:3]
    for image_id in ids[:3]:
        os.unlink(tmp_path / image_id)
    os.symlink(outside, tmp_path / swapped)
    os.mkdir(tmp_path / made_dir)

    removal = directory.evict(scanned.values())

    kept = set(ids[3:])
    assert set(removal.removed) == kept | {swapped}
    assert removal.bytes_freed == 7 * len(removal.removed)
    assert removal.vanished == (gone,)
    assert removal.failed == (made_dir,)
    assert removal.fatal is None
    assert outside.read_text() == 'keep'
    assert os.listdir(tmp_path / made_dir) == []
    assert not kept & cache.images()
    assert not os.path.lexists(tmp_path / swapped)


def test_evict_stops_on_a_read_only_directory(tmp_path):
    cache = caches.SqliteCache(tmp_path)
    cache.add_images(cachedir.PARALLEL_FROM * 2, size=7)
    directory = cachedir.CacheDir(str(tmp_path))
    scanned = directory.scan_images()
    with fs.read_only(tmp_path):
        removal = directory.evict(scanned.values())
    assert removal.removed == ()
    assert sorted(removal.failed) == sorted(scanned)
    assert 'cannot remove files from' in removal.fatal


def test_large_batches_are_removed_in_parallel_with_exact_counts(tmp_path):
    cache = caches.SqliteCache(tmp_path)
    ids = cache.add_images(cachedir.PARALLEL_FROM * 3, size=7)
    link = caches.new_id()
    os.symlink('/etc/hostname', tmp_path / link)
    gone = caches.new_id()
    removal = cachedir.CacheDir(str(tmp_path)).remove_images(
        ids + [link, gone])
    assert sorted(removal.removed) == sorted(ids)
    assert removal.bytes_freed == 7 * len(ids)
    assert removal.failed == (link,)
    assert removal.vanished == (gone,)
    assert not set(ids) & cache.images()
    assert os.path.islink(tmp_path / link)
