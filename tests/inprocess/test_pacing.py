"""Paced deletion: ``[prune] max_delete_rate``.

The pacer's arithmetic on a clock of the test's own (no test waits for,
or times, a real rate); the release of large images in steps on real
files, with a real process holding one open; and the real prune, paced,
evicting exactly what it evicts unpaced.
"""

import hashlib
import os
import threading

import pytest

from cache_maint import cache as cm_cache
from cache_maint import cachedir
from cache_maint import maintenance
from cache_maint import pacing
from cache_maint import targets
from tests.support import caches
from tests.support import processes
from tests.support import settings

MIB = 1024 * 1024


class FakeTime:
    """A monotonic clock and a stop event that waits on it, not for real."""

    def __init__(self):
        self.now = 100.0
        self.waits = []
        self._set = False
        self.stop_after = None      # waits after which a stop is requested

    def clock(self):
        return self.now

    def is_set(self):
        return self._set

    def set(self):
        self._set = True

    def wait(self, delay):
        self.waits.append(delay)
        self.now += delay
        if self.stop_after is not None and len(self.waits) >= self.stop_after:
            self._set = True
        return self._set


class RecordingPacer(pacing.Pacer):
    """A pacer whose steps are counted, on a fake clock."""

    def __init__(self, rate, fake=None):
        self.fake = fake or FakeTime()
        super().__init__(rate, self.fake, clock=self.fake.clock)
        self.steps = []

    def freed(self, nbytes):
        self.steps.append(nbytes)
        return super().freed(nbytes)


class TestPacer:
    def test_each_step_is_followed_by_its_time_at_the_rate(self):
        pacer = RecordingPacer(10 * MIB)
        assert pacer.step == 5 * MIB
        assert pacer.freed(5 * MIB)
        assert pacer.fake.waits == [0.5]
        assert pacer.freed(MIB)
        assert pacer.fake.waits == [0.5, pytest.approx(0.1)]

    def test_time_spent_on_other_work_earns_no_burst(self):
        pacer = RecordingPacer(10 * MIB)
        pacer.freed(5 * MIB)
        pacer.fake.now += 60.0          # a slow batch of records
        pacer.freed(5 * MIB)
        pacer.freed(5 * MIB)
        assert pacer.fake.waits == [pytest.approx(0.5)] * 3
        assert pacer.waited == pytest.approx(1.5)

    def test_a_stop_request_ends_the_wait(self):
        pacer = RecordingPacer(MIB)
        pacer.fake.set()
        assert not pacer.freed(MIB)
        assert pacer.stopping

    def test_a_low_rate_still_has_a_step_of_a_mebibyte(self):
        assert pacing.Pacer(1).step == pacing.MIN_STEP

    def test_no_rate_no_pacer(self):
        with pytest.raises(ValueError):
            pacing.Pacer(0)


def write(path, size, fill=b'\x5a'):
    with open(path, 'wb') as f:
        for _ in range(size // MIB):
            f.write(fill * MIB)
        f.write(fill * (size % MIB))


def scanned(directory, names):
    return [cachedir.CachedFile(name, os.path.getsize(directory / name), 0, 0)
            for name in names]


class TestRelease:
    def test_a_large_image_is_truncated_a_step_at_a_time(self, tmp_path):
        write(tmp_path / 'big', 7 * MIB // 2)
        pacer = RecordingPacer(2 * MIB)         # steps of 1 MiB
        removal = cachedir.CacheDir(str(tmp_path)).evict(
            scanned(tmp_path, ['big']), pacer)
        assert removal.removed == ('big',)
        assert pacer.steps == [MIB, MIB, MIB, MIB // 2]
        assert not (tmp_path / 'big').exists()

    def test_small_images_go_a_step_worth_at_a_time(self, tmp_path):
        names = ['f%d' % i for i in range(5)]
        for name in names:
            write(tmp_path / name, MIB // 2)
        pacer = RecordingPacer(2 * MIB)
        removal = cachedir.CacheDir(str(tmp_path)).evict(
            scanned(tmp_path, names), pacer)
        assert sorted(removal.removed) == names
        assert pacer.steps == [MIB, MIB, MIB // 2]
        assert os.listdir(tmp_path) == []

    def test_an_image_another_process_reads_is_never_truncated(
            self, tmp_path):
        """glance-api sending it to a client gets every byte."""
        write(tmp_path / 'served', 3 * MIB, fill=b'\x01')
        reader = processes.Reader(tmp_path / 'served')
        try:
            pacer = RecordingPacer(2 * MIB)
            removal = cachedir.CacheDir(str(tmp_path)).evict(
                scanned(tmp_path, ['served']), pacer)
            digest = reader.finish()
        finally:
            reader.close()
        assert removal.removed == ('served',)
        assert digest == hashlib.sha256(b'\x01' * 3 * MIB).hexdigest()
        assert pacer.steps == [3 * MIB]         # counted, never truncated

    def test_an_image_with_another_name_is_never_truncated(self, tmp_path):
        """A hard link (in the cache or not) keeps all its bytes."""
        write(tmp_path / 'linked', 3 * MIB, fill=b'\x02')
        os.link(tmp_path / 'linked', tmp_path / 'other-name')
        pacer = RecordingPacer(2 * MIB)
        cachedir.CacheDir(str(tmp_path)).evict(
            scanned(tmp_path, ['linked']), pacer)
        assert (tmp_path / 'other-name').read_bytes() == b'\x02' * 3 * MIB
        assert pacer.steps == [3 * MIB]

    def test_a_stop_between_steps_leaves_the_rest_in_place(self, tmp_path):
        for name in ('big', 'next'):
            write(tmp_path / name, 3 * MIB)
        fake = FakeTime()
        fake.stop_after = 1
        pacer = RecordingPacer(2 * MIB, fake)
        removal = cachedir.CacheDir(str(tmp_path)).evict(
            scanned(tmp_path, ['big', 'next']), pacer)
        assert removal.removed == ('big',)
        assert pacer.steps == [MIB]             # then closed, all freed
        assert os.listdir(tmp_path) == ['next']

    def test_a_symlink_under_an_image_name_is_only_unlinked(self, tmp_path):
        outside = tmp_path / 'outside'
        write(outside, 3 * MIB)
        cache_dir = tmp_path / 'cache'
        cache_dir.mkdir()
        os.symlink(outside, cache_dir / 'img')
        pacer = RecordingPacer(2 * MIB)
        removal = cachedir.CacheDir(str(cache_dir)).evict(
            [cachedir.CachedFile('img', 3 * MIB, 0, 0)], pacer)
        assert removal.removed == ('img',)
        assert outside.stat().st_size == 3 * MIB


class TestPacedPrune:
    def test_victims_and_reasons_are_those_of_an_unpaced_prune(
            self, tmp_path):
        results = []
        for paced in (False, True):
            cache = caches.SqliteCache(tmp_path / str(paced))
            for i in range(12):
                cache.add_image(size=(i % 3 + 1) * MIB // 4,
                                last_accessed=1000.0 + i,
                                image_id='%08d-0000-4000-8000-000000000000'
                                % i)
            subject = cm_cache.Cache.from_conf(cache.conf())
            subject.setup()
            # A rate high enough that no test waits long: steps of 512 MiB.
            result = maintenance.prune(
                subject, 2 * MIB, targets=targets.Targets(2 * MIB),
                max_delete_rate=1024 * MIB if paced else 0)
            results.append((sorted(cache.images()), result.files,
                            result.by_reason))
        assert results[0] == results[1]
        assert results[0][1] > 0

    def test_a_stop_during_a_paced_prune_puts_back_unreached_records(
            self, tmp_path, monkeypatch):
        cache = caches.SqliteCache(tmp_path / 'cache')
        for i in range(4):
            cache.add_image(size=3 * MIB, last_accessed=1000.0 + i)
        rows = cache.rows()
        subject = cm_cache.Cache.from_conf(cache.conf())
        subject.setup()
        stop = threading.Event()
        release = pacing.release

        def release_then_stop(fd, pacer):
            stop.set()
            return release(fd, pacer)

        monkeypatch.setattr(pacing, 'release', release_then_stop)
        result = maintenance.prune(subject, 0, targets=targets.Targets(0),
                                   stop_event=stop, max_delete_rate=2 * MIB)
        assert result.stopped
        assert result.files == 1
        left = cache.images()
        assert len(left) == 3
        # Every image still there kept its record, as it was.
        assert {image_id: row for image_id, row in cache.rows().items()
                if image_id in left} == {
            image_id: row for image_id, row in rows.items()
            if image_id in left}


def test_max_delete_rate_takes_suffixes(tmp_path):
    conf = settings.make_conf(tmp_path, prune__max_delete_rate='100M')
    assert conf.prune.max_delete_rate == 100 * MIB
