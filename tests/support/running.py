"""The real ``cache-maint`` and ``cache-maint-manage``, run as operators do.

``Daemon`` is one ``cache-maint`` process with its own config file and
log; ``manage`` runs ``cache-maint-manage`` to its end. Both read real
files and talk to the real servers; nothing is stubbed.
"""

import contextlib
import json
import os
import signal
import subprocess

import requests

from tests.support import processes
from tests.support import settings

DEADLINE = processes.DEADLINE


class Daemon:
    """One real ``cache-maint`` process with its config file and its log.

    The file holds [DEFAULT] ``options`` (over test-friendly defaults),
    [api] ``api`` (loopback, a free port, noauth2), [prune] ``watch =
    false``, [metrics] ``bind_port`` (a free port, ``metrics_port``) and
    any other ``sections``; ``config_files`` are read before it, as
    glance-api.conf is in production.
    """

    def __init__(self, workdir, cache_dir, api=None, sections=None,
                 config_files=(), **options):
        self.workdir = str(workdir)
        self.cache_dir = str(cache_dir)
        self.port = processes.free_port()
        # Metrics on a port of its own: daemons run side by side.
        self.metrics_port = processes.free_port()
        self.config_files = [str(path) for path in config_files]
        self.config_path = os.path.join(self.workdir, 'cache-maint.conf')
        self.log_path = os.path.join(self.workdir, 'cache-maint.log')
        self.stdout_path = os.path.join(self.workdir, 'stdout.txt')
        self.stderr_path = os.path.join(self.workdir, 'stderr.txt')
        self.sections = dict(sections or {})
        self.process = None
        self.configure(api=api, **options)

    @classmethod
    def for_cache(cls, workdir, cache, connection=None, **options):
        """A Daemon on a test cache, with its driver's own settings.

        ``connection`` replaces a centralized_db cache's database URL.
        """
        sections = settings.cache_sections(cache)
        default = sections.pop('DEFAULT')
        default.pop('image_cache_dir')
        default.update(options)
        if connection:
            sections['database'] = {'connection': connection}
        return cls(workdir, cache.path, sections=sections, **default)

    def configure(self, api=None, **options):
        """(Re)write the config file: [DEFAULT] ``options``, [api] ``api``."""
        default = {
            'image_cache_dir': self.cache_dir,
            'image_cache_driver': 'sqlite',
            'image_cache_max_size': 10 * 1024,
            'image_cache_stall_time': 60,
            'cache_prune_interval': 1,
            'cache_clean_interval': 1,
            'log_file': self.log_path,
            'debug': 'true',
        }
        default.update(options)
        api_options = {'bind_host': '127.0.0.1', 'bind_port': self.port,
                       'auth_strategy': 'noauth2'}
        api_options.update(api or {})
        # The watcher prunes on its own when images land; a test that
        # wants it turns it on (tests/processes/test_watch.py), the others
        # keep their prunes to the timer and the API.
        self._written = {'DEFAULT': default, 'api': api_options,
                         'prune': {'watch': 'false'},
                         'metrics': {'bind_port': self.metrics_port}}
        self._write()

    def add_sections(self, sections):
        """Add ``{section: {option: value}}`` to the config file."""
        for section, options in sections.items():
            self.sections.setdefault(section, {}).update(options)
        self._write()

    def _write(self):
        sections = dict(self._written)
        for section, options in self.sections.items():
            sections[section] = dict(sections.get(section, {}), **options)
        settings.write_config(self.config_path, sections)

    def start(self):
        """Start the service and wait until its API answers."""
        argv = [processes.console_script('cache-maint')]
        for path in self.config_files + [self.config_path]:
            argv += ['--config-file', path]
        with open(self.stdout_path, 'ab') as out, \
                open(self.stderr_path, 'ab') as err:
            # A session of its own: the SIGKILL fallback can then reach
            # the forked worker too, and nothing else.
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True)
        self.wait_ready()
        return self

    def url(self, path):
        """The URL of ``path`` on this daemon's API."""
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def wait_ready(self, timeout=DEADLINE):
        """Poll GET /versions until it answers 200."""
        processes.wait_for(
            lambda: processes.answers(self.process, self.url('/versions'),
                                      'cache-maint', self.diagnostics),
            'cache-maint to answer GET /versions', timeout=timeout,
            diagnostics=self.diagnostics)

    def request(self, method, path, token=None, **kwargs):
        """One HTTP request to the API, with X-Auth-Token if given."""
        headers = kwargs.pop('headers', {})
        if token is not None:
            headers['X-Auth-Token'] = token
        kwargs.setdefault('timeout', DEADLINE)
        return requests.request(method, self.url(path), headers=headers,
                                **kwargs)

    def post(self, task):
        """An admin's POST /v2/cache/{task}."""
        return self.request('POST', '/v2/cache/%s' % task, token='admin')

    def runs(self, task=None):
        """The service's own record of its runs (GET /v2/cache/runs)."""
        response = self.request('GET', '/v2/cache/runs', token='admin')
        assert response.status_code == 200, response.text
        return [run for run in response.json()['runs']
                if task is None or run['task'] == task]

    def send_signal(self, signum):
        """Signal the master process (the one the launcher runs in)."""
        self.process.send_signal(signum)

    def workers(self):
        """Pids of the worker processes the master has forked.

        Not the ``--check-config`` process a reload runs for a moment.
        """
        return {pid for pid in processes.child_pids(self.process.pid)
                if b'--check-config' not in processes.cmdline(pid)}

    @property
    def pids(self):
        """The master and its forked workers."""
        return [self.process.pid] + sorted(self.workers())

    def log(self):
        """The whole log file of the service so far."""
        return processes.read_tail(self.log_path, limit=10 ** 7)

    def log_lines(self, *needles):
        """Lines of the log containing every one of ``needles``."""
        return [line for line in self.log().splitlines()
                if all(needle in line for needle in needles)]

    def diagnostics(self):
        """Everything that helps understand a failure: stderr and log."""
        return ('--- stderr ---\n%s\n--- log (tail) ---\n%s'
                % (processes.read_tail(self.stderr_path),
                   processes.read_tail(self.log_path)))

    def stop(self):
        """SIGTERM the master; SIGKILL its whole session if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.kill9()

    def kill9(self):
        """SIGKILL the whole service, master and workers at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(DEADLINE)


@contextlib.contextmanager
def daemon(workdir, cache_dir, api=None, **options):
    """A started Daemon; periodic runs off unless ``options`` say so."""
    options.setdefault('cache_prune_interval', 0)
    options.setdefault('cache_clean_interval', 0)
    started = Daemon(workdir, cache_dir, api=api, **options)
    try:
        yield started.start()
    finally:
        started.stop()


def manage(config_path, *args):
    """Run ``cache-maint-manage --config-file config_path args...``."""
    return processes.run_script('cache-maint-manage',
                                ['--config-file', config_path] + list(args))


def start_manage(config_path, *args):
    """Start ``cache-maint-manage`` in a session of its own; return it.

    For a test that signals it, or holds a lock while it waits.
    """
    return subprocess.Popen(
        [processes.console_script('cache-maint-manage'), '--config-file',
         str(config_path)] + list(args), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def manage_json(config_path, *args):
    """The JSON a successful ``cache-maint-manage`` printed, and no trace."""
    result = manage(config_path, *args)
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    return json.loads(result.stdout)
