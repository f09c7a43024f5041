"""glance-api caches an image; cache-maint sees it, and removes it.

This needs a glance-api that caches into the cache cache-maint maintains
(``[cache_maint] glance_caching``): with several glance-api nodes behind
the image endpoint, the download could be served, and cached, by a node
cache-maint does not look after.

Two ways out of the cache. A prune, as the spec's scenario has it: the
image uploaded is one byte over the cache's high watermark, so that once
glance-api has cached it the cache is over its limit by that image alone,
and any prune must evict it (every other image fits under the limit with
room to spare). Where the watermark is larger than ``[cache_maint]
scenario_image_max_size`` that test is skipped. And an explicit delete,
which takes only the image named, whatever the cache's size.

Each image is pinned before it is downloaded, so that no other prune (the
timer's, the watcher's, another test's) evicts it before the test has seen
it cached; the prune test unpins it before its own prune.
"""

import io
import os

from tempest.common import utils
from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib import decorators

from cache_maint_tempest_plugin.tests import base

CONF = config.CONF


class GlanceCachingTest(base.BaseCacheMaintTest):
    """An image downloaded through Glance, then pruned or deleted.

    When tempest's ``[image] image_caching_enabled`` is set too, glance-api's
    own cache listing (``GET /v2/cache`` on the image endpoint) must agree
    with cache-maint's at each step.
    """

    credentials = ['primary', 'admin']

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.service_available.glance:
            raise cls.skipException('Glance is not available')
        if not CONF.cache_maint.glance_caching:
            raise cls.skipException(
                'No glance-api caches into the cache cache-maint maintains '
                '([cache_maint] glance_caching is false)')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.images_client = cls.os_primary.image_client_v2
        cls.glance_cache_client = (cls.os_admin.image_cache_client
                                   if CONF.image.image_caching_enabled
                                   else None)

    def _create_image(self, data):
        image = self.images_client.create_image(
            name=data_utils.rand_name(prefix=CONF.resource_name_prefix,
                                      name='cache_maint-image'),
            container_format='bare', disk_format='raw',
            visibility='private')
        self.addCleanup(self.images_client.wait_for_resource_deletion,
                        image['id'])
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        self.images_client.delete_image, image['id'])
        self.images_client.store_image_file(image['id'], io.BytesIO(data))
        self.assertEqual('active',
                         self.images_client.show_image(image['id'])['status'])
        return image['id']

    def _glance_cached(self):
        listing = self.glance_cache_client.list_cache()
        return {image['image_id'] for image in listing['cached_images']}

    def _cached_through_glance(self, data, note):
        """An image of ``data``, downloaded through Glance and so cached.

        It is pinned first, and deleted from the cache and from Glance at
        the end.
        """
        image_id = self._create_image(data)
        self.pin_image(image_id, note=note)
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        self.admin_client.cache_delete, image_id)
        self.assertNotIn(image_id, self.cached_sizes())

        body = self.images_client.show_image_file(image_id)
        self.assertEqual(data, body.data)

        # glance-api writes the image to its cache as it serves it, and
        # records it once the whole image went through.
        if not test_utils.call_until_true(
                lambda: image_id in self.cached_sizes(),
                CONF.image.build_timeout, CONF.image.build_interval):
            self.fail('Image %s, downloaded through Glance, never appeared '
                      'in the cache cache-maint lists' % image_id)
        self.assertEqual(len(data), self.cached_sizes()[image_id])
        if self.glance_cache_client is not None:
            self.assertIn(image_id, self._glance_cached())
        return image_id

    @decorators.idempotent_id('10490088-f818-4362-befc-3b3141b9855c')
    @utils.services('image')
    def test_image_cached_by_glance_pruned_by_cache_maint(self):
        status = self.admin_client.show_status()['cache']
        size = status['high_watermark_bytes'] + 1
        if size > CONF.cache_maint.scenario_image_max_size:
            raise self.skipException(
                'An image over the cache\'s high watermark (%d bytes) would '
                'be larger than [cache_maint] scenario_image_max_size (%d '
                'bytes)' % (status['high_watermark_bytes'],
                            CONF.cache_maint.scenario_image_max_size))
        data = os.urandom(size)
        image_id = self._cached_through_glance(
            data, note='tempest: cached by glance-api, then pruned')
        self.admin_client.unpin_image(image_id)

        result = self.admin_client.prune_cache()

        self.assertEqual(200, result.response.status)
        self.assertEqual(base.PRUNE_KEYS, set(result))
        # Over the limit by itself, it cannot be kept: this prune evicted
        # it, or one that ran meanwhile did.
        self.assertNotIn(image_id, self.cached_sizes())
        if self.glance_cache_client is not None:
            self.assertNotIn(image_id, self._glance_cached())
        self.assertEqual(data,
                         self.images_client.show_image_file(image_id).data)

    @decorators.idempotent_id('fa361b5b-111e-4b06-9c91-ad8e3ed5034b')
    @utils.services('image')
    def test_image_cached_by_glance_deleted_by_cache_maint(self):
        data = data_utils.random_bytes(64 * 1024)
        image_id = self._cached_through_glance(
            data, note='tempest: cached by glance-api, then deleted')

        resp = self.admin_client.cache_delete(image_id)

        self.assertEqual(204, resp.response.status)
        self.assertNotIn(image_id, self.cached_sizes())
        if self.glance_cache_client is not None:
            self.assertNotIn(image_id, self._glance_cached())
        # Glance still serves the image, from its store (and caches it
        # again: the cleanup deletes it from the cache).
        self.assertEqual(data,
                         self.images_client.show_image_file(image_id).data)
