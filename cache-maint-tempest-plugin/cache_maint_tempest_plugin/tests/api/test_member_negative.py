"""A member is refused every cache route (cache-maint's default policies).

Each refusal is a 403 that changes nothing. The requests that would change
the cache if they were served change as little as they can: they name an
image nobody caches, and clear only the queue.
"""

from tempest.lib.common.utils import data_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from cache_maint_tempest_plugin.tests import base


class CacheMemberNegativeTest(base.BaseCacheMaintMemberTest):
    """The cache routes as a member of a project, without the admin role."""

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('2a18051f-6218-49b7-9bd5-22d95a80aa62')
    def test_list_cache_as_member(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.list_cache)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('70da14a0-3e5f-4c9c-b147-96e424d49f4e')
    def test_queue_image_as_member(self):
        image_id = data_utils.rand_uuid()
        self.assertRaises(lib_exc.Forbidden,
                          self.member_client.cache_queue, image_id)
        self.assertNotIn(image_id,
                         self.admin_client.list_cache()['queued_images'])

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('7d8a43a4-9029-4688-9839-9ceaf4d73aac')
    def test_delete_image_as_member(self):
        # Refused before the image is looked for: a 403, not a 404.
        self.assertRaises(lib_exc.Forbidden,
                          self.member_client.cache_delete,
                          data_utils.rand_uuid())

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('47d3cdd6-b91c-4c8f-8cc0-907dce26c9c1')
    def test_clear_queue_as_member(self):
        self.assertRaises(lib_exc.Forbidden,
                          self.member_client.cache_clear, target='queue')

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('6dcf2758-20f6-4d1b-bcf0-8322ca5aa749')
    def test_list_cached_nodes_as_member(self):
        # Refused whatever the driver: the policy comes before the 409
        # of a driver other than centralized_db.
        self.assertRaises(lib_exc.Forbidden,
                          self.member_client.list_cached_nodes,
                          data_utils.rand_uuid())

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('0444f003-9555-4c08-9535-c61f1744a3a9')
    def test_clean_cache_as_member(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.clean_cache)
        self.assertRaises(lib_exc.Forbidden, self.member_client.clean_cache,
                          dry_run=True)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('ee512227-03ae-4612-8a94-3f6909e2e647')
    def test_prune_cache_as_member(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.prune_cache)
        self.assertRaises(lib_exc.Forbidden, self.member_client.prune_cache,
                          dry_run=True)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('fa2058d5-0eea-430b-8fe2-331127c2b236')
    def test_show_status_as_member(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.show_status)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('270c81f5-e50a-42bf-9e37-9d8e718efad9')
    def test_list_runs_as_member(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.list_runs)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('a4c6bd24-3aec-4e67-97ef-8577fddeef18')
    def test_list_pins_as_member(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.list_pins)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('29a77f3b-7880-48ba-8e84-ecc4b780e0c7')
    def test_pin_image_as_member(self):
        image_id = data_utils.rand_uuid()
        self.assertRaises(lib_exc.Forbidden, self.member_client.pin_image,
                          image_id, note='refused')
        self.assertNotIn(image_id, self.pinned_ids())

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('8be500f0-6c22-4c69-84e1-3778d0aaccfc')
    def test_unpin_image_as_member(self):
        image_id = data_utils.rand_uuid()
        pin = self.pin_image(image_id)
        self.assertRaises(lib_exc.Forbidden, self.member_client.unpin_image,
                          image_id)
        self.assertIn(dict(pin), self.admin_client.list_pins()['pins'])
