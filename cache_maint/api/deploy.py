"""Compose the WSGI application: the middleware stack, in code."""

from oslo_middleware import cors
from oslo_middleware import http_proxy_to_wsgi
from oslo_middleware import request_id
from oslo_middleware import sizelimit

from cache_maint.api import auth
from cache_maint.api import dispatch
from cache_maint.api import health
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


class _Mount:
    """Serve one path with its own application (``/healthcheck``)."""

    def __init__(self, application, path, mounted):
        self._application = application
        self._path = path
        self._mounted = mounted

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO') == self._path:
            return self._mounted(environ, start_response)
        return self._application(environ, start_response)


class _RememberPeer:
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

    Listed from the inside out. The router dispatches to the handlers; the
    context middleware builds the request context the handlers check
    policies against, from the identity headers that the auth strategy
    sets once the token checks out (its own errors made JSON). Public
    routes (discovery) skip authentication. The runtime objects are
    injected for the handlers, and the fault wrapper turns whatever escapes
    into a JSON 500. Outside those come the operator's middleware: the
    request body size limit, ``/healthcheck`` (with its own fault wrapper,
    and its own answers: oslo.middleware's), CORS (only if
    ``[cors] allowed_origin`` is set), proxy headers (only if
    ``[oslo_middleware] enable_proxy_headers_parsing`` is set; the peer's
    own address is kept before they rewrite it), one log line per request,
    and, outermost, the ``x-openstack-request-id`` that every response
    carries and every log line names.
    """
    enforcer = policy.make_enforcer(conf)

    def authenticate(application):
        application = auth.ContextMiddleware(application, enforcer)
        if conf.api.auth_strategy == 'noauth2':
            return auth.NoAuth2(application)
        return dispatch.JSONErrors(auth.keystone(application, conf))

    dispatcher = dispatch.Dispatcher(router.Router(router.ROUTES))
    application = _PublicBypass(authenticate(dispatcher), dispatcher)
    application = _Inject(application, {util.RUNNER_KEY: runner,
                                        util.CONF_KEY: conf})
    application = dispatch.FaultWrapper(application)
    application = dispatch.JSONErrors(
        sizelimit.RequestBodySizeLimiter(application, conf))
    # Outside JSONErrors: a failing check's 503 keeps oslo.middleware's
    # body, which says which check failed.
    application = _Mount(application, '/healthcheck', dispatch.FaultWrapper(
        health.HealthcheckRoute(application, conf, runner, authenticate)))
    if conf.cors.allowed_origin:
        application = cors.CORS(application, conf)
    application = http_proxy_to_wsgi.HTTPProxyToWSGI(application, conf)
    application = _RememberPeer(application)
    application = requestlog.RequestLog(application)
    return request_id.RequestId(application)
