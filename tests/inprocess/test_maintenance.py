"""clean() and prune() on real directories and real sqlite databases,
including the scenarios of Glance's own cache tests and the Glance bugs
design.md section 5 says not to repeat.
"""

import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from cache_maint import cache as cm_cache
from cache_maint import evictor
from cache_maint import exception
from cache_maint import maintenance

from tests.support import caches
from tests.support import fs
from tests.support import settings

KIB = caches.KIB


@pytest.fixture
def cache(tmp_path):
    return caches.SqliteCache(tmp_path / 'cache')


def open_cache(cache, **overrides):
    """The cache-maint Cache over a test's cache, set up."""
    subject = cm_cache.Cache.from_conf(settings.make_conf(cache.path,
                                                          **overrides))
    subject.setup()
    return subject


def fill(cache, count, size=KIB, start=1000.0):
    """``count`` tracked images, accessed one second apart, oldest first."""
    return [cache.add_image(size=size, last_accessed=start + i)
            for i in range(count)]


def prune_counting_batches(cache, monkeypatch):
    """Prune the whole cache; the result and the size of each batch."""
    subject = open_cache(cache)
    batches = []
    evict = subject.files.evict
    monkeypatch.setattr(subject.files, 'evict', lambda batch, pacer=None: (
        batches.append(len(batch)) or evict(batch)))
    return maintenance.prune(subject, 0), batches


class TestPrune:
    def test_under_limit_prunes_nothing(self, cache):
        ids = fill(cache, 5)
        result = maintenance.prune(open_cache(cache), 5 * KIB)
        assert result.to_dict() == {'total_files_pruned': 0,
                                    'total_bytes_pruned': 0}
        assert cache.images() == set(ids)

    def test_limit_below_last_image(self, cache):
        ids = fill(cache, 3, size=4 * KIB)
        result = maintenance.prune(open_cache(cache), 5 * KIB)
        assert result.files == 2
        assert cache.images() == {ids[2]}

    def test_a_reader_of_another_user_does_not_hold_eviction_off(
            self, cache):
        # Cache files are world-readable: any local user could otherwise
        # keep every image from being evicted.
        if os.geteuid() != 0:
            pytest.skip('needs root to read as another user')
        ids = fill(cache, 3)
        reader = subprocess.Popen(
            [sys.executable, '-c', 'import os, sys, time; f = open('
             'sys.argv[1], "rb"); os.setgid(65534); os.setuid(65534); '
             'print("open", flush=True); time.sleep(60)',
             os.path.join(cache.path, ids[0])],
            stdout=subprocess.PIPE, text=True)
        try:
            assert reader.stdout.readline() == 'open\n'
            result = maintenance.prune(open_cache(cache), 0)
        finally:
            reader.kill()
            reader.wait()
            reader.stdout.close()
        assert cache.images() == set()
        assert result.skipped_in_use == 0

    def test_a_pin_made_during_a_prune_holds_from_its_next_batch(
            self, cache, monkeypatch):
        ids = fill(cache, 6)
        subject = open_cache(cache)
        evict = subject.files.evict
        pinned = []

        def evict_then_pin(batch, pacer=None):
            removal = evict(batch, pacer)
            if not pinned:
                pinned.append(subject.state.pin(ids[-1])[0])
            return removal

        monkeypatch.setattr(evictor, 'EVICT_BATCH', 2)
        monkeypatch.setattr(subject.files, 'evict', evict_then_pin)
        result = maintenance.prune(subject, 0)
        assert cache.images() == {ids[-1]}
        assert ids[-1] in cache.rows()
        assert (result.files, result.skipped_pinned) == (5, 1)

    def test_a_prune_that_fails_midway_reports_what_it_removed(
            self, cache, monkeypatch):
        ids = fill(cache, 6)
        subject = open_cache(cache)
        forget = subject.metadata.forget
        calls = []

        def forget_then_fail(image_ids, *args, **kwargs):
            calls.append(image_ids)
            if len(calls) > 1:
                raise exception.MetadataError('the database went away')
            return forget(image_ids, *args, **kwargs)

        monkeypatch.setattr(evictor, 'EVICT_BATCH', 2)
        monkeypatch.setattr(subject.metadata, 'forget', forget_then_fail)
        with pytest.raises(exception.MetadataError) as failed:
            maintenance.prune(subject, 0)
        partial = failed.value.partial
        assert partial.removed_ids() == ids[:2]
        assert partial.by_reason == {'size': {'files': 2, 'bytes': 2 * KIB}}

    def test_only_untracked_files(self, cache):
        for _ in range(8):
            cache.add_image(tracked=False)
        maintenance.prune(open_cache(cache), 3 * KIB)
        assert cache.size() <= 3 * KIB

    def test_recent_untracked_file_is_left_alone(self, cache):
        # glance-api renames a download into place before recording it.
        tracked = fill(cache, 3)
        in_flight = cache.add_image(tracked=False, mtime=time.time())
        maintenance.prune(open_cache(cache), 1 * KIB)
        assert cache.images() == {in_flight}
        assert not set(tracked) & cache.images()

    def test_ties_break_in_caching_order(self, cache):
        ids = [cache.add_image(last_accessed=500.0) for _ in range(6)]
        maintenance.prune(open_cache(cache), 2 * KIB)
        assert cache.images() == set(ids[4:])

    def test_unreadable_file_is_still_evicted(self, cache):
        ids = fill(cache, 3)
        os.chmod(os.path.join(cache.path, ids[0]), 0)
        maintenance.prune(open_cache(cache), 2 * KIB)
        assert cache.images() == set(ids[1:])

    def test_file_that_cannot_be_removed_is_skipped(
            self, cache, monkeypatch):
        ids = fill(cache, 4)
        blocked = ids[0]
        fs.unlink_fails_for(monkeypatch, blocked)
        result = maintenance.prune(open_cache(cache), 2 * KIB)
        # The next candidate took its place and the cache fits.
        assert (result.files, result.failures) == (2, 1)
        assert cache.images() == {blocked, ids[3]}
        assert set(cache.rows()) == {blocked, ids[3]}
        assert cache.size() == result.size_after == 2 * KIB

    def test_a_directory_named_like_an_image_is_not_an_image(self, cache):
        ids = fill(cache, 4)
        os.unlink(os.path.join(cache.path, ids[0]))
        os.mkdir(os.path.join(cache.path, ids[0]))
        maintenance.prune(open_cache(cache), 2 * KIB)
        assert os.path.isdir(os.path.join(cache.path, ids[0]))
        assert cache.images() == set(ids[2:])

    def test_symlink_named_like_an_image_is_never_followed(
            self, cache, tmp_path):
        canary = tmp_path / 'canary'
        canary.write_bytes(b'c' * 10 * KIB)
        ids = fill(cache, 3)
        link = caches.new_id()
        os.symlink(canary, os.path.join(cache.path, link))
        maintenance.prune(open_cache(cache), 0)
        assert canary.read_bytes() == b'c' * 10 * KIB
        assert os.path.islink(os.path.join(cache.path, link))
        assert not set(ids) & cache.images()

    def test_lock_db_and_journal_files_are_not_images(self, cache):
        ids = fill(cache, 2)
        for name in ('glance-cache-prune', 'image_cache_db_init',
                     'cache.db-journal', 'cache.db-wal'):
            with open(os.path.join(cache.path, name), 'wb') as f:
                f.write(b'x' * 100 * KIB)
        result = maintenance.prune(open_cache(cache), 2 * KIB)
        assert result.files == 0
        assert cache.images() == set(ids)

    def test_stop_request_is_honoured_between_batches(self, cache,
                                                      monkeypatch):
        monkeypatch.setattr(evictor, 'EVICT_BATCH', 2)
        ids = fill(cache, 10)
        stop = threading.Event()
        subject = open_cache(cache)
        remove = subject.files.evict

        def remove_then_stop(batch, pacer=None):
            stop.set()
            return remove(batch, pacer)

        monkeypatch.setattr(subject.files, 'evict',
                            remove_then_stop)
        result = maintenance.prune(subject, 0, stop_event=stop)
        assert result.stopped
        assert result.files == 2
        # The batch that ran is complete: files and rows agree.
        assert cache.images() == set(ids[2:])
        assert set(cache.rows()) == set(ids[2:])

    def test_write_transactions_are_bounded(self, cache, monkeypatch):
        monkeypatch.setattr(evictor, 'EVICT_BATCH', 7)
        fill(cache, 30)
        subject = open_cache(cache)
        statements = []
        forget = subject.metadata.forget

        def counting_forget(image_ids):
            statements.append(len(image_ids))
            return forget(image_ids)

        monkeypatch.setattr(subject.metadata, 'forget', counting_forget)
        maintenance.prune(subject, 0)
        assert max(statements) <= 7
        assert sum(statements) == 30

    def test_batches_shrink_while_record_deletes_hold_the_lock_too_long(
            self, cache, monkeypatch):
        monkeypatch.setattr(evictor, 'EVICT_BATCH', 8)
        monkeypatch.setattr(evictor, 'MIN_EVICT_BATCH', 2)
        # Every delete takes longer than a budget of nothing.
        monkeypatch.setattr(evictor, 'LOCK_HOLD_BUDGET', 0)
        fill(cache, 20)
        result, batches = prune_counting_batches(cache, monkeypatch)
        assert result.files == 20
        assert batches == [8, 4, 2, 2, 2, 2]
        assert cache.images() == set() and cache.rows() == {}

    def test_batches_keep_their_size_within_the_budget(self, cache,
                                                       monkeypatch):
        monkeypatch.setattr(evictor, 'EVICT_BATCH', 8)
        monkeypatch.setattr(evictor, 'LOCK_HOLD_BUDGET', 3600)
        fill(cache, 20)
        _, batches = prune_counting_batches(cache, monkeypatch)
        assert batches == [8, 8, 4]

    def test_locked_database_fails_the_run_cleanly(self, cache, monkeypatch):
        from cache_maint.drivers import sqlite as sqlite_driver
        monkeypatch.setattr(sqlite_driver, 'BUSY_TIMEOUT', 0.2)
        fill(cache, 3)
        subject = open_cache(cache)
        holder = sqlite3.connect(cache.db_path, isolation_level=None)
        holder.execute('BEGIN EXCLUSIVE')
        try:
            with pytest.raises(exception.MetadataError, match='locked'):
                maintenance.prune(subject, 0)
        finally:
            holder.execute('ROLLBACK')
            holder.close()
        # Nothing was deleted: the records are read before any unlink.
        assert len(cache.images()) == 3
        assert maintenance.prune(subject, 0).files == 3

    def test_records_go_before_their_files(self, cache, monkeypatch):
        # glance-api records an image it caches again just after its file
        # appears: a record still there then would make that INSERT fail.
        monkeypatch.setattr(evictor, 'EVICT_BATCH', 4)
        ids = fill(cache, 40)
        subject = open_cache(cache)
        forget = subject.metadata.forget
        already_gone = []

        def checking_forget(image_ids):
            already_gone.extend(i for i in image_ids
                                if not subject.files.has_image(i))
            return forget(image_ids)

        monkeypatch.setattr(subject.metadata, 'forget', checking_forget)
        assert maintenance.prune(subject, 10 * KIB).files == 30
        assert already_gone == []
        assert cache.images() == set(ids[30:]) == set(cache.rows())

    def test_a_file_that_stays_gets_its_record_back(self, cache,
                                                    monkeypatch):
        ids = fill(cache, 4)
        rows_before = cache.rows()
        fs.unlink_fails_for(monkeypatch, ids[0])
        result = maintenance.prune(open_cache(cache), 2 * KIB)
        assert result.files == 2 and result.failures == 1
        assert cache.images() == {ids[0], ids[3]}
        # Put back as it was: hits and last access unchanged.
        assert cache.rows() == {i: rows_before[i] for i in (ids[0], ids[3])}

    def test_sqlite_deletes_come_after_the_last_unlinks_are_durable(
            self, cache, monkeypatch):
        # A commit while unlinks fill the filesystem journal would hold the
        # write lock glance-api waits for as long as that journal's flush.
        monkeypatch.setattr(evictor, 'EVICT_BATCH', 4)
        fill(cache, 12)
        subject = open_cache(cache)
        events = []
        sync, forget = subject.files.sync, subject.metadata.forget
        monkeypatch.setattr(subject.files, 'sync',
                            lambda: events.append('sync') or sync())
        monkeypatch.setattr(subject.metadata, 'forget',
                            lambda ids: events.append('forget') or forget(ids))
        assert maintenance.prune(subject, 0).files == 12
        assert events == ['forget', 'sync', 'forget', 'sync', 'forget']

    def test_failed_record_delete_fails_the_run_and_leaves_it_whole(
            self, cache, monkeypatch):
        monkeypatch.setattr(evictor, 'EVICT_BATCH', 5)
        ids = fill(cache, 20)
        subject = open_cache(cache)
        forget = subject.metadata.forget
        calls = []

        def failing_second_forget(image_ids):
            calls.append(list(image_ids))
            if len(calls) == 2:
                raise exception.MetadataError('the database went away')
            return forget(image_ids)

        monkeypatch.setattr(subject.metadata, 'forget', failing_second_forget)
        with pytest.raises(exception.MetadataError, match='went away') as e:
            maintenance.prune(subject, 0)
        assert 'removed 5 images, then could not delete the records of ' \
            'the next ones, whose files are all still there' in str(e.value)
        # Records go first: the batch whose delete failed kept everything.
        assert cache.images() == set(ids[5:]) == set(cache.rows())
        monkeypatch.setattr(subject.metadata, 'forget', forget)
        assert maintenance.prune(subject, 0).files == 15

    def test_under_limit_needs_no_records(self, cache):
        """Like Glance's, a prune with nothing to do only scans the files."""
        ids = fill(cache, 3)
        subject = open_cache(cache)
        holder = sqlite3.connect(cache.db_path, isolation_level=None)
        holder.execute('BEGIN EXCLUSIVE')
        try:
            assert maintenance.prune(subject, 3 * KIB).files == 0
        finally:
            holder.execute('ROLLBACK')
            holder.close()
        assert cache.images() == set(ids)

    def test_many_victims_are_unlinked_from_threads(self, cache,
                                                    monkeypatch):
        from cache_maint import cachedir
        ids = fill(cache, cachedir.PARALLEL_FROM * 3)
        unlinkers = set()
        unlink = os.unlink

        def recording_unlink(*args, **kwargs):
            unlinkers.add(threading.current_thread().name)
            return unlink(*args, **kwargs)

        monkeypatch.setattr(os, 'unlink', recording_unlink)
        keep = cachedir.PARALLEL_FROM
        result = maintenance.prune(open_cache(cache), keep * KIB)
        assert result.files == len(ids) - keep
        assert cache.images() == set(ids[-keep:]) == set(cache.rows())
        assert all(name.startswith('unlink') for name in unlinkers)


class TestClean:
    def test_image_cached_again_meanwhile_keeps_its_record(
            self, cache, monkeypatch):
        # glance-api takes the image out of the cache (file, then record)
        # after clean read the records, and caches it again (file, then
        # record) just after clean looked for the file once more: the new
        # record is not stale.
        image_id = cache.add_image(last_accessed=1000.0)
        stale = set(cache.rows())
        subject = open_cache(cache)
        has_image = subject.files.has_image

        def cached_again_after_the_look(name):
            found = has_image(name)
            if name == image_id:
                with sqlite3.connect(cache.db_path) as conn:
                    conn.execute('DELETE FROM cached_images')
                cache.add_image(image_id=image_id)
            return found

        os.unlink(os.path.join(cache.path, image_id))
        monkeypatch.setattr(subject.files, 'has_image',
                            cached_again_after_the_look)
        maintenance.clean(subject, 86400)
        assert set(cache.rows()) == cache.images() == stale

    def test_invalid_is_emptied(self, cache):
        names = [cache.add_invalid(size=2 * KIB) for _ in range(3)]
        result = maintenance.clean(open_cache(cache), 86400)
        assert (result.files, result.bytes) == (3, 6 * KIB)
        assert not cache.listdir('invalid') & set(names)

    def test_stalled_incomplete_goes_recent_one_stays(self, cache):
        cache.add_incomplete(age=2 * 86400)    # stalled
        recent = cache.add_incomplete(age=60)
        result = maintenance.clean(open_cache(cache), 86400)
        assert result.files == 1
        assert cache.listdir('incomplete') == {recent}

    def test_custom_stall_time(self, cache):
        cache.add_incomplete(age=7200)    # older than the stall time
        young = cache.add_incomplete(age=1800)
        maintenance.clean(open_cache(cache), 3600)
        assert cache.listdir('incomplete') == {young}

    def test_stall_time_zero_spares_a_download_in_progress(self, cache):
        in_progress = cache.add_incomplete(age=0)
        cache.add_incomplete(age=600)    # out of the in-flight grace
        maintenance.clean(open_cache(cache), 0)
        assert cache.listdir('incomplete') == {in_progress}

    def test_symlink_in_invalid_goes_target_stays(self, cache, tmp_path):
        canary = tmp_path / 'outside'
        canary.write_text('precious')
        link = os.path.join(cache.path, 'invalid', caches.new_id())
        os.symlink(canary, link)
        result = maintenance.clean(open_cache(cache), 86400)
        assert result.files == 1
        assert not os.path.lexists(link)
        assert canary.read_text() == 'precious'

    def test_symlinked_subdirectory_is_not_followed(self, cache, tmp_path):
        outside = tmp_path / 'outside'
        outside.mkdir()
        (outside / 'victim').write_text('keep me')
        os.rmdir(os.path.join(cache.path, 'invalid'))
        os.symlink(outside, os.path.join(cache.path, 'invalid'))
        maintenance.clean(open_cache(cache), 86400)
        assert (outside / 'victim').read_text() == 'keep me'

    def test_directories_in_invalid_are_left(self, cache):
        os.mkdir(os.path.join(cache.path, 'invalid', 'somedir'))
        maintenance.clean(open_cache(cache), 86400)
        assert cache.listdir('invalid') == {'somedir'}

    def test_unreadable_invalid_file_is_removed(self, cache):
        name = cache.add_invalid()
        os.chmod(os.path.join(cache.path, 'invalid', name), 0)
        maintenance.clean(open_cache(cache), 86400)
        assert cache.listdir('invalid') == set()

    def test_rows_without_files_are_forgotten(self, cache):
        kept = cache.add_image()
        ghosts = [cache.add_row() for _ in range(3)]
        result = maintenance.clean(open_cache(cache), 86400)
        assert result.records_forgotten == 3
        assert set(cache.rows()) == {kept}
        assert not set(ghosts) & set(cache.rows())

    def test_cached_images_and_queue_are_untouched(self, cache):
        ids = fill(cache, 3)
        queued = cache.queue(age=5 * 86400)
        untracked = cache.add_image(tracked=False)
        result = maintenance.clean(open_cache(cache), 0)
        assert result.files == 0
        assert cache.images() == set(ids) | {untracked}
        assert cache.listdir('queue') == {queued}

    def test_missing_subdirectories_are_nothing_to_clean(self, cache):
        subject = open_cache(cache)
        os.rmdir(os.path.join(cache.path, 'invalid'))
        os.rmdir(os.path.join(cache.path, 'incomplete'))
        assert maintenance.clean(subject, 0).files == 0

    def test_read_only_cache_fails_clearly_and_changes_nothing(self, cache):
        ids = fill(cache, 3)
        invalid = cache.add_invalid()
        subject = open_cache(cache)
        with fs.read_only(cache.path):
            with pytest.raises(exception.CacheDirError,
                               match='cannot remove files'):
                maintenance.prune(subject, 0)
            with pytest.raises(exception.CacheDirError,
                               match='cannot remove files'):
                maintenance.clean(subject, 0)
            assert cache.images() == set(ids)
            assert cache.listdir('invalid') == {invalid}
        assert set(cache.rows()) == set(ids)

    def test_many_files_are_cleaned(self, cache):
        invalid = [cache.add_invalid() for _ in range(50)]
        stalled = [cache.add_incomplete(age=3 * 86400) for _ in range(50)]
        fresh = cache.add_incomplete(age=5)
        result = maintenance.clean(open_cache(cache), 86400)
        assert result.files == len(invalid) + len(stalled)
        assert cache.listdir('invalid') == set()
        assert cache.listdir('incomplete') == {fresh}

    def test_read_only_stops_after_one_attempt(self, cache, monkeypatch):
        for _ in range(50):
            cache.add_invalid()
        subject = open_cache(cache)
        attempts = []
        unlink = os.unlink

        def counting_unlink(*args, **kwargs):
            attempts.append(args[0])
            return unlink(*args, **kwargs)

        with fs.read_only(cache.path):
            monkeypatch.setattr(os, 'unlink', counting_unlink)
            with pytest.raises(exception.CacheDirError,
                               match='cannot remove files'):
                maintenance.clean(subject, 0)
            monkeypatch.undo()
        assert len(attempts) == 1
        assert len(cache.listdir('invalid')) == 50

    def test_cache_dir_removed_while_running(self, cache):
        subject = open_cache(cache)
        os.rename(cache.path, cache.path + '.gone')
        with pytest.raises(exception.CacheDirError):
            maintenance.clean(subject, 0)
        with pytest.raises(exception.CacheDirError):
            maintenance.prune(subject, 0)
