"""Compose the WSGI application: the middleware stack, in code."""

from oslo_middleware import request_id

from cache_maint.api import auth
from cache_maint.api import dispatch
from cache_maint.api import requestlog
from cache_maint.api import router
from cache_maint.api import util
from cache_maint import policy


class _PublicBypass:
    """Serve public routes (version discovery) without authentication."""

    def __init__(self, authenticated, public):
        self._authenticated = authenticated
        self._public = public

    def __call__(self, environ, start_response):
        if router.is_public(environ.get('PATH_INFO', '')):
            return self._public(environ, start_response)
        return self._authenticated(environ, start_response)


class _Inject:
    """Put the runtime objects into the environ for the handlers."""

    def __init__(self, application, values):
        self._application = application
        self._values = values

    def __call__(self, environ, start_response):
        environ.update(self._values)
        return self._application(environ, start_response)


def loadapp(conf, runner):
    """Build the API application around a TaskRunner.

    From the outside in: every request gets an ``x-openstack-request-id``
    and a log line; the fault wrapper turns whatever escapes into a JSON
    500 (inside those two, so a failure is still logged with its id); the
    runtime objects are injected; public routes skip authentication;
    otherwise the auth strategy checks the token (its errors made JSON) and
    sets the identity headers, from which the context middleware builds the
    request context that the handlers check policies against.
    """
    dispatcher = dispatch.Dispatcher(router.Router(router.ROUTES))
    authenticated = auth.ContextMiddleware(dispatcher,
                                           policy.make_enforcer(conf))
    if conf.api.auth_strategy == 'noauth2':
        authenticated = auth.NoAuth2(authenticated)
    else:
        authenticated = dispatch.JSONErrors(
            auth.keystone(authenticated, conf))
    application = _PublicBypass(authenticated, dispatcher)
    application = _Inject(application, {util.RUNNER_KEY: runner,
                                        util.CONF_KEY: conf})
    application = dispatch.FaultWrapper(application)
    application = requestlog.RequestLog(application)
    return request_id.RequestId(application)
