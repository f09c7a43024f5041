"""The request context, built from the identity headers authentication set.

Both auth strategies (``cache_maint.api.auth``) end the same way: the
identity headers keystonemiddleware defines are set, and this middleware
turns them into the RequestContext each handler checks its policy against.
"""

from cache_maint.api import util
from cache_maint import context


class ContextMiddleware:
    """Build the RequestContext from the identity headers."""

    def __init__(self, application, enforcer):
        self._application = application
        self._enforcer = enforcer

    def __call__(self, environ, start_response):
        environ[util.CONTEXT_KEY] = context.RequestContext.from_environ(
            environ, enforcer=self._enforcer)
        return self._application(environ, start_response)
