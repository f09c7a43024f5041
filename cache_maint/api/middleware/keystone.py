"""Keystone failures as a JSON 503 and one log line naming the setting.

keystonemiddleware answers 503 when it cannot reach Keystone or Keystone
refuses its service credentials, after logging the low-level error over
several lines; for an interface the catalog lacks, it lets
``EndpointNotFound`` escape, which would be a 500 with a traceback. Either
way the caller can do nothing about it and the operator must fix a
``[keystone_authtoken]`` setting. This middleware wraps keystonemiddleware
and holds back what it and keystoneauth log while it serves a request.
When the request failed for want of Keystone, it answers a JSON 503 and
logs one line saying which setting to check (``identity.explain``) in
place of their own lines (their debug lines are kept); otherwise what it
held back is logged as it was.
"""

import logging as std_logging
import threading

from keystoneauth1 import exceptions as ksa_exceptions
from oslo_log import log as logging
import webob

from cache_maint.api import held_logs
from cache_maint.api import identity
from cache_maint.api import util

LOG = logging.getLogger(__name__)

#: What the caller is told: the setting is for the operator, in the log.
MESSAGE = ('Keystone could not be asked to validate the token, so the '
           'request cannot be authenticated now; the cache-maint log says '
           'which [keystone_authtoken] setting to check.')


class KeystoneFailures:
    """keystonemiddleware's AuthProtocol, wrapped (see the module).

    ``authenticate(application)`` builds the AuthProtocol in front of
    ``application``. What escapes it before the request reached
    ``application`` is keystonemiddleware's failure to validate the token
    (keystoneauth's errors, and its own on an answer that is not
    Keystone's: a KeyError, a TypeError); what escapes after is the
    application's own, and goes on to the fault wrapper.
    """

    def __init__(self, authenticate, application, conf):
        self._passed = threading.local()
        self._application = authenticate(_Behind(application, self._passed))
        self._conf = conf

    def __call__(self, environ, start_response):
        request = webob.Request(environ)
        self._passed.through = False
        error = None
        try:
            with held_logs.held_back() as held:
                try:
                    response = request.get_response(self._application)
                except ksa_exceptions.ClientException as e:
                    response, error = None, e
                except Exception as e:
                    if self._passed.through:
                        raise
                    LOG.debug('keystonemiddleware failed', exc_info=True)
                    response, error = None, e
        except BaseException:
            held_logs.release(held)
            raise
        if error is None and response.status_int == 503:
            error = _logged_error(held)
        if error is None:
            held_logs.release(held)
            return response(environ, start_response)
        # Their debugging detail stays; the line below replaces the rest.
        held_logs.release(held, below=std_logging.INFO)
        LOG.error('Keystone cannot validate tokens, so %s %s is answered '
                  '503: %s', util.loggable(request.method),
                  util.loggable(request.path_info),
                  identity.explain(error, self._conf))
        return util.error_response(503, MESSAGE)(environ, start_response)


class _Behind:
    """The application behind keystonemiddleware, noting it was reached."""

    def __init__(self, application, passed):
        self._application = application
        self._passed = passed

    def __call__(self, environ, start_response):
        self._passed.through = True
        return self._application(environ, start_response)


def _logged_error(records):
    """The exception keystonemiddleware logged as it answered 503."""
    for record in reversed(records):
        for arg in _arguments(record):
            if isinstance(arg, BaseException):
                return arg
    return None


def _arguments(record):
    args = record.args
    if isinstance(args, dict):
        return args.values()
    return args or ()
