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

#: The metrics listener's fixed limits: threads, connections at once, and
#: bytes of a request body (a scrape has none).
METRICS_THREADS = 2
METRICS_CONNECTIONS = 32
METRICS_MAX_BODY = 1024


class Listener:
    """A listening socket, bound once for an option group's address.

    ``group`` is the group whose ``bind_host`` and ``bind_port`` it serves:
    ``api`` (the admin API) or ``metrics``. A listener may be unbound (no
    socket yet, or closed): the launcher keeps one for the metrics even
    while they are off, for a reload to bind it in place.
    """

    def __init__(self, host, port, group='api'):
        self.group = group
        self.configured = (host, port)
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise exception.ConfigError(
                'cannot listen on [%s] bind_host %s: %s' % (group, host, e))
        self.socket = socket.socket(family[0][0], socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(family[0][4])
            self.socket.listen(BACKLOG)
        except OSError as e:
            self.socket.close()
            raise exception.ConfigError(
                'cannot listen on [%s] bind_host %s, bind_port %d: %s'
                % (group, host, port, e))

    @classmethod
    def for_conf(cls, conf, group='api'):
        options = conf[group]
        return cls(options.bind_host, options.bind_port, group)

    @classmethod
    def unbound(cls, group):
        """A listener with no socket, for ``replace`` to give it one."""
        listener = cls.__new__(cls)
        listener.group = group
        listener.configured = None
        listener.socket = None
        return listener

    @property
    def bound(self):
        return self.socket is not None

    def serves(self, conf):
        """True if this socket is the one ``conf`` asks for."""
        options = conf[self.group]
        return self.bound and self.configured == (options.bind_host,
                                                  options.bind_port)

    @property
    def address(self):
        """(host, port) actually bound; the port is real even if 0 was set."""
        return self.socket.getsockname()[:2]

    def replace(self, other):
        """Take ``other``'s socket; close this one's."""
        old, self.socket = self.socket, other.socket
        self.configured = other.configured
        if old is not None:
            old.close()

    def close(self):
        """Close the socket; the listener is unbound after."""
        if self.socket is not None:
            self.socket.close()
        self.socket = None
        self.configured = None


class APIServer:
    """Serve one WSGI application on a Listener: the admin API's, [api]."""

    #: What the log calls it, and its thread.
    title = 'Admin API'
    thread_name = 'api-server'

    def __init__(self, conf, application, listener=None):
        api = conf.api
        own = listener is None
        self._setup(
            application, Listener.for_conf(conf) if own else listener, own,
            threads=(api.threads, api.max_task_requests),
            adj=adjustments.Adjustments(
                threads=api.threads,
                connection_limit=_connection_limit(api.max_connections),
                channel_timeout=api.idle_timeout,
                cleanup_interval=1,
                max_request_header_size=api.max_header_size,
                max_request_body_size=(
                    conf.oslo_middleware.max_request_body_size),
                asyncore_use_poll=True,
                # Large answers (GET /v2/cache of 20,000 images is 2.8 MB)
                # stay in memory rather than spill to a temporary file.
                outbuf_overflow=OUTBUF_IN_MEMORY,
                # Proxy headers are oslo.middleware's to read, if enabled.
                clear_untrusted_proxy_headers=False,
                ident='cache-maint',
                expose_tracebacks=False),
            limits=_limits(api),
            waits=router.waits)

    def _setup(self, application, listener, own, threads, adj, limits,
               waits):
        """Keep what ``start`` serves with.

        ``own``: the listener was bound for this server, and closes with
        it. ``threads``: those of the dispatcher, and of the one for the
        requests that ``waits(method, path)``.
        """
        self._own_listener = own
        self._listener = listener
        self._threads = threads
        self._adj = adj
        self._limits = limits
        self._waits = waits
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
            self._limits, *dispatchers, waits=self._waits)
        self._thread = threading.Thread(
            target=self._server.run, name=self.thread_name, daemon=True)
        self._thread.start()
        host, port = self.address
        LOG.info('%s listening on http://%s:%d', self.title,
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


class MetricsServer(APIServer):
    """Serve the metrics' WSGI application on [metrics]'s listener.

    The admin API's hardened server with small fixed limits: a scraper or
    two, never a crowd. [api]'s bounds on a request (header, request line,
    idle and request time-outs) apply as they are; no request waits for a
    run, and none has a body.
    """

    title = 'Metrics'
    thread_name = 'metrics-server'

    def __init__(self, conf, application, listener=None):
        api = conf.api
        own = listener is None or not listener.bound
        self._setup(
            application,
            Listener.for_conf(conf, 'metrics') if own else listener, own,
            # No request waits for a run: no thread waits for one.
            threads=(METRICS_THREADS, 0),
            adj=adjustments.Adjustments(
                threads=METRICS_THREADS,
                connection_limit=METRICS_CONNECTIONS,
                channel_timeout=api.idle_timeout,
                cleanup_interval=1,
                max_request_header_size=api.max_header_size,
                max_request_body_size=METRICS_MAX_BODY,
                asyncore_use_poll=True,
                ident='cache-maint',
                expose_tracebacks=False),
            limits=_limits(api),
            waits=lambda method, path: False)


def _limits(api):
    return protocol.Limits(max_request_line=api.max_request_line,
                           max_header_fields=api.max_header_fields,
                           request_timeout=api.request_timeout)


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
