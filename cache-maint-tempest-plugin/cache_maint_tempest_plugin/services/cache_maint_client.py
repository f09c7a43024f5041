"""The service client of cache-maint's API: Glance's cache routes, and its own.

Every method checks the exact success status of api-ref/openapi.yaml in
the cache-maint repository and returns the decoded body (a
``ResponseBody``, or a ``ResponseBodyList`` for the nodes of an image).
"""

import json
from urllib import parse

from tempest.lib.common import rest_client

from cache_maint_tempest_plugin.services import endpoint_auth


class CacheMaintClient(rest_client.RestClient):
    """cache-maint's ``/v2/cache`` API.

    With ``endpoint`` (``[cache_maint] endpoint``), every request goes to
    that URL, with the token of the client's credentials; without it, to
    the endpoint the catalog lists for the client's ``service``
    (``[cache_maint] catalog_type``).
    """

    api_version = 'v2'

    def __init__(self, auth_provider, service, region, endpoint=None,
                 **kwargs):
        if endpoint:
            auth_provider = endpoint_auth.EndpointAuthProvider(
                auth_provider, endpoint)
        super().__init__(auth_provider, service, region, **kwargs)

    def _json(self, resp, body, status):
        self.expected_success(status, resp.status)
        body = json.loads(body)
        if isinstance(body, list):
            return rest_client.ResponseBodyList(resp, body)
        return rest_client.ResponseBody(resp, body)

    @staticmethod
    def _url(path, **params):
        params = {k: v for k, v in params.items() if v is not None}
        if params:
            path += '?' + parse.urlencode(params)
        return path

    # Glance's image cache API (Image API v2.14 to v2.18).

    def list_cache(self):
        """GET /v2/cache: the cached images and the queued ones."""
        resp, body = self.get('cache')
        return self._json(resp, body, 200)

    def cache_queue(self, image_id):
        """PUT /v2/cache/{image_id}: queue an image for caching."""
        resp, _ = self.put('cache/%s' % image_id, None)
        self.expected_success(202, resp.status)
        return rest_client.ResponseBody(resp)

    def cache_delete(self, image_id):
        """DELETE /v2/cache/{image_id}: drop an image from cache and queue."""
        resp, _ = self.delete('cache/%s' % image_id)
        self.expected_success(204, resp.status)
        return rest_client.ResponseBody(resp)

    def cache_clear(self, target=None):
        """DELETE /v2/cache: clear ``target`` (cache or queue), or both.

        ``target`` is sent as it is, in ``x-image-cache-clear-target``;
        None sends no header, which clears both.
        """
        headers = {}
        if target is not None:
            headers['x-image-cache-clear-target'] = target
        resp, _ = self.delete('cache', headers=headers, extra_headers=True)
        self.expected_success(204, resp.status)
        return rest_client.ResponseBody(resp)

    def list_cached_nodes(self, image_id):
        """GET /v2/cache/nodes/{image_id}: the nodes caching an image."""
        resp, body = self.get('cache/nodes/%s' % image_id)
        return self._json(resp, body, 200)

    def clean_cache(self, dry_run=None):
        """POST /v2/cache/clean: remove failed and stalled downloads.

        With ``dry_run=True``, nothing is removed: the answer lists what a
        clean would remove.
        """
        return self._run('clean', dry_run)

    def prune_cache(self, dry_run=None):
        """POST /v2/cache/prune: evict images down to the cache's limits.

        With ``dry_run=True``, nothing is evicted: the answer lists what a
        prune would evict.
        """
        return self._run('prune', dry_run)

    def _run(self, task, dry_run):
        if dry_run is not None:
            dry_run = 'true' if dry_run else 'false'
        resp, body = self.post(self._url('cache/%s' % task, dry_run=dry_run),
                               None)
        return self._json(resp, body, 200)

    # cache-maint's own routes.

    def list_runs(self, task=None, limit=None):
        """GET /v2/cache/runs: the recent clean and prune runs, oldest first.

        ``task`` keeps one task's runs, ``limit`` the most recent ones.
        """
        resp, body = self.get(self._url('cache/runs', task=task, limit=limit))
        return self._json(resp, body, 200)

    def show_status(self):
        """GET /v2/cache/status: the cache against its limits, the tasks."""
        resp, body = self.get('cache/status')
        return self._json(resp, body, 200)

    def list_pins(self):
        """GET /v2/cache/pins: the images prune never evicts."""
        resp, body = self.get('cache/pins')
        return self._json(resp, body, 200)

    def pin_image(self, image_id, note=None):
        """PUT /v2/cache/pins/{image_id}: pin an image, with a note or not.

        201 for a new pin, 200 for an image pinned already; the body is the
        pin either way.
        """
        body = json.dumps({'note': note}) if note is not None else None
        resp, body = self.put('cache/pins/%s' % image_id, body)
        return self._json(resp, body, [200, 201])

    def unpin_image(self, image_id):
        """DELETE /v2/cache/pins/{image_id}: unpin an image (404 if not)."""
        resp, _ = self.delete('cache/pins/%s' % image_id)
        self.expected_success(204, resp.status)
        return rest_client.ResponseBody(resp)
