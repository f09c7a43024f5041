"""One log line per request, as operators expect from an OpenStack API."""

import time

from oslo_log import log as logging
from oslo_middleware import request_id

from cache_maint.api import util
from cache_maint import context

LOG = logging.getLogger(__name__)


class RequestLog:
    """Log method, path, status, size and duration of every request."""

    def __init__(self, application):
        self._application = application

    def __call__(self, environ, start_response):
        started = time.monotonic()
        seen = {}
        # oslo.log stamps each line with the thread's current context. Start
        # every request with an anonymous one, so that a request that never
        # authenticates is not logged under a previous request's identity.
        context.RequestContext(
            request_id=environ.get(request_id.ENV_REQUEST_ID))

        def logging_start_response(status, headers, exc_info=None):
            seen['status'] = status.split(' ', 1)[0]
            seen['length'] = next((value for name, value in headers
                                   if name.lower() == 'content-length'), '-')
            return start_response(status, headers, exc_info)

        try:
            return self._application(environ, logging_start_response)
        finally:
            LOG.info('%(remote)s "%(method)s %(path)s" status: %(status)s '
                     'len: %(length)s time: %(time).4f',
                     {'remote': environ.get('REMOTE_ADDR', '-'),
                      'method': environ.get('REQUEST_METHOD'),
                      'path': util.loggable(environ.get('PATH_INFO', '')),
                      'status': seen.get('status', '-'),
                      'length': seen.get('length', '-'),
                      'time': time.monotonic() - started})
