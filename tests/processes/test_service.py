"""The real ``cache-maint`` service in a subprocess: timers, API, signals."""

from concurrent import futures
import json
import os
import signal
import subprocess
import time

from oslo_concurrency import lockutils
import pytest

from tests.support import caches
from tests.support import plans
from tests.support import processes
from tests.support import settings


KIB = caches.KIB


def add_lru_images(cache, count, size=KIB):
    """``count`` tracked images, least recently used first in the list."""
    past = time.time() - 10000
    return [cache.add_image(size=size, last_accessed=past + 10 * i, hits=i)
            for i in range(count)]


def describe(cache):
    """What a failure message needs: files and rows of the cache."""
    return 'images on disk: %s\nrows: %s' % (sorted(cache.images()),
                                             sorted(cache.rows()))


def wait_pruned_to(cache, daemon, survivors):
    """Poll until exactly ``survivors`` are left, on disk and in the db."""
    survivors = set(survivors)
    processes.wait_for(
        lambda: cache.images() == survivors and set(cache.rows()) == survivors,
        'the cache to be pruned to %d images' % len(survivors),
        diagnostics=lambda: describe(cache) + '\n' + daemon.diagnostics())


def test_prunes_on_its_own(cache, daemons):
    """The periodic prune keeps exactly the most recently used images."""
    images = add_lru_images(cache, 20)
    queued = cache.queue()
    invalid = cache.add_invalid()
    incomplete = cache.add_incomplete(age=3600)
    with open(os.path.join(cache.path, 'notes.txt'), 'w') as f:
        f.write('not an image')
    rows_before = cache.rows()

    daemon = daemons(image_cache_max_size=10 * KIB, cache_prune_interval=1,
                     cache_clean_interval=0).start()
    wait_pruned_to(cache, daemon, images[10:])

    assert cache.size() <= 10 * KIB
    rows = cache.rows()
    assert rows == {i: rows_before[i] for i in images[10:]}
    for image_id in images[10:]:
        assert os.path.getsize(os.path.join(cache.path, image_id)) == KIB
    # Prune touches images only; clean is disabled, so nothing else moves.
    assert cache.listdir('queue') == {queued}
    assert cache.listdir('invalid') == {invalid}
    assert cache.listdir('incomplete') == {incomplete}
    assert os.path.exists(os.path.join(cache.path, 'notes.txt'))
    # The run is recorded, and logged, a moment after its last record is
    # deleted: poll for its record (reading the log once made this test
    # fail on a loaded machine).
    processes.wait_for(lambda: any(
        run['task'] == 'prune' and run['trigger'] == 'periodic'
        and run['outcome'] == 'succeeded'
        and run['result']['total_files_pruned'] == 10
        for run in daemon.request('GET', '/v2/cache/runs',
                                  token='admin').json()['runs']),
        'the periodic prune to be recorded', diagnostics=daemon.diagnostics)


def test_cleans_on_its_own(cache, daemons, tmp_path):
    """The periodic clean removes failed and stalled downloads only."""
    images = add_lru_images(cache, 3)
    stale_row = cache.add_row()
    for size in (100, 200, 300):
        cache.add_invalid(size=size)
    stalled = cache.add_incomplete(age=3600)
    fresh = cache.add_incomplete(age=0)
    canary = tmp_path / 'canary.txt'
    canary.write_bytes(b'outside the cache: keep me')
    outside_dir = tmp_path / 'outside'
    outside_dir.mkdir()
    (outside_dir / 'precious').write_bytes(b'keep me too')
    file_link = os.path.join(cache.path, 'invalid', caches.new_id())
    dir_link = os.path.join(cache.path, 'invalid', caches.new_id())
    os.symlink(canary, file_link)
    os.symlink(outside_dir, dir_link)

    daemon = daemons(image_cache_stall_time=60, cache_clean_interval=1,
                     cache_prune_interval=0).start()
    processes.wait_for(
        lambda: (not cache.listdir('invalid')
                 and cache.listdir('incomplete') == {fresh}
                 and stale_row not in cache.rows()),
        'the periodic clean',
        diagnostics=lambda: '%s\ninvalid: %s\nincomplete: %s\n%s' % (
            describe(cache), cache.listdir('invalid'),
            cache.listdir('incomplete'), daemon.diagnostics()))

    assert not os.path.lexists(file_link)
    assert not os.path.lexists(dir_link)
    assert canary.read_bytes() == b'outside the cache: keep me'
    assert (outside_dir / 'precious').read_bytes() == b'keep me too'
    assert stalled not in cache.listdir('incomplete')
    assert cache.images() == set(images)
    assert set(cache.rows()) == set(images)


def test_answers_the_api_while_running_tasks(cache, daemons):
    """The API serves clean, prune and discovery beside the timers."""
    images = add_lru_images(cache, 20)
    cache.add_invalid()
    cache.add_incomplete(age=3600)
    daemon = daemons(image_cache_max_size=10 * KIB, cache_prune_interval=1,
                     cache_clean_interval=1).start()

    pruned_by_api = 0
    for _ in range(3):
        for task, keys in (('prune', ('total_files_pruned',
                                      'total_bytes_pruned')),
                           ('clean', ('total_files_cleaned',
                                      'total_bytes_cleaned'))):
            response = daemon.request('POST', '/v2/cache/%s' % task,
                                      token='admin')
            assert response.status_code == 200, response.text
            assert response.headers['Content-Type'].startswith(
                'application/json')
            body = response.json()
            assert set(body) == set(keys)
            assert all(isinstance(body[k], int) and body[k] >= 0
                       for k in keys)
            pruned_by_api += body.get('total_files_pruned', 0)
        time.sleep(0.5)

    # Timer and API shared the work without overlapping: exactly the ten
    # most recently used images are left, whoever evicted the others.
    assert cache.images() == set(images[10:])
    assert set(cache.rows()) == set(images[10:])
    assert pruned_by_api <= 10

    # glanceclient sends bodyless POSTs as application/octet-stream.
    response = daemon.request(
        'POST', '/v2/cache/prune', token='admin',
        headers={'Content-Type': 'application/octet-stream'})
    assert response.status_code == 200, response.text

    for task in ('prune', 'clean'):
        denied = daemon.request('POST', '/v2/cache/%s' % task, token='demo')
        assert denied.status_code == 403, denied.text
        assert denied.json()['error']['code'] == 403
        anonymous = daemon.request('POST', '/v2/cache/%s' % task)
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()['error']['code'] == 401

    root = daemon.request('GET', '/')
    assert root.status_code == 300
    versions = daemon.request('GET', '/versions')
    assert versions.status_code == 200
    assert root.json() == versions.json()
    statuses = {v['id']: v['status'] for v in versions.json()['versions']}
    assert statuses == {'v2.18': 'CURRENT', 'v2.17': 'SUPPORTED',
                        'v2.16': 'SUPPORTED', 'v2.15': 'SUPPORTED',
                        'v2.14': 'SUPPORTED'}
    assert cache.size() <= 10 * KIB


def test_api_gives_up_on_a_run_elsewhere(cache, daemons, tmp_path):
    """A prune lock held past task_wait_timeout is a 409; nothing goes."""
    images = add_lru_images(cache, 20)
    daemon = daemons(image_cache_max_size=10 * KIB, cache_prune_interval=0,
                     cache_clean_interval=0, api={'task_wait_timeout': 1})

    with lockutils.external_lock('glance-cache-prune', lock_path=cache.path):
        daemon.start()
        response = daemon.request('POST', '/v2/cache/prune', token='admin')

    assert response.status_code == 409, response.text
    error = response.json()['error']
    assert error['code'] == 409
    assert 'already in progress' in error['message']
    assert str(tmp_path) not in response.text
    assert cache.images() == set(images)
    assert set(cache.rows()) == set(images)


def test_api_waits_for_a_run_elsewhere_then_runs(cache, daemons):
    """A prune request during another process's run waits, then prunes."""
    images = add_lru_images(cache, 20)
    daemon = daemons(image_cache_max_size=10 * KIB, cache_prune_interval=0,
                     cache_clean_interval=0,
                     api={'task_wait_timeout': processes.DEADLINE})
    lock = lockutils.external_lock('glance-cache-prune', lock_path=cache.path)

    with futures.ThreadPoolExecutor(max_workers=1) as pool:
        with lock:
            daemon.start()
            pending = pool.submit(daemon.request, 'POST', '/v2/cache/prune',
                                  token='admin')
            # Still waiting while the lock is held, and nothing removed.
            with pytest.raises(futures.TimeoutError):
                pending.result(timeout=1)
            assert cache.images() == set(images)
        response = pending.result(timeout=processes.DEADLINE)

    assert response.status_code == 200, response.text
    assert response.json() == {'total_files_pruned': 10,
                               'total_bytes_pruned': 10 * KIB}
    assert cache.images() == set(images[10:])
    assert set(cache.rows()) == set(images[10:])


def test_sighup_reloads_the_configuration(cache, daemons):
    """SIGHUP to the master re-reads the config: new interval, new limit."""
    images = add_lru_images(cache, 20)
    daemon = daemons(image_cache_max_size=10 * KIB, cache_prune_interval=0,
                     cache_clean_interval=1).start()
    processes.wait_for(lambda: 'Periodic prune is disabled' in daemon.log(),
                       'the worker to report the disabled prune',
                       diagnostics=daemon.diagnostics)
    # Over a few clean periods nothing may be pruned.
    time.sleep(3)
    assert cache.images() == set(images), describe(cache)
    assert set(cache.rows()) == set(images)
    old_workers = daemon.workers()

    daemon.configure(image_cache_max_size=6 * KIB, cache_prune_interval=1,
                     cache_clean_interval=1)
    daemon.send_signal(signal.SIGHUP)
    wait_pruned_to(cache, daemon, images[14:])

    assert cache.size() <= 6 * KIB
    # The port may be closed for a moment while the worker is re-forked.
    daemon.wait_ready()
    response = daemon.request('POST', '/v2/cache/prune', token='admin')
    assert response.status_code == 200, response.text
    assert response.json() == {'total_files_pruned': 0,
                               'total_bytes_pruned': 0}
    assert daemon.process.poll() is None
    assert not old_workers & daemon.workers()


@pytest.mark.parametrize('breakage', ['invalid value', 'unparsable file'])
def test_sighup_with_a_bad_config_keeps_the_running_one(cache, daemons,
                                                        breakage):
    """A reload the service cannot run with is refused, not obeyed."""
    images = add_lru_images(cache, 20)
    daemon = daemons(image_cache_max_size=10 * KIB, cache_prune_interval=1,
                     cache_clean_interval=1).start()
    wait_pruned_to(cache, daemon, images[10:])

    if breakage == 'invalid value':
        daemon.configure(image_cache_max_size=-1, cache_prune_interval=1)
    else:
        with open(daemon.config_path, 'a') as f:
            f.write('\n[api\n')
    daemon.send_signal(signal.SIGHUP)
    wait_reload_refused(daemon)

    daemon.wait_ready()
    # Still pruning, to the limit it had before the SIGHUP.
    # Written now, as glance-api writes: a running prune that sees a file
    # before its record leaves it alone for the in-flight grace.
    newer = [cache.add_image(last_accessed=time.time() - 100 + i,
                             mtime=time.time()) for i in range(5)]
    wait_pruned_to(cache, daemon, images[15:] + newer)
    assert daemon.process.poll() is None
    if breakage == 'invalid value':
        assert 'Refusing the changed configuration' in daemon.log()


def wait_reload_refused(daemon):
    """Poll until the master has dealt with a SIGHUP's broken files."""
    processes.wait_for(
        lambda: any(marker in daemon.log() for marker in (
            'Refusing the changed configuration',
            'Exception raised during reload hooks')),
        'the master to refuse the broken configuration',
        diagnostics=daemon.diagnostics)


def test_sighup_refusal_is_one_clear_log_line(cache, daemons):
    """An unparsable file on SIGHUP is refused with a message, no trace."""
    daemon = daemons().start()
    with open(daemon.config_path, 'a') as f:
        f.write('\n[api\n')

    daemon.send_signal(signal.SIGHUP)
    wait_reload_refused(daemon)

    daemon.wait_ready()
    assert 'Refusing the changed configuration' in daemon.log()
    assert 'Traceback' not in daemon.log()


def test_sigterm_in_the_middle_of_a_prune(cache, daemons):
    """A stop lands between two batches: files and records still agree."""
    # Enough that the prune cannot end between two polls on a fast disk.
    images = cache.add_images(20000, size=1)
    daemon = daemons(image_cache_max_size=0, cache_prune_interval=3600,
                     cache_clean_interval=0)
    daemon.start()
    processes.wait_for(lambda: len(cache.images()) < len(images),
                       'the prune to start', interval=0.01,
                       diagnostics=daemon.diagnostics)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.process.wait(60) == 0, daemon.diagnostics()

    left = cache.images()
    assert left, 'the prune ended before SIGTERM; use a larger cache'
    assert set(cache.rows()) == left
    # Evictions went in LRU order: what is left is the most recent.
    assert left == set(images[len(images) - len(left):])


def test_sigterm_stops_cleanly(cache, daemons):
    """SIGTERM stops the master and its worker with exit status 0."""
    daemon = daemons().start()
    workers = processes.wait_for(daemon.workers, 'a forked worker')

    daemon.send_signal(signal.SIGTERM)
    try:
        status = daemon.process.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail('cache-maint did not exit on SIGTERM\n%s'
                    % daemon.diagnostics())
    assert status == 0, daemon.diagnostics()
    processes.wait_for(
        lambda: not any(processes.is_alive(pid) for pid in workers),
        'the worker to exit')


def test_sigterm_while_a_request_waits_for_a_lock(cache, daemons):
    """A stop wakes a request waiting on a lock and answers it."""
    daemon = daemons(cache_prune_interval=0, cache_clean_interval=0,
                     graceful_shutdown_timeout=5,
                     api={'task_wait_timeout': processes.DEADLINE})
    lock = lockutils.external_lock('glance-cache-prune', lock_path=cache.path)

    with futures.ThreadPoolExecutor(max_workers=1) as pool, lock:
        daemon.start()
        pending = pool.submit(daemon.request, 'POST', '/v2/cache/prune',
                              token='admin')
        with pytest.raises(futures.TimeoutError):
            pending.result(timeout=1)
        daemon.send_signal(signal.SIGTERM)
        status = daemon.process.wait(60)
        try:
            response = pending.result(timeout=processes.DEADLINE)
        except Exception as e:
            response = e

    assert status == 0
    assert 'Graceful shutdown timeout' not in daemon.log()
    assert getattr(response, 'status_code', 0) >= 400, response
    assert response.json()['error']


def _bad_configs(tmp_path):
    """(option named in stderr, [DEFAULT] options, [api] options)."""
    return {
        'missing image_cache_dir': (
            'image_cache_dir', {'image_cache_dir': None}, {}),
        'negative image_cache_max_size': (
            'image_cache_max_size', {'image_cache_max_size': -1}, {}),
        'nonexistent cache dir': (
            'image_cache_dir',
            {'image_cache_dir': str(tmp_path / 'no' / 'such' / 'dir')}, {}),
        'unknown image_cache_driver': (
            'image_cache_driver', {'image_cache_driver': 'memcache'}, {}),
        'noauth2 beyond loopback': (
            'allow_insecure_noauth', {}, {'bind_host': '0.0.0.0'}),
    }


@pytest.mark.parametrize('case', [
    'missing image_cache_dir', 'negative image_cache_max_size',
    'nonexistent cache dir', 'unknown image_cache_driver',
    'noauth2 beyond loopback'])
def test_bad_config_fails_fast(cache, tmp_path, case):
    """A configuration that cannot work stops the start, naming why."""
    option, default, api = _bad_configs(tmp_path)[case]
    options = {'image_cache_dir': cache.path, 'image_cache_driver': 'sqlite',
               'cache_prune_interval': 1, 'cache_clean_interval': 1}
    options.update(default)
    options = {k: v for k, v in options.items() if v is not None}
    api_options = {'bind_host': '127.0.0.1',
                   'bind_port': processes.free_port(),
                   'auth_strategy': 'noauth2'}
    api_options.update(api)
    config = settings.write_config(tmp_path / 'bad.conf',
                                   {'DEFAULT': options, 'api': api_options})

    result = processes.run_script('cache-maint', ['--config-file', config])

    assert result.returncode != 0
    assert option in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    assert not os.path.exists(tmp_path / 'no')


def test_failing_run_does_not_kill_the_service(cache, daemons, tmp_path):
    """A corrupt db fails runs, not the service; a repaired db is pruned."""
    first = add_lru_images(cache, 5)
    daemon = daemons(image_cache_max_size=10 * KIB, cache_prune_interval=1,
                     cache_clean_interval=1).start()
    workers = processes.wait_for(daemon.workers, 'a forked worker')

    with open(cache.db_path, 'wb') as f:
        f.write(b'this is not an sqlite database\n' * 64)
    # Untracked now that the db is gone; an hour old, so prunable at once.
    later = [cache.add_image(tracked=False) for _ in range(15)]
    images = first + later

    response = daemon.request('POST', '/v2/cache/prune', token='admin')
    assert 500 <= response.status_code < 600, response.text
    assert response.headers['Content-Type'].startswith('application/json')
    error = response.json()['error']
    assert error['code'] == response.status_code
    assert error['message']
    assert 'Traceback' not in response.text
    assert str(tmp_path) not in response.text
    assert 'cache.db' not in response.text

    processes.wait_for(
        lambda: any('ERROR' in line and 'Prune run (periodic) failed' in line
                    and 'not a database' in line
                    for line in daemon.log().splitlines()),
        'the failing periodic prune to be logged with its cause',
        diagnostics=daemon.diagnostics)
    assert daemon.request('GET', '/versions').status_code == 200
    assert cache.images() == set(images), 'a failing prune removed files'
    assert daemon.workers() == workers, 'the worker was replaced'

    past = time.time() - 10000
    caches.write_sqlite_db(
        cache.db_path,
        [plans.Image(image_id, KIB, past + 10 * i, past + 10 * i)
         for i, image_id in enumerate(images)])
    wait_pruned_to(cache, daemon, images[10:])

    assert daemon.request('GET', '/versions').status_code == 200
    assert daemon.workers() == workers
    response = daemon.request('POST', '/v2/cache/prune', token='admin')
    assert response.status_code == 200, response.text
    assert json.loads(response.text) == {'total_files_pruned': 0,
                                         'total_bytes_pruned': 0}
