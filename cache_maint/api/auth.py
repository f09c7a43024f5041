"""Authentication middleware and the request context built after it.

Both strategies end the same way: the identity headers keystonemiddleware
defines (``X-User-Id``, ``X-Project-Id``, ``X-Roles``...) are set, and
``ContextMiddleware`` turns them into a RequestContext for the handlers.
"""

from keystonemiddleware import auth_token
import webob

from cache_maint.api import util
from cache_maint import context

_IDENTITY_HEADERS = ('X-Identity-Status', 'X-User-Id', 'X-User-Name',
                     'X-Project-Id', 'X-Project-Name', 'X-Roles',
                     'X-User-Domain-Id', 'X-Project-Domain-Id',
                     'X-Service-Roles', 'X-System-Scope')


class NoAuth2:
    """Development authentication: the token names the caller.

    The token ``admin`` is an admin of project ``admin``; any other token
    is a member of a project named after it; no token is a 401. Identity
    headers sent by the client are discarded, never trusted.
    """

    def __init__(self, application):
        self._application = application

    def __call__(self, environ, start_response):
        req = webob.Request(environ)
        for header in _IDENTITY_HEADERS:
            req.headers.pop(header, None)
        token = req.headers.get('X-Auth-Token', '').strip()
        if not token:
            response = util.error_response(
                401, 'Authentication required: send an X-Auth-Token header.')
            return response(environ, start_response)
        roles = 'admin,member,reader' if token == 'admin' else 'member,reader'
        req.headers.update({'X-Identity-Status': 'Confirmed',
                            'X-User-Id': token, 'X-User-Name': token,
                            'X-Project-Id': token, 'X-Project-Name': token,
                            'X-Roles': roles})
        return self._application(environ, start_response)


def keystone(application, conf):
    """keystonemiddleware's auth_token, configured from ``conf``."""
    return auth_token.AuthProtocol(application, {'oslo_config_config': conf})


class ContextMiddleware:
    """Build the RequestContext from the identity headers."""

    def __init__(self, application, enforcer):
        self._application = application
        self._enforcer = enforcer

    def __call__(self, environ, start_response):
        environ[util.CONTEXT_KEY] = context.RequestContext.from_environ(
            environ, enforcer=self._enforcer)
        return self._application(environ, start_response)
