"""Clients that are slow, idle, oversized or not quite HTTP (issue 11, 1-4).

Against the real ``cache-maint``, from raw sockets, without a token: what
an attacker on the management network can do before any authentication.

* 32 idle connections and 32 slowloris ones (a header byte every second)
  leave ``/healthcheck``, ``/versions`` and an admin's ``POST
  /v2/cache/prune`` answering, and answering in time (a deadline far below
  the minutes such clients once held the API for, not a measurement);
  a client that never finishes its request is cut off.
* A request line, a header block, a header count or a body past its bound
  is a 414, 431 or 413 answered at once, even to a client still sending;
  the worker's memory grows by far less than what is sent, and the log
  line quotes a bounded, escaped part of it.
* Malformed framing (bad chunk size, Content-Length with
  Transfer-Encoding, two Content-Lengths, a client gone mid-body) is a 400
  or nothing at all, one log line, never a traceback.
"""

import socket
import threading
import time

import pytest

from tests.faults import hostile
from tests.support import caches
from tests.support import processes
from tests.support import rawhttp
from tests.support import running

#: Seconds an answer may take while the bad clients are connected. Far
#: above a normal answer on a loaded CI machine, far below what idle and
#: slow clients once cost (10 s per read, 90 s for /healthcheck).
ANSWER_DEADLINE = 5


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp('slow-clients')
    cache = caches.SqliteCache(root / 'cache')
    for _ in range(3):
        cache.add_image()
    with running.daemon(root, cache.path,
                        image_cache_max_size=10 * caches.KIB,
                        api={'request_timeout': 5}) as daemon:
        yield daemon


def worker_rss(daemon):
    """Resident memory of the worker process, in bytes."""
    (worker,) = daemon.workers()
    with open('/proc/%d/status' % worker) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no VmRSS for the worker')


def answer(sock, limit=1 << 20):
    """What the server sent on ``sock`` until it closed, or the timeout."""
    sock.settimeout(processes.DEADLINE)
    chunks = []
    try:
        while sum(map(len, chunks)) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b''.join(chunks)


def send_then_read(port, data):
    """Send ``data`` (however large) and read the answer, as one client."""
    with socket.create_connection(('127.0.0.1', port)) as sock:
        sent = threading.Thread(target=_send_quietly, args=(sock, data))
        sent.start()
        reply = answer(sock)
        sent.join(processes.DEADLINE)
    return rawhttp.parse_reply(reply) if reply else None


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass    # the server closed after its answer


def timed(method, daemon, path, token=None):
    response = daemon.request(method, path, token=token,
                              timeout=ANSWER_DEADLINE)
    return response.status_code


def test_idle_and_slowloris_clients_take_no_answer_away(site):
    with rawhttp.bad_clients(site.port):
        time.sleep(2)   # every slow client is mid-request by now
        for _ in range(5):
            assert timed('GET', site, '/healthcheck') == 200
            assert timed('GET', site, '/versions') == 200
            assert timed('POST', site, '/v2/cache/prune',
                         token='admin') == 200
    assert rawhttp.answers(site.port)


def test_a_request_that_never_ends_is_cut_off(site):
    """[api] request_timeout (5 s here) ends a trickle of any speed."""
    with rawhttp.bad_clients(site.port, idle=0, slow=1) as (sock,):
        sock.settimeout(processes.DEADLINE)
        # The server closes it: recv ends, with no answer.
        processes.wait_for(lambda: _closed(sock),
                           'the slow client to be disconnected')
    assert 'whose request did not arrive within 5 s' in site.log()


def _closed(sock):
    try:
        return sock.recv(1024) == b''
    except ConnectionResetError:
        return True


def test_a_64_mib_request_target_is_a_414_at_once(site):
    before = worker_rss(site)
    log_before = len(site.log())
    replies = []
    line = b'GET /' + b'a' * (64 << 20) + b' HTTP/1.1\r\nHost: x\r\n\r\n'
    senders = [threading.Thread(target=lambda: replies.append(
        send_then_read(site.port, line))) for _ in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(processes.DEADLINE * 2)
    assert [reply.status for reply in replies] == [414] * 4, replies
    assert replies[0].json()['error']['code'] == 414
    assert worker_rss(site) - before < 64 << 20
    # Each refusal is one line, quoting a bounded part of the target.
    logged = site.log()[log_before:]
    assert len(logged) < 8192, logged[:2000]
    assert logged.count('refused: 414') == 4, logged
    assert 'more bytes)' in logged


@pytest.mark.parametrize('headers, status', [
    pytest.param(b''.join(b'X-H%d: v\r\n' % i for i in range(200000)), 431,
                 id='200,000 headers'),
    pytest.param(b''.join(b'X-H%d: v\r\n' % i for i in range(101)), 431,
                 id='101 headers'),
    pytest.param(b'X-Big: ' + b'v' * (128 << 10) + b'\r\n', 431,
                 id='a 128 KiB header'),
])
def test_too_many_or_too_large_headers_are_a_431(site, headers, status):
    reply = send_then_read(
        site.port, b'GET /versions HTTP/1.1\r\nHost: x\r\n' + headers
        + b'\r\n')
    assert reply.status == status, reply
    assert reply.json()['error']['code'] == status
    assert rawhttp.answers(site.port)


def test_a_body_too_large_is_a_413_before_it_is_sent(site):
    with socket.create_connection(('127.0.0.1', site.port)) as sock:
        sock.sendall(b'POST /v2/cache/prune HTTP/1.1\r\nHost: x\r\n'
                     b'X-Auth-Token: admin\r\n'
                     b'Content-Length: 1000000000\r\n\r\n')
        reply = rawhttp.parse_reply(answer(sock))
    assert reply.status == 413, reply
    assert reply.json()['error']['code'] == 413


FRAMING = {
    'bad chunk size': b'POST /v2/cache/prune HTTP/1.1\r\nHost: x\r\n'
                      b'Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n',
    'Content-Length with Transfer-Encoding':
        b'POST /v2/cache/prune HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n'
        b'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'two Content-Lengths': b'POST /v2/cache/prune HTTP/1.1\r\nHost: x\r\n'
                           b'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}',
    'a bare LF in a header':
        b'GET /versions HTTP/1.1\r\nHost: x\nX: y\r\n\r\n',
    'no version': b'GET /versions\r\nHost: x\r\n\r\n',
    'dot segments': b'GET /v2/cache/../../etc/passwd HTTP/1.1\r\n'
                    b'Host: x\r\n\r\n',
    'a Content-Length of 5,000 digits':
        b'POST /v2/cache/prune HTTP/1.1\r\nHost: x\r\nContent-Length: '
        + b'9' * 5000 + b'\r\n\r\n',
    'Content-Length with Transfer-Encoding on HTTP/1.0':
        b'POST /v2/cache/prune HTTP/1.0\r\nContent-Length: 2\r\n'
        b'Transfer-Encoding: chunked\r\n\r\n{}',
    'a refusal that expects 100-continue':
        b'POST /v2/cache/../prune HTTP/1.1\r\nHost: x\r\nContent-Length: 2'
        b'\r\nExpect: 100-continue\r\n\r\n',
    'a forged log line in a header':
        b'GET /versions HTTP/1.1\r\nHost: x\r\nX-A: a\n2026-01-01 INFO '
        b'forged "DELETE /v2/cache" status: 204\x1b[2J\r\n\r\n',
}


@pytest.mark.parametrize('case', sorted(FRAMING))
def test_malformed_framing_is_a_400_and_one_log_line(site, case):
    log_before = len(site.log())
    reply = send_then_read(site.port, FRAMING[case])
    assert reply.status == 400, reply
    assert reply.json()['error']['code'] == 400
    hostile.assert_discloses_nothing(reply, site.cache_dir)
    assert b'forged' not in reply.body and b'999' not in reply.body
    logged = site.log()[log_before:]
    assert logged.count('refused: 400') == 1, logged
    assert len(logged.splitlines()) == 1, logged
    assert 'Traceback' not in logged and ' ERROR ' not in logged
    assert '\x1b' not in logged
    assert rawhttp.answers(site.port)


def test_a_hundred_header_fields_are_taken(site):
    headers = b''.join(b'X-H%d: v\r\n' % i for i in range(99))
    reply = send_then_read(site.port, b'GET /versions HTTP/1.1\r\nHost: x\r\n'
                           + headers + b'\r\nConnection: close\r\n\r\n')
    assert reply.status == 200, reply


def test_deeply_nested_json_is_a_400(site):
    reply = rawhttp.raw_request(site.port, 'POST', b'/v2/cache/clean',
                                body=b'[' * 5000)
    hostile.assert_clean_error(reply, 400)
    assert 'Traceback' not in site.log()


def test_line_ends_alone_do_not_keep_a_connection_alive(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    with running.daemon(tmp_path, cache.path,
                        api={'idle_timeout': 2}) as daemon:
        with socket.create_connection(('127.0.0.1', daemon.port)) as sock:
            sock.settimeout(1)
            deadline = time.monotonic() + processes.DEADLINE
            while time.monotonic() < deadline:
                try:
                    sock.sendall(b'\r\n\r\n')
                    if _closed(sock):
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            else:
                pytest.fail('empty lines kept the connection open')


def test_a_client_gone_mid_body_leaves_no_trace(site):
    log_before = len(site.log())
    with socket.create_connection(('127.0.0.1', site.port)) as sock:
        sock.sendall(b'POST /v2/cache/prune HTTP/1.1\r\nHost: x\r\n'
                     b'X-Auth-Token: admin\r\nContent-Length: 100\r\n\r\n{')
    time.sleep(0.5)
    assert rawhttp.answers(site.port)
    logged = site.log()[log_before:]
    assert 'Traceback' not in logged
    assert 'POST /v2/cache/prune' not in logged    # never reached the API
