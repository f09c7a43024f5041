"""The in-process HTTP server: cheroot's threaded WSGI server in a thread.

oslo.service's own WSGI server is eventlet-only; cheroot is a production
server (CherryPy's) that runs happily in a native thread of the service.
"""

import threading

from cheroot import wsgi
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class APIServer:
    """Serve one WSGI application on ``[api] bind_host``:``bind_port``."""

    def __init__(self, conf, application):
        self._server = wsgi.Server(
            (conf.api.bind_host, conf.api.bind_port), application,
            numthreads=conf.api.threads, server_name='cache-maint')
        self._thread = None

    @property
    def address(self):
        """(host, port) actually bound; the port is real even if 0 was set."""
        return self._server.bind_addr[:2]

    def start(self):
        """Bind the socket, then serve from a daemon thread."""
        self._server.prepare()
        self._thread = threading.Thread(
            target=self._server.serve, name='api-server', daemon=True)
        self._thread.start()
        host, port = self.address
        LOG.info('Admin API listening on http://%s:%d',
                 '[%s]' % host if ':' in host else host, port)

    def stop(self):
        """Stop accepting, finish the requests in flight, and join."""
        self._server.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
