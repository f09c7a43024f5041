"""Every error leaves as JSON, in the shape keystonemiddleware uses."""

from oslo_log import log as logging
import webob

from cache_maint.api import util

LOG = logging.getLogger(__name__)


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
