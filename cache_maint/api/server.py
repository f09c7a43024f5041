"""The in-process HTTP server: waitress, in a thread of the service.

oslo.service's own WSGI server is eventlet-only. waitress reads every
request whole in one event loop before a worker thread sees it (see
``cache_maint.api.protocol``), so slow or idle clients cannot take the
threads that answer everyone else.

The listening socket outlives the server: the launcher binds it before it
forks a worker, each worker serves it, and a reload that replaces the worker
leaves new connections waiting in its backlog rather than refused.
"""

import resource
import socket
import threading
import time

from oslo_log import log as logging
from waitress import adjustments
from waitress import task

from cache_maint.api import protocol
from cache_maint.api import router
from cache_maint import exception

LOG = logging.getLogger(__name__)

#: Connections the kernel queues while no worker accepts (a reload).
BACKLOG = 1024

#: Descriptors kept free beside the connections: database, cache
#: directory, lock files, logs.
SPARE_DESCRIPTORS = 256

#: Seconds between two looks at whether the requests in flight are done.
POLL = 0.05

#: Bytes of an answer waitress keeps in memory before it spills the rest to
#: a temporary file (its default is 1 MiB).
OUTBUF_IN_MEMORY = 32 * 1024 * 1024


class Listener:
    """The API's listening socket, bound once for ``[api]``'s address."""

    def __init__(self, host, port):
        self.configured = (host, port)
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise exception.ConfigError(
                'cannot listen on [api] bind_host %s: %s' % (host, e))
        self.socket = socket.socket(family[0][0], socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(family[0][4])
            self.socket.listen(BACKLOG)
        except OSError as e:
            self.socket.close()
            raise exception.ConfigError(
                'cannot listen on [api] bind_host %s, bind_port %d: %s'
                % (host, port, e))

    @classmethod
    def for_conf(cls, conf):
        return cls(conf.api.bind_host, conf.api.bind_port)

    def serves(self, conf):
        """True if this socket is the one ``conf`` asks for."""
        return self.configured == (conf.api.bind_host, conf.api.bind_port)

    @property
    def address(self):
        """(host, port) actually bound; the port is real even if 0 was set."""
        return self.socket.getsockname()[:2]

    def replace(self, other):
        """Take ``other``'s socket; close this one's."""
        old, self.socket = self.socket, other.socket
        self.configured = other.configured
        old.close()

    def close(self):
        self.socket.close()


class APIServer:
    """Serve one WSGI application on a Listener."""

    def __init__(self, conf, application, listener=None):
        self._own_listener = listener is None
        self._listener = listener or Listener.for_conf(conf)
        api = conf.api
        self._threads = (api.threads, api.max_task_requests)
        self._adj = adjustments.Adjustments(
            threads=api.threads,
            connection_limit=_connection_limit(api.max_connections),
            channel_timeout=api.idle_timeout,
            cleanup_interval=1,
            max_request_header_size=api.max_header_size,
            max_request_body_size=conf.oslo_middleware.max_request_body_size,
            asyncore_use_poll=True,
            # Large answers (GET /v2/cache of 20,000 images is 2.8 MB) stay
            # in memory rather than spill to a temporary file.
            outbuf_overflow=OUTBUF_IN_MEMORY,
            # Proxy headers are oslo.middleware's to read, if enabled.
            clear_untrusted_proxy_headers=False,
            ident='cache-maint',
            expose_tracebacks=False)
        self._limits = protocol.Limits(
            max_request_line=api.max_request_line,
            max_header_fields=api.max_header_fields,
            request_timeout=api.request_timeout)
        self._application = application
        self._server = None
        self._thread = None

    @property
    def address(self):
        return self._listener.address

    def start(self):
        """Serve from a daemon thread."""
        dispatchers = []
        for count in self._threads:
            dispatchers.append(task.ThreadedTaskDispatcher())
            dispatchers[-1].set_thread_count(count)
        # waitress closes its socket when it stops; the listener's stays.
        self._server = protocol.Server(
            self._application, self._listener.socket.dup(), self._adj,
            self._limits, *dispatchers, waits=router.waits)
        self._thread = threading.Thread(
            target=self._server.run, name='api-server', daemon=True)
        self._thread.start()
        host, port = self.address
        LOG.info('Admin API listening on http://%s:%d',
                 '[%s]' % host if ':' in host else host, port)

    def stop(self, grace=30):
        """Stop accepting, let the requests in flight finish, and join.

        Connections not yet accepted stay in the listener's backlog, for
        the next worker. A request still running after ``grace`` seconds
        is abandoned.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.stop_accepting()
        deadline = time.monotonic() + grace
        while server.busy() and time.monotonic() < deadline:
            time.sleep(POLL)
        for dispatcher in (server.task_dispatcher, server.waiting_dispatcher):
            dispatcher.shutdown(cancel_pending=True, timeout=1)
        server.close_all()
        self._thread.join(grace)
        self._thread = None
        if self._own_listener:
            self._listener.close()


def _connection_limit(wanted):
    """``wanted``, once the process may open that many descriptors.

    Raises the soft limit on open files towards the hard one if needed (a
    systemd unit's soft limit is 1024); if the hard one is too low, fewer
    connections are accepted, and that is logged.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(hard,
                                                                   needed)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = max(1, soft - SPARE_DESCRIPTORS)
        LOG.warning('[api] max_connections = %d, but this process may open '
                    'only %d files: accepting at most %d connections',
                    wanted, soft, limit)
        return limit
    return wanted
