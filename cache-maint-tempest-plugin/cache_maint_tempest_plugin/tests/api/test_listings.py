"""What only reads: the listing, the nodes, the runs, the pins, the status."""

import json

from tempest.lib.common.utils import data_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from cache_maint_tempest_plugin.tests import base

UUID_PATTERN = (r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                r'[0-9a-f]{12}$')


class CacheListingsTest(base.BaseCacheMaintTest):
    """The routes that only read, as the admin.

    Their answers are checked against the API's description, key by key;
    what they list may change meanwhile (``CacheTest`` runs beside them).
    """

    @decorators.attr(type='smoke')
    @decorators.idempotent_id('d59e46ff-9e2e-4d7f-b3d9-f82c39661eaf')
    def test_list_cache(self):
        listing = self.admin_client.list_cache()

        self.assertEqual(200, listing.response.status)
        self.assertEqual(base.CACHE_LISTING_KEYS, set(listing))
        for image in listing['cached_images']:
            self.assertEqual(base.CACHED_IMAGE_KEYS, set(image))
            self.assertRegex(image['image_id'], UUID_PATTERN)
            self.assertIsInstance(image['size'], int)
            self.assertGreaterEqual(image['size'], 0)
            self.assertIsInstance(image['hits'], int)
        for image_id in listing['queued_images']:
            self.assertRegex(image_id, UUID_PATTERN)

    @decorators.idempotent_id('0e3524b4-141d-4383-a4f7-13772dbaf38a')
    def test_show_status(self):
        status = self.admin_client.show_status()

        self.assertEqual(200, status.response.status)
        self.assertEqual(base.STATUS_KEYS, set(status))
        self.assertIn(status['driver'], base.DRIVERS)
        cache = status['cache']
        self.assertNotIn('error', cache)
        self.assertNotIn('state_error', cache)
        self.assertEqual(base.STATUS_CACHE_KEYS |
                         base.STATUS_CACHE_MEASURED_KEYS, set(cache))
        self.assertLessEqual(cache['low_watermark_bytes'],
                             cache['high_watermark_bytes'])
        self.assertLessEqual(cache['high_watermark_bytes'],
                             cache['max_size_bytes'])
        for usage in ('incomplete', 'invalid', 'queued'):
            self.assertEqual({'files', 'bytes'}, set(cache[usage]))
        self.assertEqual({'avail_bytes', 'total_bytes'},
                         set(cache['filesystem']))
        self.assertEqual({'clean', 'prune'}, set(status['tasks']))
        for task in status['tasks'].values():
            self.assertEqual({'interval', 'last_run', 'next_run'}, set(task))
        self.assertEqual({'enabled', 'active'}, set(status['watcher']))
        self.assertEqual({'running', 'started_at'}, set(status['service']))
        self.assertIs(True, status['service']['running'])

    @decorators.idempotent_id('ef555fc4-d37d-478b-bb30-653bc5eec275')
    def test_list_runs(self):
        runs = self.admin_client.list_runs()

        self.assertEqual(200, runs.response.status)
        self.assertEqual({'runs'}, set(runs))
        self.assertLessEqual(len(runs['runs']), 200)
        for run in runs['runs']:
            self.assertEqual(set(), base.RUN_KEYS - set(run))
            self.assertEqual(set(), set(run) - base.RUN_KEYS -
                             base.RUN_OPTIONAL_KEYS)
            self.assertIn(run['task'], ('clean', 'prune'))
            self.assertIn(run['outcome'], base.RUN_OUTCOMES)
        for task in ('clean', 'prune'):
            self.assertEqual(
                set(), {run['task'] for run in self.admin_client.list_runs(
                    task=task)['runs']} - {task})
        self.assertLessEqual(len(self.admin_client.list_runs(limit=1)[
            'runs']), 1)

    @decorators.idempotent_id('58df7b67-71fc-489e-a992-a50cdc9e7efb')
    def test_list_pins(self):
        pins = self.admin_client.list_pins()

        self.assertEqual(200, pins.response.status)
        self.assertEqual({'pins'}, set(pins))
        for pin in pins['pins']:
            self.assertEqual(base.PIN_KEYS, set(pin))
            self.assertRegex(pin['image_id'], UUID_PATTERN)

    @decorators.idempotent_id('4ec6cea8-3f61-4c85-b3aa-7488e1f4aa7e')
    def test_list_cached_nodes(self):
        """The nodes caching an image, with the centralized_db driver only.

        With the sqlite and xattr drivers, each node keeps its own records,
        and the route answers 409. With centralized_db, an image no node
        caches has no node, and a node lists itself for the images it
        caches.
        """
        driver = self.admin_client.show_status()['driver']
        unknown = data_utils.rand_uuid()
        if driver != 'centralized_db':
            self.assertRaises(lib_exc.Conflict,
                              self.admin_client.list_cached_nodes, unknown)
            return
        nodes = self.admin_client.list_cached_nodes(unknown)
        self.assertEqual(200, nodes.response.status)
        self.assertEqual([], nodes)
        cached = sorted(self.cached_sizes())
        if not cached:
            return
        nodes = self.admin_client.list_cached_nodes(cached[0])
        self.assertEqual(sorted(nodes), nodes)
        for url in nodes:
            self.assertIsInstance(url, str)
        if not nodes:
            # Only if it was evicted meanwhile (CacheTest prunes beside
            # this test).
            self.assertNotIn(cached[0], self.cached_sizes())

    @decorators.idempotent_id('5bbed0e2-fbbd-4c79-b508-e0eaa6a92632')
    def test_show_versions_without_token(self):
        """Version discovery needs no token, and names cache-maint.

        It also makes sure that the endpoint under test is cache-maint's,
        not glance-api's, which serves the same cache routes.
        """
        resp, body = self.admin_client.raw_request(
            self.admin_client.base_url, 'GET',
            headers={'Accept': 'application/json'})

        self.assertEqual(200, resp.status)
        versions = json.loads(body)
        self.assertEqual('cache-maint', versions['build_info']['name'])
        self.assertIn({'id': 'v2.18', 'status': 'CURRENT'},
                      [{'id': v['id'], 'status': v['status']}
                       for v in versions['versions']])
