"""The address a connection really came from, whatever a proxy claims."""

from cache_maint.api import util


class RememberPeer:
    """Keep the address the connection really came from.

    HTTPProxyToWSGI, when enabled, replaces REMOTE_ADDR with what a
    ``Forwarded`` header claims; whether a client is on loopback must not
    be something it can claim.
    """

    def __init__(self, application):
        self._application = application

    def __call__(self, environ, start_response):
        environ[util.PEER_KEY] = environ.get('REMOTE_ADDR')
        return self._application(environ, start_response)
