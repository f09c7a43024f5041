"""Base classes of the cache-maint tests, and what the API's answers hold.

The key sets are those of api-ref/openapi.yaml in the cache-maint
repository; the tests compare answers to them exactly.
"""

from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest import test

CONF = config.CONF

CACHE_LISTING_KEYS = {'cached_images', 'queued_images'}
CACHED_IMAGE_KEYS = {'image_id', 'hits', 'last_accessed', 'last_modified',
                     'size'}
CLEAN_KEYS = {'total_files_cleaned', 'total_bytes_cleaned'}
PRUNE_KEYS = {'total_files_pruned', 'total_bytes_pruned'}
CLEAN_DRY_RUN_KEYS = CLEAN_KEYS | {'dry_run', 'files'}
PRUNE_DRY_RUN_KEYS = PRUNE_KEYS | {'dry_run', 'images'}
PLANNED_FILE_KEYS = {'path', 'size', 'reason'}
PLANNED_IMAGE_KEYS = {'image_id', 'size', 'last_accessed', 'hits', 'reason'}
#: Why a prune evicts an image, and why it keeps one a target wants gone.
EVICT_REASONS = {'untracked', 'size', 'count', 'free_space', 'idle'}
KEEP_REASONS = {'pinned', 'in_use', 'min_age'}
CLEAN_REASONS = {'invalid', 'stalled'}
PIN_KEYS = {'image_id', 'pinned_at', 'note'}
RUN_KEYS = {'task', 'trigger', 'started_at', 'finished_at', 'outcome',
            'error', 'result', 'failures', 'by_reason', 'duration',
            'removed', 'removed_omitted', 'skipped_in_use', 'skipped_pinned',
            'skipped_young', 'pid'}
#: ``id`` is absent when the state could not be written.
RUN_OPTIONAL_KEYS = {'id', 'records'}
RUN_OUTCOMES = {'succeeded', 'stopped', 'failed'}
STATUS_KEYS = {'cache', 'driver', 'tasks', 'watcher', 'service'}
STATUS_CACHE_KEYS = {'max_size_bytes', 'high_watermark_bytes',
                     'low_watermark_bytes', 'max_images', 'eviction_policy',
                     'pins'}
#: What the status measures of the cache, there when it can be read.
STATUS_CACHE_MEASURED_KEYS = {'size_bytes', 'images', 'incomplete',
                              'invalid', 'queued', 'filesystem',
                              'min_free_space_bytes'}
DRIVERS = {'sqlite', 'xattr', 'centralized_db'}
#: The routes that need a token, as (method, path under /v2, headers);
#: ``{id}`` stands for an image id. Each would change as little as it can
#: if it were (wrongly) served: clear only the queue, and name an image
#: nobody caches.
TOKEN_ROUTES = [
    ('GET', 'cache', {}),
    ('DELETE', 'cache', {'x-image-cache-clear-target': 'queue'}),
    ('PUT', 'cache/{id}', {}),
    ('DELETE', 'cache/{id}', {}),
    ('GET', 'cache/nodes/{id}', {}),
    ('POST', 'cache/clean', {}),
    ('POST', 'cache/clean?dry_run=true', {}),
    ('POST', 'cache/prune', {}),
    ('POST', 'cache/prune?dry_run=true', {}),
    ('GET', 'cache/runs', {}),
    ('GET', 'cache/status', {}),
    ('GET', 'cache/pins', {}),
    ('PUT', 'cache/pins/{id}', {}),
    ('DELETE', 'cache/pins/{id}', {}),
    ('GET', 'images/{id}', {}),
]


class BaseCacheMaintTest(test.BaseTestCase):
    """cache-maint's API, through the admin's client.

    cache-maint's default policies allow the admin role, and no other, on
    every route but version discovery.
    """

    credentials = ['admin']

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.service_available.cache_maint:
            raise cls.skipException('cache-maint is not available: '
                                    '[service_available] cache_maint is '
                                    'false')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.admin_client = cls.os_admin.cache_maint.CacheMaintClient()

    def cached_sizes(self):
        """{image id: size} of the cached images GET /v2/cache lists."""
        return {image['image_id']: image['size']
                for image in self.admin_client.list_cache()['cached_images']}

    def pinned_ids(self):
        return {pin['image_id'] for pin in self.admin_client.list_pins()[
            'pins']}

    def queue_image(self):
        """Queue a new random image id; it is deleted when the test ends."""
        image_id = data_utils.rand_uuid()
        self.admin_client.cache_queue(image_id)
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        self.admin_client.cache_delete, image_id)
        return image_id

    def pin_image(self, image_id, note=None):
        """Pin ``image_id``; it is unpinned when the test ends."""
        pin = self.admin_client.pin_image(image_id, note=note)
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        self.admin_client.unpin_image, image_id)
        return pin


class BaseCacheMaintMemberTest(BaseCacheMaintTest):
    """The same API through a member's client, which the policies refuse."""

    credentials = ['primary', 'admin']

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.member_client = cls.os_primary.cache_maint.CacheMaintClient()
