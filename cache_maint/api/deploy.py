"""Compose the WSGI application: the middleware stack, in code."""

from oslo_middleware import cors
from oslo_middleware import http_proxy_to_wsgi
from oslo_middleware import request_id
from oslo_middleware import sizelimit

from cache_maint.api import auth
from cache_maint.api import dispatch
from cache_maint.api.handlers import cache as cache_handlers
from cache_maint.api import health
from cache_maint.api.middleware import context
from cache_maint.api.middleware import errors
from cache_maint.api.middleware import keystone
from cache_maint.api.middleware import paths
from cache_maint.api.middleware import peer
from cache_maint.api.middleware import requestlog
from cache_maint.api import router
from cache_maint import policy
from cache_maint import status


def loadapp(conf, cache, runner, flights, watching=lambda: False):
    """Build the API application over a cache and its runs.

    ``runner`` (a TaskRunner) keeps the record of runs and ``flights``
    (singleflight.Flights) shares runs between requests; ``watching()``
    says whether the watcher is active. The handlers and the health checks
    are given these, nothing else.

    Listed from the inside out. The router dispatches to the handlers; the
    context middleware builds the request context the handlers check
    policies against, from the identity headers that the auth strategy
    sets once the token checks out (its own errors made JSON, and Keystone
    failures a 503 with one log line naming the setting to check). Public
    routes (discovery) skip authentication, and the fault wrapper turns
    whatever escapes into a JSON 500. Outside those come the operator's
    middleware: the request body size limit, ``/healthcheck`` (with its
    own fault wrapper, and its own answers: oslo.middleware's), CORS (only
    if ``[cors] allowed_origin`` is set), proxy headers (only if
    ``[oslo_middleware] enable_proxy_headers_parsing`` is set; the peer's
    own address is kept before they rewrite it), one log line per request,
    and, outermost, the ``x-openstack-request-id`` that every response
    carries and every log line names.
    """
    enforcer = policy.make_enforcer(conf)

    def authenticate(application):
        application = context.ContextMiddleware(application, enforcer)
        if conf.api.auth_strategy == 'noauth2':
            return auth.NoAuth2(application)
        return errors.JSONErrors(keystone.KeystoneFailures(
            lambda behind: auth.keystone(behind, conf), application, conf))

    handlers = cache_handlers.CacheHandlers(
        cache, runner, flights, conf.api.task_wait_timeout,
        lambda: status.status(conf, cache, runner, watching=watching()))
    dispatcher = dispatch.Dispatcher(router.Router(router.routes(handlers)))
    application = paths.PublicBypass(authenticate(dispatcher), dispatcher)
    application = errors.FaultWrapper(application)
    application = errors.JSONErrors(
        sizelimit.RequestBodySizeLimiter(application, conf))
    # Outside JSONErrors: a failing check's 503 keeps oslo.middleware's
    # body, which says which check failed.
    application = paths.Mount(application, '/healthcheck', errors.FaultWrapper(
        health.HealthcheckRoute(application, conf, cache, runner,
                                authenticate)))
    if conf.cors.allowed_origin:
        application = cors.CORS(application, conf)
    application = http_proxy_to_wsgi.HTTPProxyToWSGI(application, conf)
    application = peer.RememberPeer(application)
    application = requestlog.RequestLog(application)
    return request_id.RequestId(application)
