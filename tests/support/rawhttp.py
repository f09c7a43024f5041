"""HTTP as it comes off a socket, and clients that hold connections open.

``requests`` normalises paths and headers; the hostile-input tests and the
slow-client benchmark need the bytes as sent, and sockets that are idle or
trickle a byte a second.
"""

import contextlib
import dataclasses
import json
import socket
import threading

from tests.support import processes


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
                                  timeout=processes.DEADLINE) as sock:
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


def answers(port):
    """True if the service on ``port`` still serves a request."""
    reply = raw_request(port, 'GET', b'/versions', token=None)
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
            thread.join(processes.DEADLINE)
