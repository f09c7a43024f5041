"""Prune's targets beyond Glance's limit, and the reason of every victim.

Watermarks, a free-space floor (on a real tmpfs of its own), an image cap,
an idle time and a minimum age, each on a real sqlite cache, through the
real prune. With their defaults the victims are Glance's: the driver
contract proves that for every driver.
"""

import os
import time

import pytest

from cache_maint import cache as cm_cache
from cache_maint import conf as cm_conf
from cache_maint import exception
from cache_maint import maintenance
from cache_maint import targets
from tests.support import caches
from tests.support import env
from tests.support import fs
from tests.support import settings

KIB = caches.KIB


def open_cache(cache):
    subject = cm_cache.Cache.from_conf(cache.conf())
    subject.setup()
    return subject


def fill(cache, count, size=KIB, start=1000):
    """``count`` images accessed a second apart, oldest first."""
    return [cache.add_image(size=size, last_accessed=float(start + i))
            for i in range(count)]


@pytest.fixture
def cache(tmp_path):
    return caches.SqliteCache(tmp_path / 'cache')


def prune(cache, max_size, **options):
    return maintenance.prune(open_cache(cache), max_size,
                             targets=targets.Targets(max_size, **options))


class TestWatermarks:
    def test_over_the_high_one_evicts_down_to_the_low_one(self, cache):
        ids = fill(cache, 9)
        result = prune(cache, 10 * KIB, high_watermark=80, low_watermark=50)
        assert cache.images() == set(ids[4:])
        assert result.by_reason == {'size': {'files': 4, 'bytes': 4 * KIB}}

    def test_between_the_two_nothing_goes(self, cache):
        ids = fill(cache, 8)
        result = prune(cache, 10 * KIB, high_watermark=80, low_watermark=50)
        assert (result.files, result.by_reason) == (0, {})
        assert cache.images() == set(ids)

    def test_defaults_are_glances_limit(self, cache):
        ids = fill(cache, 12)
        result = prune(cache, 10 * KIB)
        assert cache.images() == set(ids[2:])
        assert result.by_reason == {'size': {'files': 2, 'bytes': 2 * KIB}}


class TestImageCap:
    def test_the_least_recently_used_go_for_the_count(self, cache):
        ids = fill(cache, 10)
        result = prune(cache, 100 * KIB, max_images=6)
        assert cache.images() == set(ids[4:])
        assert result.by_reason == {'count': {'files': 4, 'bytes': 4 * KIB}}

    def test_size_first_then_count(self, cache):
        ids = fill(cache, 10)
        result = prune(cache, 8 * KIB, max_images=5)
        assert cache.images() == set(ids[5:])
        assert result.by_reason == {'size': {'files': 2, 'bytes': 2 * KIB},
                                    'count': {'files': 3, 'bytes': 3 * KIB}}


class TestIdleTime:
    def test_images_not_read_for_long_go_under_every_limit(self, cache):
        old = fill(cache, 3, start=int(time.time()) - 7200)
        recent = fill(cache, 2, start=int(time.time()) - 60)
        result = prune(cache, 100 * KIB, max_idle_time=3600)
        assert cache.images() == set(recent)
        assert result.by_reason == {'idle': {'files': 3, 'bytes': 3 * KIB}}
        assert not set(old) & set(cache.rows())

    def test_not_counted_from_before_the_service_started(self, cache):
        ids = fill(cache, 3, start=int(time.time()) - 7200)
        result = maintenance.prune(
            open_cache(cache), 100 * KIB, idle_since=time.time(),
            targets=targets.Targets(100 * KIB, max_idle_time=3600))
        assert result.files == 0
        assert cache.images() == set(ids)


class TestMinAge:
    def test_a_young_image_outlives_older_ones(self, cache):
        old = fill(cache, 4)
        # Cached a minute ago, and read long ago: first in LRU order.
        young = cache.add_image(last_accessed=10.0, mtime=time.time() - 60)
        result = prune(cache, 2 * KIB, min_age=600)
        assert young in cache.images()
        assert cache.images() == {young, old[3]}
        assert result.skipped_young == 1
        assert result.by_reason == {'size': {'files': 3, 'bytes': 3 * KIB}}

    def test_untracked_and_young_is_not_evicted_either(self, cache):
        ids = fill(cache, 3)
        stray = cache.add_image(tracked=False, mtime=time.time() - 60)
        prune(cache, 2 * KIB, min_age=600)
        assert stray in cache.images()
        assert len(cache.images() & set(ids)) == 1


class TestReasons:
    def test_untracked_files_go_first_as_untracked(self, cache):
        ids = fill(cache, 3)
        stray = cache.add_image(tracked=False)
        result = prune(cache, 2 * KIB)
        assert stray not in cache.images()
        assert result.by_reason == {'untracked': {'files': 1, 'bytes': KIB},
                                    'size': {'files': 1, 'bytes': KIB}}
        assert cache.images() == set(ids[1:])


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs of its own: its free space is the test's to set."""
    path = tmp_path / 'small'
    path.mkdir()
    problem = fs.mount_tmpfs(path, 4 * 1024 * KIB)
    if problem:
        env.unavailable(problem)
    yield path
    fs.unmount(path)


class TestFreeSpace:
    def _free(self, path):
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize

    def test_evicts_until_the_floor_is_back(self, small_fs):
        cache = caches.SqliteCache(small_fs / 'cache')
        ids = fill(cache, 12, size=256 * KIB)    # 3 MiB of 4
        floor = self._free(small_fs) + 700 * KIB
        result = prune(cache, 100 * 1024 * KIB, min_free_space=floor)
        assert self._free(small_fs) >= floor
        assert cache.images() == set(ids[3:])
        assert result.by_reason == {
            'free_space': {'files': 3, 'bytes': 3 * 256 * KIB}}

    def test_a_percent_of_the_filesystem(self, small_fs):
        cache = caches.SqliteCache(small_fs / 'cache')
        fill(cache, 12, size=256 * KIB)
        prune(cache, 100 * 1024 * KIB, min_free_space=0.5)
        assert self._free(small_fs) >= 2 * 1024 * KIB

    def test_even_young_images_go_to_restore_it(self, small_fs):
        cache = caches.SqliteCache(small_fs / 'cache')
        young = [cache.add_image(size=256 * KIB, last_accessed=1000.0 + i,
                                 mtime=time.time()) for i in range(12)]
        floor = self._free(small_fs) + 300 * KIB
        result = prune(cache, 100 * 1024 * KIB, min_free_space=floor,
                       min_age=3600)
        assert cache.images() == set(young[2:])
        assert result.by_reason['free_space']['files'] == 2


class TestConfiguration:
    def test_the_prune_group_reads_sizes_and_percents(self, tmp_path):
        conf = settings.make_conf(tmp_path, prune__min_free_space='2G')
        assert conf.prune.min_free_space == 2 * 1024 ** 3
        conf = settings.make_conf(tmp_path, prune__min_free_space='15%')
        assert conf.prune.min_free_space == pytest.approx(0.15)
        assert targets.Targets.from_conf(conf).free_space_floor(1000) == 150

    @pytest.mark.parametrize('option, value, message', [
        ('min_free_space', 'lots', 'neither a number of bytes'),
        ('min_free_space', '120%', 'not a percent'),
        ('high_watermark', 0, 'high_watermark'),
        ('max_images', -1, 'max_images'),
    ])
    def test_bad_values_are_refused_at_start(self, tmp_path, option, value,
                                             message):
        path = settings.write_config(tmp_path / 'bad.conf', {
            'DEFAULT': {'image_cache_dir': tmp_path},
            'prune': {option: value}})
        with pytest.raises(exception.ConfigError, match=message):
            cm_conf.check(settings.make_conf(tmp_path,
                                             ['--config-file', path]))

    def test_low_above_high_is_refused(self, tmp_path):
        conf = settings.make_conf(tmp_path, prune__high_watermark=80,
                                  prune__low_watermark=90)
        with pytest.raises(exception.ConfigError, match='low_watermark'):
            cm_conf.check(conf)
