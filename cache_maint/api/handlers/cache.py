"""Handlers of Glance's image cache routes."""

import webob

from cache_maint.api import listing
from cache_maint.api import util
from cache_maint import images
from cache_maint.policies import cache as policies


def _authorize(req, policy):
    """Check the policy first, before anything else is looked at."""
    req.environ[util.CONTEXT_KEY].can(policy)


def _driver(req, policy):
    """The cache's driver, once the policy allows the request."""
    _authorize(req, policy)
    return req.environ[util.RUNNER_KEY].driver


def _no_content(status=204):
    response = webob.Response(status=status)
    del response.content_type    # an empty answer has no type either
    return response


def list_cache(req):
    """GET /v2/cache : the cached images and the queue."""
    records, queued = images.listing(_driver(req, policies.LIST))
    return util.json_text_response(200, listing.encode(records, queued))


def queue_image(req, image_id):
    """PUT /v2/cache/{image_id} : queue an image for caching."""
    driver = _driver(req, policies.IMAGE)
    util.read_empty_body(req)
    images.queue(driver, image_id)
    return _no_content(202)


def delete_image(req, image_id):
    """DELETE /v2/cache/{image_id} : drop an image from cache and queue."""
    images.delete(_driver(req, policies.DELETE), image_id)
    return _no_content()


def clear_cache(req):
    """DELETE /v2/cache : empty the cache, the queue, or both."""
    driver = _driver(req, policies.DELETE)
    # Only HTTP's own whitespace (space, tab) is trimmed: str.strip() would
    # also drop U+00A0 or U+0085, and "cache\xa0" would clear the cache.
    target = req.headers.get('x-image-cache-clear-target', '').strip(' \t')
    images.clear(driver, target.lower() or 'both')
    return _no_content()


def list_cached_nodes(req, image_id):
    """GET /v2/cache/nodes/{image_id} : the nodes caching an image."""
    return util.json_response(200, images.cached_nodes(
        _driver(req, policies.NODES), image_id))


def _run(req, policy, task):
    """Share the next run of a task, waiting for a run held elsewhere.

    The server serves these requests from threads of their own (see
    router.WAITING): waiting here holds up no other request.
    """
    _authorize(req, policy)
    util.read_empty_body(req)
    wait = req.environ[util.CONF_KEY].api.task_wait_timeout
    result = req.environ[util.RUNNER_KEY].flight(task).run(wait=wait)
    return util.json_response(200, result.to_dict())


def clean_cache(req):
    """POST /v2/cache/clean : remove failed and stalled downloads."""
    return _run(req, policies.CLEAN, 'clean')


def prune_cache(req):
    """POST /v2/cache/prune : evict LRU images down to the size limit."""
    return _run(req, policies.PRUNE, 'prune')


def list_runs(req):
    """GET /v2/cache/runs : the recent clean and prune runs, oldest first."""
    _authorize(req, policies.RUNS)
    runs = req.environ[util.RUNNER_KEY].runs()
    return util.json_response(200, {'runs': [r.to_dict() for r in runs]})


def show_image_reference(req, image_id):
    """GET /v2/images/{image_id} : the image reference clients look up.

    python-openstackclient resolves an image before ``cached image
    queue|delete`` and gives up on a 404. cache-maint does not know Glance's
    images, so it answers for any well-formed id with the one field it can
    vouch for: the id.
    """
    _authorize(req, policies.LIST)
    return util.json_response(200, {'id': images.check_image_id(image_id)})
