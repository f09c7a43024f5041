"""Helpers for functional tests: the real console scripts, real files."""

import configparser
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

#: How long a process gets to become ready, answer or exit; generous, as
#: these are deadlines for polling, never measurements.
DEADLINE = 30

#: Glance 33's sqlite cache table, written out here rather than imported
#: from the code under test, so that a restored database is Glance's own.
GLANCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS cached_images (
    image_id TEXT PRIMARY KEY,
    last_accessed REAL DEFAULT 0.0,
    last_modified REAL DEFAULT 0.0,
    size INTEGER DEFAULT 0,
    hits INTEGER DEFAULT 0,
    checksum TEXT
);
"""


def console_script(name):
    """The installed console script ``name`` next to this interpreter."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.access(path, os.X_OK):
        pytest.fail('console script %s is not installed next to %s; '
                    'install the package (pip install -e .) in this '
                    'environment' % (path, sys.executable))
    return path


def free_port():
    """A TCP port on loopback that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def write_config(path, sections):
    """Write ``{section: {option: value}}`` as an ini file, atomically."""
    parser = configparser.ConfigParser(interpolation=None)
    for section, options in sections.items():
        if section != 'DEFAULT':
            parser.add_section(section)
        for name, value in options.items():
            parser.set(section, name, str(value))
    tmp = '%s.tmp' % path
    with open(tmp, 'w') as f:
        parser.write(f)
    os.replace(tmp, path)
    return str(path)


def wait_for(predicate, what, timeout=DEADLINE, interval=0.1,
             diagnostics=None):
    """Poll ``predicate`` until it is truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = '\n' + diagnostics() if diagnostics else ''
            pytest.fail('timed out after %s s waiting for %s%s'
                        % (timeout, what, extra))
        time.sleep(interval)


def write_glance_db(path, rows):
    """Replace the db at ``path`` by Glance's, holding ``rows``."""
    # rows are (image_id, last_accessed, size, hits). The file is built
    # aside and renamed into place: a running reader never sees half of it.
    tmp = '%s.restore' % path
    if os.path.exists(tmp):
        os.unlink(tmp)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.executescript(GLANCE_SCHEMA)
        conn.executemany(
            'INSERT INTO cached_images (image_id, last_accessed, '
            'last_modified, size, hits) VALUES (?, ?, ?, ?, ?)',
            [(i, la, la, size, hits) for i, la, size, hits in rows])
    finally:
        conn.close()
    os.replace(tmp, path)


def read_tail(path, limit=6000):
    """The end of a text file, or a note that it does not exist."""
    try:
        with open(path, errors='replace') as f:
            return f.read()[-limit:]
    except FileNotFoundError:
        return '(%s does not exist)' % path


def child_pids(pid):
    """Pids of the live (non-zombie) children of process ``pid``."""
    children = set()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is not None and stat[1] == pid and stat[0] != 'Z':
            children.add(int(entry))
    return children


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read()
    except OSError:
        return b''


def is_alive(pid):
    """True if ``pid`` exists and is not a zombie."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != 'Z'


def _proc_stat(pid):
    """(state, ppid) of a process from /proc, or None if it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rpartition(')')[2].split()
    return fields[0], int(fields[1])


class Daemon:
    """One real ``cache-maint`` process with its config file and its log."""

    def __init__(self, workdir, cache_dir, api=None, **options):
        self.workdir = str(workdir)
        self.cache_dir = str(cache_dir)
        self.port = free_port()
        self.config_path = os.path.join(self.workdir, 'cache-maint.conf')
        self.log_path = os.path.join(self.workdir, 'cache-maint.log')
        self.stdout_path = os.path.join(self.workdir, 'stdout.txt')
        self.stderr_path = os.path.join(self.workdir, 'stderr.txt')
        self.process = None
        self.configure(api=api, **options)

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
        write_config(self.config_path,
                     {'DEFAULT': default, 'api': api_options})

    def add_sections(self, sections):
        """Append ``{section: {option: value}}`` to the config file."""
        with open(self.config_path, 'a') as f:
            for section, options in sections.items():
                f.write('\n[%s]\n' % section)
                for name, value in options.items():
                    f.write('%s = %s\n' % (name, value))

    def start(self):
        """Start the service and wait until its API answers."""
        with open(self.stdout_path, 'ab') as out, \
                open(self.stderr_path, 'ab') as err:
            # A session of its own: the SIGKILL fallback can then reach
            # the forked worker too, and nothing else.
            self.process = subprocess.Popen(
                [console_script('cache-maint'),
                 '--config-file', self.config_path],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True)
        self.wait_ready()
        return self

    def url(self, path):
        """The URL of ``path`` on this daemon's API."""
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def _answers(self):
        if self.process.poll() is not None:
            pytest.fail('cache-maint exited with status %s before it was '
                        'ready\n%s' % (self.process.returncode,
                                       self.diagnostics()))
        try:
            return requests.get(self.url('/versions'),
                                timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def wait_ready(self, timeout=DEADLINE):
        """Poll GET /versions until it answers 200."""
        wait_for(self._answers, 'cache-maint to answer GET /versions',
                 timeout=timeout, diagnostics=self.diagnostics)

    def request(self, method, path, token=None, **kwargs):
        """One HTTP request to the API, with X-Auth-Token if given."""
        headers = kwargs.pop('headers', {})
        if token is not None:
            headers['X-Auth-Token'] = token
        kwargs.setdefault('timeout', DEADLINE)
        return requests.request(method, self.url(path), headers=headers,
                                **kwargs)

    def send_signal(self, signum):
        """Signal the master process (the one the launcher runs in)."""
        self.process.send_signal(signum)

    def workers(self):
        """Pids of the worker processes the master has forked.

        Not the ``--check-config`` process a reload runs for a moment.
        """
        return {pid for pid in child_pids(self.process.pid)
                if b'--check-config' not in _cmdline(pid)}

    def log(self):
        """The whole log file of the service so far."""
        return read_tail(self.log_path, limit=10 ** 7)

    def diagnostics(self):
        """Everything that helps understand a failure: stderr and log."""
        return ('--- stderr ---\n%s\n--- log (tail) ---\n%s'
                % (read_tail(self.stderr_path), read_tail(self.log_path)))

    def stop(self):
        """SIGTERM the master; SIGKILL its whole session if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(DEADLINE)


def run_script(name, args, timeout=DEADLINE * 2):
    """Run a console script to completion in a session of its own."""
    process = subprocess.Popen(
        [console_script(name)] + list(args), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail('%s %s did not exit within %s s\nstdout: %s\nstderr: %s'
                    % (name, ' '.join(args), timeout, stdout, stderr))
    return subprocess.CompletedProcess(process.args, process.returncode,
                                       stdout, stderr)
