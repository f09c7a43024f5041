"""The route table of the API, and dispatch from it.

``routes()`` maps each path template to ``{method: handler}``. It is the map
of the API: dispatch reads it, the 404 and 405 (with ``Allow``) answers are
derived from it, and a test walks it to prove every non-public route is
guarded by a policy. Path templates hold literal segments and ``{name}``
segments, which match one non-empty segment and are passed to the handler
as keyword arguments.
"""

import re

import webob.exc

from cache_maint.api.handlers import schemas
from cache_maint.api.handlers import versions


def routes(cache):
    """The route table, with the cache routes served by ``cache``.

    ``cache`` is a ``handlers.cache.CacheHandlers``; given the class
    itself, the table names the same routes (what the tests walk).
    """
    # Literal paths are tried before templates, in this order:
    # /v2/cache/clean is the clean route, never an image called "clean";
    # likewise prune, runs, status and pins.
    return {
        '/': {'GET': versions.multiple_choices},
        '/versions': {'GET': versions.list_versions},
        '/v2': {'GET': versions.list_versions},
        '/v2/': {'GET': versions.list_versions},
        '/v2/schemas/metadefs/resource_type': {
            'GET': schemas.get_resource_type_schema},
        '/v2/cache': {'GET': cache.list_cache, 'DELETE': cache.clear_cache},
        '/v2/cache/clean': {'POST': cache.clean_cache},
        '/v2/cache/prune': {'POST': cache.prune_cache},
        '/v2/cache/runs': {'GET': cache.list_runs},
        '/v2/cache/status': {'GET': cache.show_status},
        '/v2/cache/pins': {'GET': cache.list_pins},
        '/v2/cache/pins/{image_id}': {'PUT': cache.pin_image,
                                      'DELETE': cache.unpin_image},
        '/v2/cache/nodes/{image_id}': {'GET': cache.list_cached_nodes},
        '/v2/cache/{image_id}': {'PUT': cache.queue_image,
                                 'DELETE': cache.delete_image},
        '/v2/images/{image_id}': {'GET': cache.show_image_reference},
    }


#: Routes served without authentication: version discovery and a static
#: schema, which Glance's clients fetch before anything else.
PUBLIC_PATHS = frozenset({'/', '/versions', '/v2', '/v2/',
                          '/v2/schemas/metadefs/resource_type'})


def _compile(template):
    pattern = re.sub(r'\\{(\w+)\\}', r'(?P<\1>[^/]+)', re.escape(template))
    return re.compile(pattern + r'\Z')


class Router:
    """Find the handler for a request, or answer 404 or 405."""

    def __init__(self, routes):
        self._routes = [(_compile(path), methods)
                        for path, methods in routes.items()]

    def match(self, path, method):
        """Return (handler, path_args); raise HTTPNotFound or 405."""
        for pattern, methods in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            handler = methods.get(method)
            if handler is None:
                allow = ', '.join(sorted(methods))
                raise webob.exc.HTTPMethodNotAllowed(
                    'The method %s is not allowed on this resource; allowed: '
                    '%s.' % (method, allow), headers=[('Allow', allow)])
            return handler, found.groupdict()
        raise webob.exc.HTTPNotFound('The resource could not be found.')


#: Routes whose requests wait for a run (clean and prune): the server gives
#: them threads of their own, so that they never hold up the others.
WAITING = frozenset({('POST', '/v2/cache/clean'),
                     ('POST', '/v2/cache/prune')})


def is_public(path):
    return path in PUBLIC_PATHS


def waits(method, path):
    """True for a request that may wait long for a run."""
    return (method, path) in WAITING
