"""The real ``cache-maint-manage`` command on real Glance caches."""

import json
import os
import subprocess
import time

from oslo_concurrency import lockutils
import pytest

from tests.support import caches
from tests.support import plans
from tests.support import processes
from tests.support import running
from tests.support import settings


KIB = caches.KIB


@pytest.fixture
def configure(tmp_path, cache):
    """Write a config for the test's cache; return its path."""
    def configure(log_file=True, sections=None, **options):
        default = {'image_cache_dir': cache.path,
                   'image_cache_driver': 'sqlite',
                   'image_cache_max_size': 10 * KIB,
                   'image_cache_stall_time': 60}
        if log_file:
            default['log_file'] = str(tmp_path / 'manage.log')
        default.update(options)
        default = {k: v for k, v in default.items() if v is not None}
        return settings.write_config(tmp_path / 'cache-maint.conf',
                                     dict(sections or {}, DEFAULT=default))
    return configure


manage = running.manage


def ok_json(result):
    """The JSON a successful command printed, and nothing else."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def snapshot(cache):
    """Every entry of the cache directory tree, with its size."""
    entries = {}
    for root, dirs, files in os.walk(cache.path):
        for name in files:
            path = os.path.join(root, name)
            entries[os.path.relpath(path, cache.path)] = os.lstat(
                path).st_size
    return entries


def lock_file_names(entries):
    """Lock files and the state are the service's own; leave them out."""
    return {k: v for k, v in entries.items()
            if not k.startswith(('glance-cache-', 'image_cache_db_init',
                                 '.cache-maint/'))}


class TestPrune:
    """``prune`` evicts exactly the LRU images and says what it freed."""

    def test_evicts_exactly_the_lru_images(self, cache, configure):
        """Mixed sizes, LRU order unlike creation order: exact victims."""
        now = time.time()
        sizes = [3, 1, 4, 1, 5, 2, 6, 2, 5, 3, 5, 1]
        ages = [50, 10, 110, 70, 30, 90, 20, 120, 60, 40, 100, 80]
        images = [plans.Image(caches.new_id(), size * KIB, now - age * 60,
                              now - 3600, age)
                  for size, age in zip(sizes, ages)]
        for image in images:
            cache.add_image(size=image.size, last_accessed=image.last_accessed,
                            hits=image.hits, image_id=image.image_id)
        survivors = plans.survivors(images, 15 * KIB)
        victims = [i for i in images if i.image_id not in survivors]
        queued = cache.queue()
        invalid = cache.add_invalid()
        stalled = cache.add_incomplete(age=3600)
        rows_before = cache.rows()

        result = manage(configure(image_cache_max_size=15 * KIB), 'prune')

        assert ok_json(result) == {
            'total_files_pruned': len(victims),
            'total_bytes_pruned': sum(i.size for i in victims)}
        assert cache.images() == survivors
        assert cache.rows() == {i: rows_before[i] for i in survivors}
        assert cache.size() <= 15 * KIB
        assert cache.listdir('queue') == {queued}
        assert cache.listdir('invalid') == {invalid}
        assert cache.listdir('incomplete') == {stalled}

    def test_evicts_old_untracked_files_first(self, cache, configure):
        """A leftover file goes first; a just-committed one is spared."""
        tracked = [cache.add_image(last_accessed=time.time() - 1000 + i)
                   for i in range(5)]
        leftover = cache.add_image(tracked=False)
        committing = cache.add_image(tracked=False, mtime=time.time())

        result = manage(configure(image_cache_max_size=5 * KIB), 'prune')

        assert ok_json(result) == {'total_files_pruned': 2,
                                   'total_bytes_pruned': 2 * KIB}
        assert cache.images() == set(tracked[1:]) | {committing}
        assert set(cache.rows()) == set(tracked[1:])
        assert leftover not in cache.images()

    def test_within_the_limit_changes_nothing(self, cache, configure):
        """A cache under its limit is left exactly as it was."""
        for i in range(5):
            cache.add_image(last_accessed=time.time() - 100 + i)
        cache.add_invalid()
        before = lock_file_names(snapshot(cache))
        rows = cache.rows()

        result = manage(configure(image_cache_max_size=5 * KIB), 'prune')

        assert ok_json(result) == {'total_files_pruned': 0,
                                   'total_bytes_pruned': 0}
        assert lock_file_names(snapshot(cache)) == before
        assert cache.rows() == rows

    def test_show_run_prints_the_run_record(self, cache, configure):
        """What GET /v2/cache/runs would show of this run, duration too."""
        for i in range(3):
            cache.add_image(last_accessed=1000.0 + i)
        run = ok_json(manage(configure(image_cache_max_size=KIB), 'prune',
                             '--show-run'))
        assert run['task'] == 'prune'
        assert run['trigger'] == 'command line'
        assert run['outcome'] == 'succeeded'
        assert run['result'] == {'total_files_pruned': 2,
                                 'total_bytes_pruned': 2 * KIB}
        assert run['duration'] == pytest.approx(
            run['finished_at'] - run['started_at'], abs=1e-5)
        assert len(cache.images()) == 1

    def test_show_run_prints_a_failed_run_too(self, cache, configure,
                                              tmp_path):
        """Its record says how it ended; the exit status says it failed."""
        cache.add_image()
        (tmp_path / 'a-file').write_text('not a directory\n')
        # The run fails once it starts: its lock file cannot be made. (The
        # xattr driver's setup takes no lock, where sqlite's would fail.)
        locked_out = {'lock_path': tmp_path / 'a-file' / 'locks'}
        result = manage(configure(image_cache_driver='xattr',
                                  image_cache_max_size=0,
                                  sections={'oslo_concurrency': locked_out}),
                        'prune', '--show-run')
        assert result.returncode != 0
        run = json.loads(result.stdout)
        assert (run['task'], run['outcome']) == ('prune', 'failed')
        assert run['error'] and run['result'] is None
        assert 'cache-maint-manage prune failed' in result.stderr


class TestClean:
    """``clean`` removes failed and stalled downloads, and says so."""

    def test_reports_exact_counts(self, cache, configure):
        """Invalid and stalled files go, counted; the rest stays."""
        images = [cache.add_image() for _ in range(3)]
        stale_row = cache.add_row()
        for size in (100, 200, 300):
            cache.add_invalid(size=size)
        cache.add_incomplete(size=400, age=3600)
        fresh = cache.add_incomplete(size=500, age=0)
        young = cache.add_incomplete(size=600, age=30)
        queued = cache.queue()

        result = manage(configure(image_cache_stall_time=60), 'clean')

        assert ok_json(result) == {'total_files_cleaned': 4,
                                   'total_bytes_cleaned': 1000}
        assert cache.listdir('invalid') == set()
        assert cache.listdir('incomplete') == {fresh, young}
        assert cache.listdir('queue') == {queued}
        assert cache.images() == set(images)
        assert set(cache.rows()) == set(images)
        assert stale_row not in cache.rows()

    def test_removes_links_never_their_targets(self, cache, configure,
                                               tmp_path):
        """A symlink in invalid/ is removed; what it points at is not."""
        canary = tmp_path / 'canary'
        canary.write_bytes(b'precious')
        link = os.path.join(cache.path, 'invalid', caches.new_id())
        os.symlink(canary, link)

        result = manage(configure(), 'clean')

        assert ok_json(result)['total_files_cleaned'] == 1
        assert not os.path.lexists(link)
        assert canary.read_bytes() == b'precious'


class TestList:
    """``list`` shows cached and queued images, as a table or JSON."""

    def _fill(self, cache):
        """Three cached images of distinct sizes, three queued ones."""
        now = time.time()
        cached = {cache.add_image(size=(i + 1) * KIB, hits=i,
                                  last_accessed=now - 100 * i): i
                  for i in range(3)}
        queued = [cache.queue(age=age) for age in (300, 200, 100)]
        return cached, queued

    def test_json(self, cache, configure):
        """Every cached record with its fields; the queue oldest first."""
        cached, queued = self._fill(cache)
        rows = cache.rows()

        listing = ok_json(manage(configure(), 'list', '--format', 'json'))

        assert listing['queued_images'] == queued
        records = listing['cached_images']
        assert [r['image_id'] for r in records] == sorted(cached)
        for record in records:
            last_accessed, size, hits = rows[record['image_id']]
            assert record == {'image_id': record['image_id'],
                              'last_accessed': last_accessed,
                              'last_modified': last_accessed,
                              'size': size, 'hits': hits}

    def test_table(self, cache, configure):
        """The table names every cached and queued id, and the totals."""
        cached, queued = self._fill(cache)

        result = manage(configure(), 'list')

        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        for image_id, i in cached.items():
            assert any(line.split()[:3] == [image_id, str((i + 1) * KIB),
                                            str(i)] for line in lines)
        assert lines[-len(queued):] == ['  queued: %s' % image_id
                                        for image_id in queued]
        assert '3 cached image(s), %d byte(s); 3 queued image(s)' % (
            6 * KIB) in result.stdout


class TestFailures:
    """Failures exit non-zero with one clear line, and change nothing."""

    @pytest.mark.parametrize('command', ['clean', 'prune', 'list'])
    def test_corrupt_db(self, cache, configure, command):
        """A db that is not sqlite names the problem; no traceback."""
        for i in range(12):
            cache.add_image(last_accessed=time.time() - 100 + i)
        cache.add_invalid()
        with open(cache.db_path, 'wb') as f:
            f.write(b'garbage, not a database\n' * 64)
        before = snapshot(cache)

        result = manage(configure(), command)

        assert result.returncode != 0
        assert result.stdout == ''
        assert 'cache-maint-manage %s failed' % command in result.stderr
        assert 'cache database' in result.stderr
        assert 'not a database' in result.stderr
        assert 'Traceback' not in result.stderr
        assert lock_file_names(snapshot(cache)) == lock_file_names(before)

    @pytest.mark.parametrize('option, options', [
        ('image_cache_dir', {'image_cache_dir': None}),
        ('image_cache_max_size', {'image_cache_max_size': -1}),
        ('image_cache_dir', {'image_cache_dir': 'MISSING'}),
        ('image_cache_driver', {'image_cache_driver': 'memcache'}),
        ('image_cache_stall_time', {'image_cache_stall_time': 'soon'}),
    ])
    def test_bad_config(self, cache, configure, tmp_path, option, options):
        """A configuration that cannot work is refused, naming the option."""
        missing = tmp_path / 'no' / 'dir'
        options = {k: str(missing) if v == 'MISSING' else v
                   for k, v in options.items()}
        cache.add_image(last_accessed=0)
        cache.add_image()
        before = snapshot(cache)

        result = manage(configure(**dict({'image_cache_max_size': KIB},
                                         **options)), 'prune')

        assert result.returncode != 0
        assert option in result.stderr, result.stderr
        assert 'Traceback' not in result.stderr, result.stderr
        assert snapshot(cache) == before
        assert not os.path.exists(tmp_path / 'no')

    def test_missing_config_file(self, tmp_path):
        """A config file that does not exist is named in the error."""
        missing = str(tmp_path / 'missing.conf')

        result = manage(missing, 'list')

        assert result.returncode != 0
        assert missing in result.stderr


class TestLooking:
    """Commands that only look create nothing, anywhere."""

    @pytest.mark.parametrize('args', [
        ('status',), ('status', '--format', 'json'), ('pins',),
        ('prune', '--dry-run'), ('clean', '--dry-run', '--format', 'json')])
    def test_nothing_is_created(self, cache, configure, tmp_path, args):
        for i in range(12):
            cache.add_image(last_accessed=time.time() - 100 + i)
        before = snapshot(cache)
        result = manage(configure(log_file=False), *args)
        assert result.returncode == 0, result.stderr
        assert snapshot(cache) == before
        assert not os.path.exists(os.path.join(cache.path, '.cache-maint'))

    def test_status_of_a_missing_cache_creates_it_not(self, tmp_path):
        config = settings.write_config(tmp_path / 'c.conf', {'DEFAULT': {
            'image_cache_dir': str(tmp_path / 'no' / 'cache'),
            'image_cache_driver': 'sqlite'}})
        result = manage(config, 'status', '--format', 'json')
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert str(tmp_path / 'no' / 'cache') in document['cache']['error']
        assert document['service']['running'] is False
        assert not os.path.exists(tmp_path / 'no')


class TestLocks:
    """``prune`` and ``clean`` share Glance's locks with everyone else."""

    def _over_limit(self, cache):
        """Eight tracked 1 KiB images, least recently used first."""
        return [cache.add_image(last_accessed=time.time() - 1000 + i)
                for i in range(8)]

    def test_prune_wait_0_gives_up_while_locked(self, cache, configure):
        """Another process's prune lock: exit non-zero, remove nothing."""
        images = self._over_limit(cache)
        config = configure(image_cache_max_size=4 * KIB)

        with lockutils.external_lock('glance-cache-prune',
                                     lock_path=cache.path):
            result = manage(config, 'prune', '--wait', '0')

        assert result.returncode != 0
        assert result.stdout == ''
        assert 'cache-maint-manage prune failed' in result.stderr
        assert 'a prune run is in progress' in result.stderr
        assert 'glance-cache-prune' in result.stderr
        assert cache.images() == set(images)
        assert set(cache.rows()) == set(images)

    def test_prune_waits_for_the_lock_then_runs(self, cache, configure):
        """Without --wait, prune waits for the other run, then prunes."""
        images = self._over_limit(cache)
        config = configure(image_cache_max_size=4 * KIB)
        lock = lockutils.external_lock('glance-cache-prune',
                                       lock_path=cache.path)
        lock.acquire()
        process = running.start_manage(config, 'prune')
        try:
            try:
                # Still waiting while the lock is held, and nothing gone.
                with pytest.raises(subprocess.TimeoutExpired):
                    process.wait(2)
                assert cache.images() == set(images)
            finally:
                lock.release()
            stdout, stderr = process.communicate(timeout=processes.DEADLINE)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, stderr
        assert json.loads(stdout) == {'total_files_pruned': 4,
                                      'total_bytes_pruned': 4 * KIB}
        assert cache.images() == set(images[4:])

    def test_clean_lock_does_not_block_prune(self, cache, configure):
        """The two tasks have separate locks: a clean never stops a prune."""
        images = self._over_limit(cache)
        config = configure(image_cache_max_size=4 * KIB)

        with lockutils.external_lock('glance-cache-clean',
                                     lock_path=cache.path):
            result = manage(config, 'prune', '--wait', '0')
            locked_clean = manage(config, 'clean', '--wait', '0')

        assert ok_json(result) == {'total_files_pruned': 4,
                                   'total_bytes_pruned': 4 * KIB}
        assert cache.images() == set(images[4:])
        assert locked_clean.returncode != 0
        assert 'a clean run is in progress' in locked_clean.stderr


class TestOutput:
    """What scripts read from the command: stdout only, never logs."""

    @pytest.mark.parametrize('command', ['prune', 'clean'])
    def test_stdout_is_only_json_without_log_file(self, cache, configure,
                                                  command):
        """Without a log_file the log goes to stderr, not into the JSON."""
        for i in range(4):
            cache.add_image(last_accessed=time.time() - 100 + i)
        cache.add_invalid(size=10)

        result = manage(configure(log_file=False,
                                  image_cache_max_size=2 * KIB), command)

        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {
            'prune': {'total_files_pruned': 2,
                      'total_bytes_pruned': 2 * KIB},
            'clean': {'total_files_cleaned': 1,
                      'total_bytes_cleaned': 10}}[command]
        assert ('Prune evicted' if command == 'prune' else 'Clean removed') \
            in result.stderr


class TestLockMessage:
    def test_lock_message_names_a_plain_path(self, cache, configure):
        """The operator sees the lock file's path, not a Python repr."""
        cache.add_image()

        with lockutils.external_lock('glance-cache-prune',
                                     lock_path=cache.path):
            result = manage(configure(), 'prune', '--wait', '0')

        assert result.returncode != 0
        lock = os.path.join(cache.path, 'glance-cache-prune')
        assert ' %s' % lock in result.stderr
        assert "b'" not in result.stderr


class TestCentralizedDb:
    """The centralized_db driver from the command line, on an SQLite file."""

    def test_db_sync_then_prune(self, tmp_path, cache, configure):
        glance_db = 'sqlite:///%s' % (tmp_path / 'glance.db')
        config = configure(image_cache_driver='centralized_db',
                           worker_self_reference_url=caches.NODE_URL,
                           image_cache_max_size=2 * KIB,
                           sections={'database': {'connection': glance_db}})

        missing = manage(config, 'prune')
        assert missing.returncode != 0
        assert 'db-sync' in missing.stderr

        created = manage(config, 'db-sync')
        assert created.returncode == 0, created.stderr
        assert created.stdout.strip() == (
            'Created tables: node_reference, cached_images')
        again = manage(config, 'db-sync')
        assert 'already exist' in again.stdout

        central = caches.CentralCache(cache.path, glance_db)
        try:
            ids = [central.add_image(last_accessed=1000.0 + i)
                   for i in range(4)]
            assert ok_json(manage(config, 'prune')) == {
                'total_files_pruned': 2, 'total_bytes_pruned': 2 * KIB}
            assert central.images() == set(ids[2:])
            assert set(central.rows()) == set(ids[2:])
            listed = ok_json(manage(config, 'list', '--format', 'json'))
            assert [r['image_id'] for r in listed['cached_images']] == \
                sorted(ids[2:])
        finally:
            central.close()


def test_a_directory_where_a_default_config_file_goes_is_one_line(
        tmp_path, monkeypatch):
    """oslo.config looks in ~/.cache-maint/ when no file is given."""
    (tmp_path / '.cache-maint' / 'cache-maint.conf').mkdir(parents=True)
    monkeypatch.setenv('HOME', str(tmp_path))
    for script in ('cache-maint-manage', 'cache-maint-status'):
        args = ['list'] if script == 'cache-maint-manage' else [
            'upgrade', 'check']
        result = processes.run_script(script, args)
        assert result.returncode != 0
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert 'configuration error: cannot read %s' % (
            tmp_path / '.cache-maint' / 'cache-maint.conf') in lines[0]
