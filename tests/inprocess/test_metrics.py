"""The metrics: an observer over a real cache and a real state, served.

The oracle is the disk, read here file by file, and the runs the state
holds; the exposition is parsed with prometheus_client's own parser.
"""

import logging
import os
import shutil
import socket
import threading
import time

import prometheus_client
import pytest

from cache_maint.api import server
from cache_maint import cache as cm_cache
from cache_maint.cmd import preflight
from cache_maint import exception
from cache_maint import metrics
from cache_maint.metrics import exposition
from cache_maint.metrics import observer
from cache_maint import runs
from cache_maint import state as cm_state
from cache_maint import version

from tests.support import caches
from tests.support import scrape

KIB = caches.KIB
parse = scrape.parse
value = scrape.value

#: Every name a scrape must have, as Prometheus stores it.
REQUIRED = {
    'glance_cache_size_bytes', 'glance_cache_files',
    'glance_cache_max_size_bytes', 'glance_cache_filesystem_avail_bytes',
    'glance_cache_high_watermark_bytes', 'glance_cache_low_watermark_bytes',
    'glance_cache_pins',
    'glance_cache_evictions_total', 'glance_cache_evicted_bytes_total',
    'glance_cache_fills_total', 'glance_cache_filled_bytes_total',
    'glance_cache_refetches_total', 'glance_cache_refetched_bytes_total',
    'glance_cache_maint_runs_total',
    'glance_cache_maint_run_duration_seconds_bucket',
    'glance_cache_maint_run_duration_seconds_count',
    'glance_cache_maint_run_duration_seconds_sum',
    'glance_cache_maint_last_success_timestamp_seconds',
    'glance_cache_maint_build_info',
}


class Site:
    """A Glance sqlite cache, its Cache, an Observer and its registry."""

    def __init__(self, tmp_path, **overrides):
        self.files = caches.SqliteCache(tmp_path / 'cache')
        overrides.setdefault('image_cache_max_size', 4 * KIB)
        self.conf = self.files.conf(
            metrics__bind_port=0, cache_prune_interval=0,
            cache_clean_interval=0,
            oslo_concurrency__lock_path=str(tmp_path / 'locks'),
            **overrides)
        self.cache = cm_cache.Cache.from_conf(self.conf)
        self.cache.setup()
        self.observer = observer.Observer(self.conf, self.cache)
        self.registry = exposition.make_registry(self.conf, self.observer)

    def scrape(self):
        """The registry's exposition, parsed (no HTTP)."""
        return parse(prometheus_client.generate_latest(
            self.registry).decode('utf-8'))

    def prune(self):
        return runs.TaskRunner(self.conf, self.cache).prune()

    def close(self):
        self.cache.close()


@pytest.fixture
def site(tmp_path):
    made = Site(tmp_path)
    yield made
    made.close()


@pytest.fixture
def served(site):
    """The site's registry behind the real metrics server, on port 0."""
    http_server = server.MetricsServer(site.conf,
                                       exposition.make_app(site.registry))
    http_server.start()
    host, port = http_server.address
    yield site, 'http://%s:%d' % (host, port)
    http_server.stop()


def test_the_gauges_agree_with_the_disk(site):
    files = site.files
    for i in range(5):
        files.add_image(size=(i + 1) * KIB, last_accessed=1000.0 + i)
    files.add_image(size=3 * KIB, tracked=False)
    files.add_invalid(size=100)
    files.add_invalid(size=200)
    files.add_incomplete(size=300)
    files.queue()
    files.queue()
    site.cache.state.pin(caches.new_id())

    site.observer.look()
    found = site.scrape()

    assert scrape.usage(found) == files.usage_by_state()
    assert scrape.usage(found)['cached'] == (6, 18 * KIB)
    assert value(found, 'glance_cache_max_size_bytes') == 4 * KIB
    assert value(found, 'glance_cache_high_watermark_bytes') == 4 * KIB
    assert value(found, 'glance_cache_low_watermark_bytes') == 4 * KIB
    assert value(found, 'glance_cache_pins') == 1
    fs = os.statvfs(files.path)
    assert 0 < value(found, 'glance_cache_filesystem_avail_bytes') <= (
        fs.f_blocks * fs.f_frsize)
    # What was there at the first look is the baseline, not fills.
    assert value(found, 'glance_cache_fills_total') == 0


@pytest.mark.parametrize('looked_between', [False, True],
                         ids=['recached-before-a-look',
                              'a-look-saw-it-gone'])
def test_a_prune_then_a_recache_is_one_fill_and_one_refetch(
        site, looked_between):
    files = site.files
    for i in range(6):
        files.add_image(size=KIB, last_accessed=1000.0 + i)
    site.observer.look()

    result = site.prune()
    evicted = result.removed_ids()
    assert len(evicted) == 2
    if looked_between:
        site.observer.look()
        assert site.scrape()['glance_cache_fills_total'] == {
            frozenset(): 0}
    # glance-api caches one of them again: written, then renamed in place.
    again = evicted[0]
    files.land(size=3 * KIB, image_id=again)
    # And an image never cached here before: a fill, no refetch.
    files.land(size=2 * KIB)
    site.observer.look()
    found = site.scrape()

    assert value(found, 'glance_cache_fills_total') == 2
    assert value(found, 'glance_cache_filled_bytes_total') == 5 * KIB
    assert value(found, 'glance_cache_refetches_total') == 1
    assert value(found, 'glance_cache_refetched_bytes_total') == 3 * KIB
    assert value(found, 'glance_cache_evictions_total', reason='size') == 2
    assert value(found, 'glance_cache_evicted_bytes_total',
                 reason='size') == 2 * KIB
    assert scrape.usage(found) == files.usage_by_state()

    # Each is counted once: a later look (a scan) adds nothing.
    files.add_invalid()
    site.observer.look()
    again_found = site.scrape()
    for name in ('glance_cache_fills_total', 'glance_cache_filled_bytes_total',
                 'glance_cache_refetches_total',
                 'glance_cache_refetched_bytes_total',
                 'glance_cache_evictions_total'):
        assert again_found[name] == found[name], name
    assert value(again_found, 'glance_cache_files', state='invalid') == 1


def test_runs_recorded_by_another_process_are_counted(site, tmp_path):
    state_dir = site.cache.state.directory
    # cache-maint-manage: a store of its own on the same directory.
    other = cm_state.StateStore(state_dir)
    before = runs.RunRecord(
        task='clean', trigger='cli', started_at=500.0, finished_at=501.0,
        outcome='succeeded').to_dict()
    other.add_run(before)
    site.observer.look()
    found = site.scrape()
    # What ran before this process looked is not counted; when it last
    # succeeded is known all the same (it survives a restart).
    assert value(found, 'glance_cache_maint_runs_total', task='clean',
                 outcome='succeeded') == 0
    assert value(found, 'glance_cache_maint_last_success_timestamp_seconds',
                 task='clean') == 501.0

    other.add_run(runs.RunRecord(
        task='prune', trigger='cli', started_at=1000.0, finished_at=1002.5,
        outcome='succeeded',
        by_reason={'size': {'files': 3, 'bytes': 3 * KIB},
                   'idle': {'files': 1, 'bytes': 10}}).to_dict())
    other.add_run(runs.RunRecord(
        task='clean', trigger='cli', started_at=1003.0, finished_at=1003.0,
        outcome='failed', error='the cache directory is gone').to_dict())
    other.add_run(runs.RunRecord(
        task='prune', trigger='cli', started_at=1004.0, finished_at=1004.5,
        outcome='stopped',
        by_reason={'size': {'files': 1, 'bytes': KIB}}).to_dict())
    other.close()
    site.observer.look()
    found = site.scrape()

    expected = {('prune', 'succeeded'): 1, ('prune', 'stopped'): 1,
                ('clean', 'failed'): 1}
    for task in observer.TASKS:
        for outcome in observer.OUTCOMES:
            assert value(found, 'glance_cache_maint_runs_total', task=task,
                         outcome=outcome) == expected.get((task, outcome),
                                                          0), (task, outcome)
    assert value(found, 'glance_cache_evictions_total', reason='size') == 4
    assert value(found, 'glance_cache_evicted_bytes_total',
                 reason='size') == 4 * KIB
    assert value(found, 'glance_cache_evictions_total', reason='idle') == 1
    assert value(found, 'glance_cache_evicted_bytes_total',
                 reason='idle') == 10
    assert value(found, 'glance_cache_evictions_total', reason='stalled') == 0
    assert value(found, 'glance_cache_maint_last_success_timestamp_seconds',
                 task='prune') == 1002.5
    assert value(found, 'glance_cache_maint_last_success_timestamp_seconds',
                 task='clean') == 501.0
    duration = 'glance_cache_maint_run_duration_seconds'
    assert value(found, duration + '_count', task='prune') == 2
    assert value(found, duration + '_sum', task='prune') == 3.0
    assert value(found, duration + '_bucket', task='prune', le='1.0') == 1
    assert value(found, duration + '_bucket', task='prune', le='5.0') == 2
    assert value(found, duration + '_count', task='clean') == 1

    # Counted once: a look with nothing new changes no counter.
    site.observer.look()
    assert site.scrape()['glance_cache_maint_runs_total'] == found[
        'glance_cache_maint_runs_total']


def test_the_directory_is_scanned_only_when_it_changed(site):
    files = site.files
    files.add_image(size=KIB)
    partial = files.add_incomplete(size=100)
    site.cache.state.check()      # its directory is made: a change
    # Directories last changed an hour ago: their mtimes can be trusted.
    hour_ago = time.time() - 3600
    for sub in ('incomplete', 'invalid', 'queue', ''):
        os.utime(os.path.join(files.path, sub), (hour_ago, hour_ago))
    site.observer.look()
    assert value(site.scrape(), 'glance_cache_size_bytes',
                 state='incomplete') == 100

    # A download growing in incomplete/ changes no directory: not scanned.
    with open(os.path.join(files.path, 'incomplete', partial), 'ab') as f:
        f.write(b'x' * 400)
    site.observer.look()
    assert value(site.scrape(), 'glance_cache_size_bytes',
                 state='incomplete') == 100

    # A file landing in invalid/ does: the next look scans everything.
    files.add_invalid(size=7)
    site.observer.look()
    found = site.scrape()
    assert value(found, 'glance_cache_size_bytes', state='incomplete') == 500
    assert scrape.usage(found) == files.usage_by_state()


def test_a_scrape_is_served_the_snapshot_without_scanning(served, caplog):
    site, url = served
    files = site.files
    for _ in range(3):
        files.add_image(size=KIB)
    files.add_invalid(size=10)
    site.observer.look()
    status, _, body = scrape.request(url + '/metrics')
    assert status == 200
    before = parse(body.decode('utf-8'))
    assert scrape.usage(before) == files.usage_by_state()

    shutil.rmtree(files.path)
    status, _, body = scrape.request(url + '/metrics')
    assert status == 200
    after = parse(body.decode('utf-8'))
    for name in ('glance_cache_size_bytes', 'glance_cache_files',
                 'glance_cache_filesystem_avail_bytes'):
        assert after[name] == before[name], name

    # A look at a cache that is gone raises nothing, keeps the values, and
    # says so once for the whole streak.
    caplog.set_level(logging.INFO, logger='cache_maint.metrics')
    for _ in range(3):
        site.observer.look()
    status, _, body = scrape.request(url + '/metrics')
    assert parse(body.decode('utf-8'))['glance_cache_files'] == before[
        'glance_cache_files']
    # (The state, inside the removed directory, may fail too: its own
    # warning, once.)
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
    assert len([w for w in warnings if 'of the cache are' in w]) == 1, (
        caplog.text)
    assert len(warnings) <= 2, caplog.text


def test_the_exposition_parses_and_has_every_required_name(site):
    files = site.files
    image_ids = [files.add_image(size=KIB) for _ in range(3)]
    site.prune()      # so that a task has a last success to show
    site.observer.look()
    text = prometheus_client.generate_latest(site.registry).decode('utf-8')

    found = parse(text)
    assert REQUIRED <= set(found), REQUIRED - set(found)
    # A registry of its own, with the process's metrics and no _created.
    assert 'process_resident_memory_bytes' in found
    assert not [name for name in found if name.endswith('_created')]
    assert 'python_gc_objects_collected_total' not in found
    # Bounded labels: never an image id.
    labels = {v for samples in found.values() for items in samples
              for _, v in items}
    assert not labels & set(image_ids)
    assert found['glance_cache_maint_build_info'] == {
        frozenset({('version', version.version_string()),
                   ('driver', 'sqlite')}): 1.0}
    assert version.version_string() != 'unknown'
    for reason in observer.REASONS:
        assert value(found, 'glance_cache_evictions_total',
                     reason=reason) == 0


def test_only_get_and_head_of_metrics_are_served(served):
    site, url = served
    site.files.add_image(size=KIB)
    site.observer.look()

    status, headers, body = scrape.request(url + '/metrics')
    assert status == 200
    assert headers['Content-Type'].startswith('text/plain')
    assert b'glance_cache_files{state="cached"} 1.0' in body

    status, headers, head_body = scrape.request(url + '/metrics', 'HEAD')
    assert status == 200 and head_body == b''
    assert int(headers['Content-Length']) > 0

    for method in ('POST', 'PUT', 'DELETE'):
        status, headers, _ = scrape.request(url + '/metrics', method)
        assert status == 405, method
        assert headers['Allow'] == 'GET, HEAD'
    for path in ('/', '/v2/cache', '/metrics/', '/healthcheck', '/versions'):
        assert scrape.request(url + path)[0] == 404, path


def test_the_exporter_stops_without_waiting_for_its_next_look(site):
    site.conf.set_override('refresh_interval', 3600, group='metrics')
    exporter = metrics.Exporter(site.conf, site.cache).start()
    deadline = time.monotonic() + 30
    while exporter.observer.snapshot.usage is None:
        assert time.monotonic() < deadline, 'no first look'
        time.sleep(0.05)
    exporter.stop()
    # Its thread ended: it did not sleep out the hour (stop waits for it
    # only STOP_WAIT seconds).
    assert not [thread for thread in threading.enumerate()
                if thread.name == 'metrics-observer']


def test_a_metrics_port_in_use_is_refused_naming_the_option(site):
    site.conf.set_override('bind_port', 0, group='api')
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        site.conf.set_override('bind_port', taken.getsockname()[1],
                               group='metrics')
        with pytest.raises(exception.ConfigError,
                           match=r'\[metrics\] bind_host 127\.0\.0\.1, '
                                 r'bind_port \d+'):
            preflight.claim(site.conf)


def test_reloads_bind_move_and_close_the_metrics_listener_in_place(site):
    conf = site.conf
    conf.set_override('bind_port', 0, group='api')
    conf.set_override('enabled', False, group='metrics')
    claims = preflight.claim(conf)
    try:
        # Off: nothing bound, but a listener the service can keep.
        held = claims.metrics_listener
        assert not held.bound

        def reload():
            claims.take_over(preflight.claim(conf, claims))

        conf.set_override('enabled', True, group='metrics')
        reload()
        assert claims.metrics_listener is held and held.bound
        first = held.address

        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        conf.set_override('bind_port', port, group='metrics')
        reload()
        assert claims.metrics_listener is held
        assert held.address == ('127.0.0.1', port) != first
        with socket.create_connection(('127.0.0.1', port), timeout=5):
            pass
        reload()        # the same address: the same socket
        assert held.address == ('127.0.0.1', port)

        conf.set_override('enabled', False, group='metrics')
        reload()
        assert not held.bound
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(('127.0.0.1', port), timeout=5).close()
    finally:
        claims.release()
