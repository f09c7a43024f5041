"""Handlers of Glance's image cache routes.

Each handler starts with the policy check of its route, before it reads
anything of the request, and is given what it works on when the
application is built: the cache, the record of runs, the shared runs of
clean and prune, and how long a request waits for one.
"""

import webob

from cache_maint.api import listing
from cache_maint.api import util
from cache_maint import cachedir
from cache_maint import images
from cache_maint import pins
from cache_maint.policies import cache as policies
from cache_maint import state


def _no_content(status=204):
    response = webob.Response(status=status)
    del response.content_type    # an empty answer has no type either
    return response


class CacheHandlers:
    """The cache routes over one ``cache.Cache``.

    ``runner`` keeps the record of runs (``runs.TaskRunner``), ``flights``
    shares runs between requests (``singleflight.Flights``), and
    ``task_wait`` is ``[api] task_wait_timeout``.
    """

    def __init__(self, cache, runner, flights, task_wait, status=None):
        self._cache = cache
        self._runner = runner
        self._flights = flights
        self._task_wait = task_wait
        #: status() makes the GET /v2/cache/status document.
        self._status = status

    def list_cache(self, req):
        """GET /v2/cache : the cached images and the queue."""
        util.context(req).can(policies.LIST)
        records, queued = images.listing(self._cache)
        return util.json_text_response(200, listing.encode(records, queued))

    def queue_image(self, req, image_id):
        """PUT /v2/cache/{image_id} : queue an image for caching."""
        util.context(req).can(policies.QUEUE)
        util.read_empty_body(req)
        images.queue(self._cache, image_id)
        return _no_content(202)

    def delete_image(self, req, image_id):
        """DELETE /v2/cache/{image_id} : drop an image from cache and queue."""
        util.context(req).can(policies.DELETE)
        images.delete(self._cache, image_id)
        return _no_content()

    def clear_cache(self, req):
        """DELETE /v2/cache : empty the cache, the queue, or both."""
        util.context(req).can(policies.DELETE)
        # Only HTTP's own whitespace (space, tab) is trimmed: str.strip()
        # would also drop U+00A0 or U+0085, and "cache\xa0" would clear the
        # cache.
        target = req.headers.get('x-image-cache-clear-target', '')
        images.clear(self._cache, target.strip(' \t').lower() or 'both')
        return _no_content()

    def list_cached_nodes(self, req, image_id):
        """GET /v2/cache/nodes/{image_id} : the nodes caching an image."""
        util.context(req).can(policies.NODES)
        return util.json_response(200, images.cached_nodes(self._cache,
                                                           image_id))

    def clean_cache(self, req):
        """POST /v2/cache/clean : remove failed and stalled downloads."""
        util.context(req).can(policies.CLEAN)
        return self._run(req, 'clean')

    def prune_cache(self, req):
        """POST /v2/cache/prune : evict LRU images down to the size limit."""
        util.context(req).can(policies.PRUNE)
        return self._run(req, 'prune')

    def _run(self, req, task):
        """Share the next run of a task, waiting for a run held elsewhere.

        The server serves these requests from threads of their own (see
        router.WAITING): waiting here holds up no other request. With
        ``?dry_run=true``, nothing is removed and nothing waited for: the
        answer lists what a run would remove now.
        """
        util.only_params(req, ('dry_run',))
        dry_run = util.bool_param(req, 'dry_run')
        util.read_empty_body(req)
        if dry_run:
            result = self._runner.preview(task)
        else:
            result = self._flights.run(task, wait=self._task_wait)
        return util.json_response(200, result.to_dict())

    def list_runs(self, req):
        """GET /v2/cache/runs : recent runs, oldest first.

        ``?task=clean|prune`` keeps one task's; ``?limit=N`` the N most
        recent.
        """
        util.context(req).can(policies.RUNS)
        util.only_params(req, ('task', 'limit'))
        task = util.choice_param(req, 'task', ('clean', 'prune'))
        limit = util.int_param(req, 'limit', 1, state.RUN_HISTORY,
                               state.RUN_HISTORY)
        return util.json_response(200, {'runs': self._runner.runs(
            task=task, limit=limit)})

    def show_status(self, req):
        """GET /v2/cache/status : the cache, its limits and its tasks."""
        util.context(req).can(policies.STATUS)
        util.only_params(req, ())
        return util.json_response(200, self._status())

    def list_pins(self, req):
        """GET /v2/cache/pins : the images prune never evicts."""
        util.context(req).can(policies.PINS_LIST)
        util.only_params(req, ())
        return util.json_response(200, {'pins': pins.list_pins(self._cache)})

    def pin_image(self, req, image_id):
        """PUT /v2/cache/pins/{image_id} : pin an image (201, or 200)."""
        util.context(req).can(policies.PIN)
        util.only_params(req, ())
        note = util.read_json_object(req, {'note': str}).get('note')
        pin, created = pins.pin(self._cache, image_id, note)
        return util.json_response(201 if created else 200, pin)

    def unpin_image(self, req, image_id):
        """DELETE /v2/cache/pins/{image_id} : unpin an image (404 if not)."""
        util.context(req).can(policies.UNPIN)
        util.only_params(req, ())
        pins.unpin(self._cache, image_id)
        return _no_content()

    def show_image_reference(self, req, image_id):
        """GET /v2/images/{image_id} : the image reference clients look up.

        python-openstackclient resolves an image before ``cached image
        queue|delete`` and gives up on a 404. cache-maint does not know
        Glance's images, so it answers for any well-formed id with the one
        field it can vouch for: the id.
        """
        util.context(req).can(policies.LIST)
        return util.json_response(200, {
            'id': cachedir.check_image_id(image_id)})
