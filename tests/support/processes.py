"""Real processes: the console scripts, run to their end or watched.

Every wait is a poll with a generous deadline, never a measurement.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

#: How long a process gets to become ready, answer or exit; generous, as
#: these are deadlines for polling, never measurements.
DEADLINE = 30


def console_script(name):
    """The installed console script ``name`` next to this interpreter."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.access(path, os.X_OK):
        pytest.fail('console script %s is not installed next to %s; '
                    'install the package (pip install -e .) in this '
                    'environment' % (path, sys.executable))
    return path


def run_script(name, args, timeout=DEADLINE * 2):
    """Run a console script to completion in a session of its own."""
    process = subprocess.Popen(
        [console_script(name)] + [str(arg) for arg in args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail('%s %s did not exit within %s s\nstdout: %s\nstderr: %s'
                    % (name, ' '.join(map(str, args)), timeout, stdout,
                       stderr))
    return subprocess.CompletedProcess(process.args, process.returncode,
                                       stdout, stderr)


def free_port():
    """A TCP port on loopback that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


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


def answers(process, url, name, diagnostics):
    """True once GET ``url`` is a 200; fail if ``process`` exited first."""
    if process.poll() is not None:
        pytest.fail('%s exited with status %s before it was ready\n%s'
                    % (name, process.returncode, diagnostics()))
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


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


def cmdline(pid):
    """The command line of a process, NUL-separated bytes."""
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


class Reader:
    """A process holding a file open, as glance-api while it sends an image.

    Made once the file is open; ``finish()`` has it read the file to its end
    and returns the sha256 hex digest of what it read.
    """

    _CODE = ('import hashlib, sys\n'
             'f = open(sys.argv[1], "rb")\n'
             'print("open", flush=True)\n'
             'sys.stdin.readline()\n'
             'print(hashlib.sha256(f.read()).hexdigest(), flush=True)\n')

    def __init__(self, path):
        self.process = subprocess.Popen(
            [sys.executable, '-c', self._CODE, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline() != 'open\n':
            self.close()
            raise RuntimeError('the reader could not open %s' % path)

    def finish(self):
        self.process.stdin.write('go\n')
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self):
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()
