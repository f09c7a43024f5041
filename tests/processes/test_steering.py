"""Seeing and steering deletions on the real service, with every driver:
a dry run's list is what the next prune evicts, pinned images and images
another process holds open survive it, and the pins, the record of runs
(``cache-maint-manage`` runs included) and the status survive a restart
and a reload.
"""

import json
import os
import signal
import time

import pytest

from tests.support import caches
from tests.support import databases
from tests.support import processes
from tests.support import running

KIB = caches.KIB


@pytest.fixture(params=caches.KINDS)
def any_cache(request, tmp_path):
    """An empty cache of every kind, its database a scratch one."""
    url = None
    if request.param in ('postgresql', 'mysql'):
        with databases.scratch_database(request.param) as url:
            built = caches.make(request.param, tmp_path / 'cache', url)
            yield built
            built.close()
        return
    built = caches.make(request.param, tmp_path / 'cache', url)
    yield built
    if hasattr(built, 'close'):
        built.close()


def start(workdir, cache, **options):
    options.setdefault('cache_prune_interval', 0)
    options.setdefault('cache_clean_interval', 0)
    os.makedirs(workdir, exist_ok=True)
    return running.Daemon.for_cache(workdir, cache, **options).start()


def admin(daemon, method, path, **kwargs):
    response = daemon.request(method, path, token='admin', **kwargs)
    assert response.status_code < 300, response.text
    return response


def test_dry_run_pins_and_readers_and_what_survives_a_restart(
        any_cache, tmp_path):
    now = time.time()
    ids = [any_cache.add_image(size=KIB, last_accessed=now - 1000 + i)
           for i in range(8)]
    workdir = tmp_path / 'daemon'
    daemon = start(workdir, any_cache, image_cache_max_size=3 * KIB)
    reader = None
    try:
        assert admin(daemon, 'PUT', '/v2/cache/pins/%s' % ids[0],
                     json={'note': 'golden'}).status_code == 201
        reader = processes.Reader(os.path.join(any_cache.path, ids[1]))
        preview = admin(daemon, 'POST', '/v2/cache/prune?dry_run=true').json()
        assert [(i['image_id'], i['reason']) for i in preview['images']] == [
            (ids[0], 'pinned'), (ids[1], 'in_use')] + [
            (image_id, 'size') for image_id in ids[2:7]]
        assert any_cache.images() == set(ids)

        pruned = admin(daemon, 'POST', '/v2/cache/prune').json()
        assert pruned['total_files_pruned'] == 5
        run, = daemon.runs('prune')
        assert run['removed'] == [i['image_id'] for i in preview['images']
                                  if i['reason'] == 'size']
        assert (run['skipped_pinned'], run['skipped_in_use']) == (1, 1)
        assert any_cache.images() == {ids[0], ids[1], ids[7]}
        assert reader.finish()      # read whole, while the prune ran

        # A run and a pin from the command line, beside the service.
        extra = caches.new_id()
        result = running.manage(daemon.config_path, 'pin', extra)
        assert result.returncode == 0, result.stderr
        result = running.manage(daemon.config_path, 'clean')
        assert result.returncode == 0, result.stderr
    finally:
        if reader is not None:
            reader.close()
        daemon.stop()

    again = start(workdir / 'again', any_cache,
                  image_cache_max_size=3 * KIB)
    try:
        runs = again.runs()
        assert [(r['task'], r['trigger']) for r in runs] == [
            ('prune', 'API'), ('clean', 'command line')]
        pins = admin(again, 'GET', '/v2/cache/pins').json()['pins']
        assert {p['image_id']: p['note'] for p in pins} == {
            ids[0]: 'golden', extra: ''}
        status = admin(again, 'GET', '/v2/cache/status').json()
        assert status['tasks']['prune']['last_run']['trigger'] == 'API'
        assert status['tasks']['clean']['last_run']['trigger'] == \
            'command line'
        assert status['cache']['pins'] == 2
        assert status['cache']['images'] == 3
        # The pin still holds for the new service.
        admin(again, 'POST', '/v2/cache/prune')
        assert ids[0] in any_cache.images()
    finally:
        again.stop()


def test_status_schedule_and_a_reload(cache, daemons):
    ids = [cache.add_image(size=KIB, last_accessed=1000.0 + i)
           for i in range(4)]
    daemon = daemons(image_cache_max_size=100 * KIB,
                     cache_prune_interval=3600, cache_clean_interval=0)
    daemon.add_sections({'prune': {'watch': 'true'}})
    started = time.time()
    daemon.start()
    processes.wait_for(lambda: daemon.runs('prune'), 'the first prune',
                       diagnostics=daemon.diagnostics)
    status = admin(daemon, 'GET', '/v2/cache/status').json()
    prune = status['tasks']['prune']
    assert prune['interval'] == 3600
    assert started + 3600 - 5 <= prune['next_run'] <= time.time() + 3600
    assert prune['last_run']['trigger'] == 'periodic'
    assert status['tasks']['clean'] == {'interval': 0, 'last_run': None,
                                        'next_run': None}
    assert status['watcher'] == {'enabled': True, 'active': True}
    assert status['service']['running'] is True

    admin(daemon, 'PUT', '/v2/cache/pins/%s' % ids[0])
    runs_before = daemon.runs()
    workers = daemon.workers()
    daemon.send_signal(signal.SIGHUP)
    processes.wait_for(lambda: daemon.workers() and
                       daemon.workers() != workers, 'a new worker',
                       diagnostics=daemon.diagnostics)
    daemon.wait_ready()
    pins = admin(daemon, 'GET', '/v2/cache/pins').json()['pins']
    assert [p['image_id'] for p in pins] == [ids[0]]
    runs_after = daemon.runs()
    assert runs_after[:len(runs_before)] == runs_before

    # The command line sees the service running and its schedule.
    result = running.manage(daemon.config_path, 'status', '--format',
                            'json')
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document['service']['running'] is True
    assert document['tasks']['prune']['next_run']
    assert document['cache']['pins'] == 1
    daemon.stop()
    document = json.loads(running.manage(daemon.config_path, 'status',
                                         '--format', 'json').stdout)
    assert document['service']['running'] is False
    assert document['tasks']['prune']['next_run'] is None
    assert document['tasks']['prune']['last_run']['trigger'] == 'periodic'
