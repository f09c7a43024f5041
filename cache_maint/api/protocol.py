"""HTTP/1.1 as the API takes it: waitress, with bounds on what a client sends.

waitress reads each request whole in its event loop and hands it to a worker
thread only once it is complete, so an idle or slow client holds a socket,
never a thread; it also bounds the header block (431) and the body (413).
These classes add what it leaves out:

* a bound on the request line, answered 414 as soon as it is passed, and on
  the number of header fields (431);
* Content-Length beside Transfer-Encoding is refused (400): the two disagree
  on where the request ends, the root of request smuggling; so is a path
  with an empty, ``.`` or ``..`` segment once percent-decoded, which names
  nothing the API serves and only ever tries to climb out of it;
* a deadline for a whole request once its first byte arrived, which a
  client sending a byte every few seconds cannot stretch;
* a refused request is logged in one line, with what the client sent cut
  short, and answered in the API's JSON error shape; the connection then
  lingers a moment, reading and discarding, so that a client still sending
  its oversized request can read the answer instead of a reset.
"""

import dataclasses
import functools
import json
import socket
import threading
import time

from oslo_log import log as logging
from waitress import channel
from waitress import parser
from waitress import server
from waitress import task
from waitress import utilities
from waitress import wasyncore

from cache_maint.api import util

LOG = logging.getLogger(__name__)

#: Seconds a refused connection is read from and discarded before it is
#: closed, and the most bytes read at a time meanwhile.
LINGER = 2.0
LINGER_CHUNK = 65536

#: Seconds after it was accepted during which a silent connection is taken
#: to have its first request on the way (see Server.busy).
FRESH = 1.0


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may be; the header and body sizes are waitress's."""

    max_request_line: int
    max_header_fields: int
    request_timeout: float


class URITooLong(utilities.BadRequest):
    code = 414
    reason = 'URI Too Long'


class RequestParser(parser.HTTPRequestParser):
    """waitress's parser, with the bounds of ``Limits``."""

    def __init__(self, adj, limits):
        super().__init__(adj)
        self.limits = limits
        self.started = time.monotonic()
        self.field_count = 0
        #: The start of the request line as sent, for the log.
        self.sent_line = b''

    def received(self, data):
        if self.body_rcv is None and not self.completed:
            head = self.header_plus + data
            line_end = head.lstrip(b'\r\n').find(b'\n')
            if not self.sent_line:
                shown = util.LOGGED_BYTES * 2 if line_end < 0 else line_end
                self.sent_line = head.lstrip(b'\r\n')[:shown].rstrip()
            if (line_end < 0 and len(head) > self.limits.max_request_line
                    or line_end > self.limits.max_request_line):
                self.header_plus = b''
                self._refuse(URITooLong(
                    'The request line is longer than %d bytes.'
                    % self.limits.max_request_line))
                return len(data)
        consumed = super().received(data)
        if (self.headers_finished and self.error is None
                and self.field_count > self.limits.max_header_fields):
            self._refuse(utilities.RequestHeaderFieldsTooLarge(
                'The request has more than %d header fields.'
                % self.limits.max_header_fields))
        return consumed

    def parse_header(self, header_plus):
        self.field_count = sum(1 for line in header_plus.split(b'\n')[1:]
                               if line.strip())
        try:
            self._parse_header(header_plus)
        except (parser.ParsingError, parser.TransferEncodingNotImplemented):
            # waitress asks for the body on "Expect: 100-continue" once the
            # header is parsed, and would then never answer the refusal.
            self.expect_continue = False
            raise

    def _parse_header(self, header_plus):
        try:
            super().parse_header(header_plus)
        except parser.TransferEncodingNotImplemented as e:
            raise parser.ParsingError(str(e))
        except ValueError:
            # int() of a Content-Length of thousands of digits.
            raise parser.ParsingError('Content-Length is invalid')
        headers = self.headers
        if 'CONTENT_LENGTH' in headers and (
                self.chunked or 'TRANSFER_ENCODING' in headers):
            raise parser.ParsingError(
                'Content-Length and Transfer-Encoding together')
        if self.version not in ('1.0', '1.1'):
            raise parser.ParsingError('The request line has no HTTP/1.x '
                                      'version')
        if any(c < '!' or c == '\x7f' for c in self.request_uri):
            raise parser.ParsingError(
                'The request target has a control character')
        if not (self.request_uri.startswith('/')
                or self.proxy_scheme in ('http', 'https')):
            raise parser.ParsingError(
                'The request target is neither a path nor an absolute URL')
        segments = self.path.split('/')[1:]
        if any(segment in ('.', '..') for segment in segments) or (
                '' in segments[:-1]):
            raise parser.ParsingError(
                'The request path has an empty, "." or ".." segment')

    def _refuse(self, error):
        self.error = error
        self.completed = True
        self.body_rcv = None
        self.expect_continue = False
        if not getattr(self, 'command', None):
            # The error answer needs a request to answer.
            self.parse_header(b'GET / HTTP/1.0\r\n')


class ErrorTask(task.ErrorTask):
    """Answer a refused request in the API's error shape, and log it."""

    def execute(self):
        error = self.request.error
        self.channel.refused = True
        LOG.info('%s "%s" refused: %d %s: %s',
                 self.channel.addr[0] if self.channel.addr else '-',
                 util.loggable(self.request.sent_line),
                 error.code, error.reason, util.loggable(str(error.body)))
        body = json.dumps({'error': {
            'code': error.code, 'title': error.reason,
            'message': _public_message(error)}}).encode('utf-8')
        self.status = '%d %s' % (error.code, error.reason)
        self.response_headers.append(
            ('Content-Type', 'application/json; charset=UTF-8'))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


#: What a refusal says to the client: never what the client sent.
_PUBLIC = {
    413: 'The request body is larger than the server takes.',
    414: 'The request line is longer than the server takes.',
    431: 'The request header is larger than the server takes.',
}


def _public_message(error):
    if error.code >= 500:
        return 'The server could not read the request.'
    return _PUBLIC.get(error.code, 'The request is not valid HTTP/1.1.')


class Channel(channel.HTTPChannel):
    """A connection, which lingers a moment after a refused request."""

    error_task_class = ErrorTask
    refused = False
    lingering_until = None

    def __init__(self, server, sock, addr, adj, map=None):
        super().__init__(server, sock, addr, adj, map)
        self.parser_class = functools.partial(RequestParser,
                                              limits=server.limits)

    def readable(self):
        return self.lingering_until is not None or super().readable()

    def writable(self):
        return self.lingering_until is None and super().writable()

    def handle_read(self):
        if self.lingering_until is None:
            self._active_before = self.last_activity
            return super().handle_read()
        try:
            data = self.socket.recv(LINGER_CHUNK)
        except OSError:
            data = b''
        if not data:
            self.handle_close()

    def received(self, data):
        # Line ends between requests are no request: they must not keep an
        # idle connection alive for ever.
        if self.request is None and not data.strip(b'\r\n'):
            self.last_activity = getattr(self, '_active_before',
                                         self.last_activity)
            return True
        return super().received(data)

    def handle_close(self):
        if self.refused and self.lingering_until is None and self.socket:
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            else:
                self.lingering_until = time.monotonic() + LINGER
                self.will_close = self.close_when_flushed = False
                return
        self.lingering_until = None
        super().handle_close()

    def overdue(self, now):
        """True if this connection has had its time."""
        if self.lingering_until is not None:
            return now > self.lingering_until
        request = self.request
        # A request being served may have the next one trickle in behind.
        return (request is not None and not request.completed
                and not self.requests
                and now - request.started > request.limits.request_timeout)


class Server(server.TcpWSGIServer):
    """waitress's TCP server on an already listening socket.

    Requests that may wait long (``waits(method, path)``: clean and prune,
    which wait for their run) are served by threads of their own, the
    ``waiting`` dispatcher's; when all of those are taken, more such
    requests queue there, holding no thread. Every other request has the
    threads of ``dispatcher``, which waiting requests can never take.
    """

    channel_class = Channel

    def __init__(self, application, sock, adj, limits, dispatcher, waiting,
                 waits):
        self.limits = limits
        self.waiting_dispatcher = waiting
        self._waits = waits
        super().__init__(application, map={}, _sock=sock,
                         dispatcher=dispatcher, adj=adj, bind_socket=False,
                         sockinfo=(sock.family, sock.type, sock.proto,
                                   sock.getsockname()))

    def add_task(self, channel):
        request = channel.requests[0] if channel.requests else None
        if (request is not None and request.error is None
                and self._waits(request.command, request.path)):
            self.waiting_dispatcher.add_task(channel)
        else:
            super().add_task(channel)

    def accept_connections(self):
        # The socket is listening already: its backlog is the launcher's.
        self.accepting = True

    def maintenance(self, now):
        super().maintenance(now)
        clock = time.monotonic()
        for connection in list(self.active_channels.values()):
            if connection.overdue(clock):
                if connection.lingering_until is None:
                    LOG.info('%s: closed a connection whose request did not '
                             'arrive within %s s', connection.addr[0],
                             self.limits.request_timeout)
                connection.lingering_until = None
                connection.refused = False
                connection.handle_close()

    def call_soon(self, thunk):
        """Run ``thunk`` in the event loop's thread."""
        self.trigger.pull_trigger(thunk)

    def stop_accepting(self, timeout=5):
        """Accept no more connections; return once the loop has heard it.

        What it accepted until then, it serves (see busy); what arrives
        after waits in the listener's backlog for the next worker.
        """
        heard = threading.Event()

        def stop():
            self.accepting = False
            heard.set()

        self.call_soon(stop)
        heard.wait(timeout)

    def close_all(self):
        """Close every socket, which ends the event loop."""
        self.call_soon(lambda: wasyncore.close_all(self._map))

    def busy(self):
        """True while a connection has a request to finish.

        A request being served or waiting for a thread counts, and so do a
        request that began to arrive a moment ago and a connection accepted
        a moment ago, whose requests are surely on their way. A connection
        idle for longer does not, nor a request that has been trickling in
        for longer: a slow client must not delay a worker's stop, or a
        reload, by its request_timeout.
        """
        fresh, began = time.time() - FRESH, time.monotonic() - FRESH
        return any(connection.requests
                   or (connection.request is not None
                       and connection.request.started > began)
                   or (connection.last_activity == connection.creation_time
                       and connection.creation_time > fresh)
                   for connection in list(self.active_channels.values()))
