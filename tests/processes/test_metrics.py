"""The real ``cache-maint`` serving metrics on a listener of its own.

Scraped over real HTTP with urllib, no token; the oracle is the cache on
disk, read here file by file.
"""

import os
import shutil
import signal
import socket
import urllib.error
import urllib.request

from tests.support import caches
from tests.support import processes
from tests.support import scrape
from tests.support import settings

KIB = caches.KIB
parse = scrape.parse
sample = scrape.value


def http(url, method='GET', token=None):
    """(status, body) of one request; an error status is an answer too."""
    status, _, body = scrape.request(url, method, token)
    return status, body


class Metrics:
    """The metrics listener of one daemon."""

    def __init__(self, port):
        self.port = port

    def url(self, path='/metrics'):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def scrape(self):
        """The parsed exposition; None if the port does not answer."""
        try:
            status, body = http(self.url())
        except (urllib.error.URLError, ConnectionError):
            return None
        assert status == 200, body
        return parse(body)


def metrics_daemon(daemons, **options):
    """A daemon with metrics on a free port, looked at every second.

    Its periodic runs are off unless ``options`` say otherwise.
    """
    port = processes.free_port()
    options.setdefault('cache_prune_interval', 0)
    options.setdefault('cache_clean_interval', 0)
    daemon = daemons(sections={'metrics': {'bind_port': port,
                                           'refresh_interval': 1}},
                     **options)
    return daemon, Metrics(port)


def wait_metrics(daemon, metrics, what, predicate):
    """Poll the scrape until ``predicate(found)``; return that scrape."""
    seen = {}

    def check():
        found = metrics.scrape()
        seen['last'] = found
        return found if found is not None and predicate(found) else None

    return processes.wait_for(
        check, what, diagnostics=lambda: 'last scrape: %s\n%s' % (
            sorted((k, v) for k, v in (seen.get('last') or {}).items()
                   if k[0].startswith('glance_')), daemon.diagnostics()))


def agrees_with(cache):
    return lambda found: scrape.usage(found) == cache.usage_by_state()


def test_the_metrics_follow_a_prune_a_clean_and_a_recache(cache, daemons):
    images = [cache.add_image(size=KIB, last_accessed=1000.0 + i)
              for i in range(8)]
    daemon, metrics = metrics_daemon(daemons,
                                     image_cache_max_size=4 * KIB)
    daemon.start()
    found = wait_metrics(daemon, metrics, 'the metrics of 8 images',
                         agrees_with(cache))
    assert scrape.usage(found)['cached'] == (8, 8 * KIB)
    assert sample(found, 'glance_cache_max_size_bytes') == 4 * KIB

    status, body = http(daemon.url('/v2/cache/prune'), 'POST', 'admin')
    assert status == 200, body
    evicted = sorted(set(images) - cache.images())
    assert len(evicted) == 4
    found = wait_metrics(
        daemon, metrics, 'the prune counted',
        lambda found: sample(found, 'glance_cache_maint_runs_total',
                             task='prune', outcome='succeeded') == 1
        and agrees_with(cache)(found))
    assert sample(found, 'glance_cache_evictions_total', reason='size') == 4
    assert sample(found, 'glance_cache_evicted_bytes_total',
                  reason='size') == 4 * KIB
    assert sample(found, 'glance_cache_maint_run_duration_seconds_count',
                  task='prune') == 1
    pruned_at = sample(found,
                       'glance_cache_maint_last_success_timestamp_seconds',
                       task='prune')
    assert pruned_at == daemon.runs('prune')[-1]['finished_at']

    cache.add_invalid(size=100)
    cache.add_invalid(size=200)
    cache.add_incomplete(size=300, age=3600)     # stalled
    fresh = cache.add_incomplete(size=50)
    wait_metrics(daemon, metrics, 'the failed downloads seen',
                 agrees_with(cache))
    status, body = http(daemon.url('/v2/cache/clean'), 'POST', 'admin')
    assert status == 200, body
    assert cache.listdir('incomplete') == {fresh}
    found = wait_metrics(
        daemon, metrics, 'the clean counted',
        lambda found: sample(found, 'glance_cache_maint_runs_total',
                             task='clean', outcome='succeeded') == 1
        and agrees_with(cache)(found))
    assert sample(found, 'glance_cache_evictions_total', reason='invalid') == 2
    assert sample(found, 'glance_cache_evicted_bytes_total',
                  reason='invalid') == 300
    assert sample(found, 'glance_cache_evictions_total', reason='stalled') == 1
    assert sample(found, 'glance_cache_evicted_bytes_total',
                  reason='stalled') == 300
    assert scrape.usage(found)['invalid'] == (0, 0)
    assert scrape.usage(found)['incomplete'] == (1, 50)

    # glance-api caches an evicted image again, of another size this time.
    again = evicted[0]
    partial = os.path.join(cache.path, 'incomplete', again)
    with open(partial, 'wb') as f:
        f.write(b'x' * (3 * KIB))
    os.rename(partial, os.path.join(cache.path, again))
    found = wait_metrics(
        daemon, metrics, 'the re-cached image counted',
        lambda found: sample(found, 'glance_cache_fills_total') == 1
        and agrees_with(cache)(found))
    assert sample(found, 'glance_cache_filled_bytes_total') == 3 * KIB
    assert sample(found, 'glance_cache_refetches_total') == 1
    assert sample(found, 'glance_cache_refetched_bytes_total') == 3 * KIB
    assert scrape.usage(found)['cached'] == (5, 7 * KIB)
    assert daemon.process.poll() is None


def test_metrics_need_no_token_and_the_two_ports_stay_apart(cache, daemons):
    cache.add_image(size=KIB)
    daemon, metrics = metrics_daemon(daemons)
    daemon.start()
    wait_metrics(daemon, metrics, 'the first look', agrees_with(cache))

    status, body = http(metrics.url())           # no token at all
    assert status == 200
    assert b'glance_cache_maint_build_info{' in body
    assert http(metrics.url(), 'HEAD') == (200, b'')
    assert http(metrics.url(), 'POST')[0] == 405
    # The metrics port serves no API, whatever the token.
    for path in ('/v2/cache', '/v2/cache/prune', '/versions', '/'):
        assert http(metrics.url(path), token='admin')[0] == 404, path
    assert http(metrics.url('/v2/cache/prune'), 'POST', 'admin')[0] == 404
    # The API port serves no metrics: not to an admin (404), and without
    # a token nothing but discovery (401).
    assert http(daemon.url('/metrics'), token='admin')[0] == 404
    status, body = http(daemon.url('/metrics'))
    assert status == 401 and b'glance_cache' not in body
    assert cache.images()           # nothing was pruned by any of it


def test_metrics_survive_a_reload_and_follow_a_new_port(cache, daemons):
    images = [cache.add_image(size=KIB) for _ in range(3)]
    daemon, metrics = metrics_daemon(daemons)
    daemon.start()
    wait_metrics(daemon, metrics, 'the first look', agrees_with(cache))
    workers = daemon.workers()

    daemon.send_signal(signal.SIGHUP)
    processes.wait_for(lambda: daemon.workers() and not (
        workers & daemon.workers()), 'a new worker',
        diagnostics=daemon.diagnostics)
    cache.add_image(size=2 * KIB)
    wait_metrics(daemon, metrics, 'the new worker to serve the metrics',
                 agrees_with(cache))

    # A reload that moves the listener binds the new port, frees the old.
    old = metrics
    metrics = Metrics(processes.free_port())
    daemon.add_sections({'metrics': {'bind_port': metrics.port}})
    daemon.send_signal(signal.SIGHUP)
    os.unlink(os.path.join(cache.path, images[0]))
    wait_metrics(daemon, metrics, 'the metrics on the new port',
                 agrees_with(cache))
    processes.wait_for(lambda: old.scrape() is None,
                       'the old metrics port to be closed',
                       diagnostics=daemon.diagnostics)
    daemon.wait_ready()
    assert daemon.process.poll() is None


def test_metrics_off_bind_nothing(cache, daemons):
    port = processes.free_port()
    daemon = daemons(sections={'metrics': {'enabled': 'false',
                                           'bind_port': port}},
                     cache_prune_interval=0, cache_clean_interval=0)
    daemon.start()
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=5):
            connected = True
    except ConnectionRefusedError:
        connected = False
    assert not connected
    assert http(daemon.url('/versions'))[0] == 200


def test_a_metrics_port_in_use_refuses_the_start(cache, tmp_path):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = settings.write_config(tmp_path / 'busy.conf', {
            'DEFAULT': {'image_cache_dir': cache.path,
                        'image_cache_driver': 'sqlite'},
            'api': {'bind_host': '127.0.0.1',
                    'bind_port': processes.free_port(),
                    'auth_strategy': 'noauth2'},
            'metrics': {'bind_port': port}})
        shutil.rmtree(os.path.join(cache.path, 'queue'))

        result = processes.run_script('cache-maint', ['--config-file',
                                                      config])

    assert result.returncode == 1, result.stderr
    assert '[metrics] bind_host 127.0.0.1, bind_port %d' % port in (
        result.stderr), result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    # Refused before the cache was touched.
    assert not os.path.exists(os.path.join(cache.path, 'queue'))
