"""The innermost WSGI application: route, call the handler, map errors.

Every error leaves as JSON: webob HTTP errors raised by the router and the
handlers, and cache-maint's own errors, which carry an HTTP code and a public
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


class JSONErrors:
    """Re-express a middleware's non-JSON error in the API's JSON shape.

    keystonemiddleware, for one, answers 503 in HTML when Keystone is
    unreachable.
    """

    _KEPT_HEADERS = ('allow', 'retry-after', 'www-authenticate')

    def __init__(self, application):
        self._application = application

    def __call__(self, environ, start_response):
        response = webob.Request(environ).get_response(self._application)
        if (response.status_int >= 400
                and response.content_type != 'application/json'):
            kept = [(name, value) for name, value in response.headers.items()
                    if name.lower() in self._KEPT_HEADERS]
            response = util.error_response(
                response.status_int,
                '%s: the request could not be completed.'
                % response.status.split(' ', 1)[-1], kept)
        return response(environ, start_response)


class FaultWrapper:
    """Last resort: any unexpected exception becomes a JSON 500."""

    def __init__(self, application):
        self._application = application

    def __call__(self, environ, start_response):
        try:
            return self._application(environ, start_response)
        except Exception:
            LOG.exception('Unexpected error serving %s %s',
                          util.loggable(environ.get('REQUEST_METHOD', '')),
                          util.loggable(environ.get('PATH_INFO', '')))
            response = util.error_response(
                500, 'The server hit an unexpected error; the cache-maint '
                     'log has the details.')
            return response(environ, start_response)
