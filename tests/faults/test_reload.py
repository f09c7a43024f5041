"""Reloads that once wedged or lied (issue 11, items 5 and 6, and SIGHUP).

Each SIGHUP goes to the real launcher. A reload either applies or is
refused, within a bounded time, with one line saying why; the running
configuration goes on serving; SIGTERM always stops the service; and the
API's socket outlives every reload, refused or not.
"""

import contextlib
import os
import signal
import socket
import threading
import time

import requests

from tests.support import caches
from tests.support import processes
from tests.support import rawhttp
from tests.support import running

REFUSED = 'Refusing the changed configuration files'


def reload_and_wait(daemon, needle):
    """SIGHUP the launcher; return the log line containing ``needle``.

    Returns once the worker forked after it answers: cotyledon ignores a
    SIGHUP that comes while it passes the last one on to its workers.
    """
    seen = daemon.log().count(needle)
    workers = daemon.workers()
    daemon.send_signal(signal.SIGHUP)
    processes.wait_for(lambda: daemon.log().count(needle) > seen,
                       'the launcher to log %r' % needle, timeout=90,
                       diagnostics=daemon.diagnostics)
    processes.wait_for(lambda: daemon.workers() - workers
                       and rawhttp.answers(daemon.port),
                       'a new worker to answer',
                       diagnostics=daemon.diagnostics)
    return [line for line in daemon.log().splitlines()
            if needle in line][-1]


def stops_on_sigterm(daemon):
    daemon.send_signal(signal.SIGTERM)
    assert daemon.process.wait(processes.DEADLINE) == 0


def limit_in_force(daemon, cache):
    """The prune limit the running worker applies, seen through a prune."""
    response = daemon.request('POST', '/v2/cache/prune', token='admin')
    assert response.status_code == 200, response.text
    return response.json()


def test_a_bad_value_of_a_command_line_option_is_refused(tmp_path):
    """``debug = maybe`` once made the launcher wait for itself for ever."""
    cache = caches.SqliteCache(tmp_path / 'cache')
    for i in range(4):
        cache.add_image(last_accessed=1000.0 + i)
    daemon = running.Daemon(tmp_path, cache.path, cache_prune_interval=0,
                            cache_clean_interval=0,
                            image_cache_max_size=100 * caches.KIB).start()
    try:
        daemon.configure(cache_prune_interval=0, cache_clean_interval=0,
                         image_cache_max_size=0, debug='maybe')
        line = reload_and_wait(daemon, REFUSED)
        assert "invalid value 'maybe' for [DEFAULT] debug in %s" % (
            daemon.config_path) in line, line
        # Still serving, with the limit it had: nothing to prune.
        assert limit_in_force(daemon, cache)['total_files_pruned'] == 0
        # The launcher still answers signals: a good reload applies.
        daemon.configure(cache_prune_interval=0, cache_clean_interval=0,
                         image_cache_max_size=0)
        reload_and_wait(daemon, 'Reloaded the configuration files')
        processes.wait_for(lambda: rawhttp.answers(daemon.port),
                           'the new worker')
        assert limit_in_force(daemon, cache)['total_files_pruned'] == 4
        stops_on_sigterm(daemon)
    finally:
        daemon.stop()


class BlackHole:
    """A TCP server that accepts connections and never says a word."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self):
        self.listener.close()
        for sock in self.accepted:
            sock.close()


def test_a_database_that_never_answers_is_refused_in_bounded_time(
        tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    glance_db = tmp_path / 'glance.sqlite'
    options = dict(image_cache_driver='centralized_db',
                   worker_self_reference_url='http://node-1:9292',
                   cache_prune_interval=0, cache_clean_interval=0)
    daemon = running.Daemon(tmp_path, cache.path, **options)
    daemon.add_sections({'database': {
        'connection': 'sqlite:///%s' % glance_db}})
    result = running.manage(daemon.config_path, 'db-sync')
    assert result.returncode == 0, result.stderr
    hole = BlackHole()
    try:
        daemon.start()
        daemon.configure(**options)
        daemon.add_sections({'database': {
            'connection': 'postgresql://glance@127.0.0.1:%d/glance'
                          % hole.port}})
        began = time.monotonic()
        line = reload_and_wait(daemon, REFUSED)
        assert '[database] connection' in line, line
        assert time.monotonic() - began < 120
        assert hole.accepted, 'the check never reached the database'
        response = daemon.request('GET', '/v2/cache', token='admin')
        assert response.status_code == 200, response.text
        stops_on_sigterm(daemon)
    finally:
        hole.close()
        daemon.stop()


@contextlib.contextmanager
def with_policy_file(tmp_path):
    """A daemon reloaded onto a policy file of its own: (daemon, path)."""
    cache = caches.SqliteCache(tmp_path / 'cache')
    policy = tmp_path / 'policy.yaml'
    policy.write_text('"cache_list": "role:admin"\n')
    with running.daemon(tmp_path, cache.path) as daemon:
        daemon.configure(cache_prune_interval=0, cache_clean_interval=0)
        daemon.add_sections({'oslo_policy': {'policy_file': policy}})
        reload_and_wait(daemon, 'Reloaded the configuration files')
        yield daemon, policy


def test_a_broken_policy_file_on_reload_is_refused(tmp_path):
    with with_policy_file(tmp_path) as (daemon, policy):
        policy.write_text('"cache_list": [unclosed\n')
        line = reload_and_wait(daemon, REFUSED)
        assert 'policy_file = %s is not usable' % policy in line, line
        assert '\n' not in line


def test_a_bad_middleware_option_on_reload_is_refused(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    with running.daemon(tmp_path, cache.path) as daemon:
        daemon.configure(cache_prune_interval=0, cache_clean_interval=0)
        daemon.add_sections({'oslo_middleware': {
            'max_request_body_size': 'abc'}})
        line = reload_and_wait(daemon, REFUSED)
        assert ("invalid value 'abc' for [oslo_middleware] "
                'max_request_body_size') in line, line
        for path in ('/healthcheck', '/versions'):
            assert daemon.request('GET', path).status_code == 200


def test_the_api_socket_outlives_every_reload(tmp_path):
    """New connections during reloads wait in the backlog, none refused."""
    cache = caches.SqliteCache(tmp_path / 'cache')
    with running.daemon(tmp_path, cache.path) as daemon:
        stop = threading.Event()
        outcomes = []

        def probe():
            while not stop.is_set():
                try:
                    # A new connection each time: Connection: close.
                    response = requests.get(
                        daemon.url('/versions'), timeout=processes.DEADLINE,
                        headers={'Connection': 'close'})
                    outcomes.append(response.status_code)
                except requests.RequestException as e:
                    outcomes.append(type(e).__name__)

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            for round_ in range(3):
                reload_and_wait(daemon, 'Reloaded the configuration files')
                daemon.configure(debug='maybe')
                reload_and_wait(daemon, REFUSED)
                daemon.configure(cache_prune_interval=0,
                                 cache_clean_interval=0)
            time.sleep(1)
        finally:
            stop.set()
            prober.join(processes.DEADLINE)
        assert outcomes and set(outcomes) == {200}, (
            [o for o in outcomes if o != 200][:10])


def test_a_policy_file_broken_while_running_keeps_its_rules(tmp_path):
    """No reload: oslo.policy reads a changed file on its own."""
    with with_policy_file(tmp_path) as (daemon, policy):
        assert daemon.request('GET', '/v2/cache',
                              token='admin').status_code == 200
        policy.write_text('"cache_list": [unclosed\n')
        future = os.stat(policy).st_mtime + 5
        os.utime(policy, (future, future))
        for token, status in (('admin', 200), ('member', 403)) * 2:
            response = daemon.request('GET', '/v2/cache', token=token)
            assert response.status_code == status, response.text
        assert 'Cannot load the policy rules' in daemon.log()
        assert 'Traceback' not in daemon.log()
