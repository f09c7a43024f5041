"""The innermost WSGI application: route, call the handler, map errors.

The errors the router and the handlers raise leave as JSON here: webob's
HTTP errors, and cache-maint's own, which carry an HTTP code and a public
message that names no host path (the full message goes to the log).
"""

from oslo_log import log as logging
import webob
import webob.exc

from cache_maint.api import util
from cache_maint import exception

LOG = logging.getLogger(__name__)


class Dispatcher:
    """A WSGI application serving the routes of a Router."""

    def __init__(self, router):
        self._router = router

    def __call__(self, environ, start_response):
        req = webob.Request(environ)
        try:
            handler, path_args = self._router.match(_path(req), req.method)
            response = handler(req, **path_args)
        except webob.exc.HTTPException as e:
            response = util.error_response(
                e.code, e.detail or e.explanation,
                [(k, v) for k, v in e.headers.items() if k == 'Allow'])
        except exception.CacheMaintError as e:
            if e.code >= 500:
                LOG.error('%s %s failed: %s', util.loggable(req.method),
                          util.loggable(req.environ.get('PATH_INFO', '')), e)
            response = util.error_response(
                e.code, e.public_message,
                [('Retry-After', str(e.retry_after))]
                if e.retry_after is not None else None)
        return response(environ, start_response)


def _path(req):
    """The request path, decoded; a path that is not UTF-8 is a 400.

    The server percent-decodes the path into bytes; ``/v2/cache/%FF`` is
    no UTF-8 text, so it names neither a route nor an image.
    """
    try:
        return req.path_info
    except UnicodeDecodeError:
        raise webob.exc.HTTPBadRequest(
            'The request path is not valid percent-encoded UTF-8.')
