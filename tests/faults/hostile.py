"""Helpers of the hostile-input, access and configuration fault tests.

Raw HTTP over a socket (``requests`` would normalise the paths these tests
are about), snapshots of directory trees that never follow a link or open
a FIFO, and a real ``cache-maint`` started on a cache of the test's own.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import stat
import threading

from tests import base
from tests.functional import helpers

KIB = base.KIB


@dataclasses.dataclass(frozen=True)
class Reply:
    """An HTTP response as it came off the socket."""

    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def raw_request(port, method, target, headers=(), body=b'',
                token=b'admin'):
    """Send one request exactly as given; return its Reply.

    ``target`` is the request-target, bytes, sent as is: no normalising,
    no encoding. ``headers`` are (name, value) pairs of bytes.
    """
    lines = [b'%s %s HTTP/1.1' % (method.encode(), target),
             b'Host: 127.0.0.1:%d' % port, b'Connection: close',
             b'Content-Length: %d' % len(body)]
    if token is not None:
        lines.append(b'X-Auth-Token: ' + token)
    lines += [b'%s: %s' % (name, value) for name, value in headers]
    request = b'\r\n'.join(lines) + b'\r\n\r\n' + body
    with socket.create_connection(('127.0.0.1', port),
                                  timeout=helpers.DEADLINE) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return parse_reply(b''.join(chunks))


def parse_reply(data):
    head, _, body = data.partition(b'\r\n\r\n')
    status_line, *header_lines = head.split(b'\r\n')
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(b':')
        headers[name.strip().lower().decode('latin-1')] = \
            value.strip().decode('latin-1')
    return Reply(int(status_line.split()[1]), headers, body)


def assert_clean_error(reply, status, *secrets):
    """A JSON error of ``status`` that tells nothing of the host."""
    assert reply.status == status, reply
    assert reply.headers.get('content-type', '').startswith(
        'application/json'), reply
    error = reply.json()['error']
    assert error['code'] == status, reply
    assert error['message'], reply
    assert_discloses_nothing(reply, *secrets)
    return error['message']


def assert_discloses_nothing(reply, *secrets):
    """No traceback, no host path and nothing of the request echoed."""
    text = reply.body.decode('latin-1')
    assert 'Traceback' not in text, reply
    assert '\x00' not in text, reply
    for secret in secrets:
        assert str(secret) not in text, (secret, reply)


def tree(*roots):
    """Everything about the entries under ``roots`` that a fault could change.

    Entries are lstat'ed, never followed: a symlink is recorded by its
    target, a regular file by its content's hash, a FIFO by its mode alone
    (opening it would block). Link counts and ctimes are left out: they
    change when another name of a hard-linked file is removed.
    """
    entries = {}
    for root in roots:
        root = str(root)
        if not os.path.lexists(root):
            entries[root] = None
            continue
        for path in _walk(root):
            entries[path] = _describe(path)
    return entries


def _walk(root):
    yield root
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        return
    for name in sorted(os.listdir(root)):
        yield from _walk(os.path.join(root, name))


def _describe(path):
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    detail = None
    if stat.S_ISLNK(st.st_mode):
        detail = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        with open(path, 'rb') as f:
            detail = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISDIR(st.st_mode):
        detail = tuple(sorted(os.listdir(path)))
    mtime = None if stat.S_ISLNK(st.st_mode) else st.st_mtime_ns
    return (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_size, mtime,
            detail)


def cache_tree(cache):
    """The cache's files, less the lock files a run or a service creates."""
    return {path: entry for path, entry in tree(cache.path).items()
            if not os.path.basename(path).startswith(
                ('glance-cache-', 'image_cache_db_init',
                 'cache-maint-service'))}


def cache_state(cache):
    """The cache directory tree and its metadata records."""
    rows = cache.rows() if hasattr(cache, 'db_path') else None
    return cache_tree(cache), rows


@contextlib.contextmanager
def running_daemon(workdir, cache_dir, api=None, **options):
    """A real cache-maint on ``cache_dir``; periodic runs off by default."""
    options.setdefault('cache_prune_interval', 0)
    options.setdefault('cache_clean_interval', 0)
    daemon = helpers.Daemon(workdir, cache_dir, api=api, **options)
    try:
        yield daemon.start()
    finally:
        daemon.stop()


def manage(daemon, *args):
    """``cache-maint-manage`` with the daemon's own configuration file."""
    return helpers.run_script(
        'cache-maint-manage', ['--config-file', daemon.config_path] +
        list(args))


def manage_json(daemon, *args):
    result = manage(daemon, *args)
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    return json.loads(result.stdout)


def answers(daemon):
    """True if the daemon still serves a request (nothing hangs it)."""
    reply = raw_request(daemon.port, 'GET', b'/versions', token=None)
    return reply.status == 200


@contextlib.contextmanager
def bad_clients(port, idle=32, slow=32):
    """``idle`` connections that send nothing, ``slow`` that trickle.

    A slow one sends a request's header a byte a second: each byte is
    activity to a server that only times out a silent read.
    """
    sockets = [socket.create_connection(('127.0.0.1', port))
               for _ in range(idle + slow)]
    stop = threading.Event()

    def trickle(sock):
        data = b'GET /versions HTTP/1.1\r\nHost: x\r\nX-Slow: ' + b'a' * 10000
        for byte in data:
            if stop.wait(1):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return

    threads = [threading.Thread(target=trickle, args=(sock,), daemon=True)
               for sock in sockets[idle:]]
    for thread in threads:
        thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        for thread in threads:
            thread.join(helpers.DEADLINE)
