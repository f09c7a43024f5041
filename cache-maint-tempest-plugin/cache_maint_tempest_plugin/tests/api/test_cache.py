"""What changes the cache: prune, clean, queue, delete, clear, pins, dry runs.

Every test that changes the cache, or needs it unchanged while it looks
(the dry runs), is in ``CacheTest``: stestr runs a class's tests in one
worker, one after another, in the order of their names, while other
classes run beside them.
"""

from tempest.lib.common.utils import data_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from cache_maint_tempest_plugin.tests import base

CONF = base.CONF


class CacheTest(base.BaseCacheMaintTest):
    """The routes that change the cache, as the admin.

    ``test_cache_prune_brings_cache_under_limit`` sorts first, so it finds
    the cache as the run started (over its limit, in CI). The others change
    only what they made: they delete the ids they queued, clear only the
    queue, and unpin what they pinned.
    """

    def _snapshot(self):
        """The cached images (id: size) and the queue GET /v2/cache lists."""
        listing = self.admin_client.list_cache()
        return ({image['image_id']: image['size']
                 for image in listing['cached_images']},
                listing['queued_images'])

    def _newest_api_run(self, task=None):
        """The newest run an API request made (of ``task``, if given).

        The service's own timer and watcher may have run meanwhile, on a
        node whose timers are on: their runs are not this test's.
        """
        runs = [run for run in self.admin_client.list_runs(task=task)['runs']
                if run['trigger'] == 'API']
        self.assertNotEqual([], runs)
        return runs[-1]

    @decorators.idempotent_id('44a46c4b-c281-45f3-9b87-6f3f087687fe')
    def test_cache_prune_brings_cache_under_limit(self):
        """A prune brings the cache under its limit, as GET /v2/cache shows.

        The limit comes from GET /v2/cache/status: a prune starts above
        ``high_watermark_bytes`` (``image_cache_max_size`` by default) of
        image files, and evicts down to ``low_watermark_bytes``.

        Over its limit (the CI job fills it so, and sets ``[cache_maint]
        cache_over_limit`` so that this case cannot go untested), the prune
        evicts images, and the images listed before that are still listed
        weigh no more than the low watermark.

        Within its limit, nothing is pruned: the answer is zeros and no
        image leaves the listing. (Only images idle for ``[prune]
        max_idle_time``, which is off by default and which the status does
        not show, may go then; and a prune may evict for an image cap or a
        free-space floor the status shows crossed, never for size.)

        Either way, the counts answered are the run's, and the bytes are
        those of the images that left the listing plus those of the files
        without a record (not listed) the run removed. Pinned images are
        left out: prune never evicts them, so only another test's explicit
        delete could make one leave the listing.
        """
        status = self.admin_client.show_status()['cache']
        self.assertNotIn('error', status)
        over = status['size_bytes'] > status['high_watermark_bytes']
        if CONF.cache_maint.cache_over_limit:
            self.assertTrue(
                over, 'The cache was expected over its limit '
                '([cache_maint] cache_over_limit), but it holds %d bytes of '
                'images, high watermark %d bytes: did something prune it '
                'first (the watcher, the timer)?'
                % (status['size_bytes'], status['high_watermark_bytes']))
        pinned = self.pinned_ids()
        before = self.cached_sizes()

        result = self.admin_client.prune_cache()

        after = self.cached_sizes()
        self.assertEqual(200, result.response.status)
        self.assertEqual(base.PRUNE_KEYS, set(result))
        run = self._newest_api_run('prune')
        self.assertEqual('succeeded', run['outcome'])
        self.assertEqual(dict(result), run['result'])
        by_reason = run['by_reason']
        untracked = by_reason.get('untracked', {'files': 0, 'bytes': 0})
        gone = {image_id: size for image_id, size in before.items()
                if image_id not in after and image_id not in pinned}
        self.assertEqual(len(gone) + untracked['files'],
                         result['total_files_pruned'])
        self.assertEqual(sum(gone.values()) + untracked['bytes'],
                         result['total_bytes_pruned'])

        if over:
            self.assertGreater(result['total_files_pruned'], 0)
            kept = sum(size for image_id, size in after.items()
                       if image_id in before)
            self.assertLessEqual(
                kept, status['low_watermark_bytes'],
                'The images left weigh %d bytes, over the low watermark; '
                'the prune kept %d in use, %d pinned and %d too young.'
                % (kept, run['skipped_in_use'], run['skipped_pinned'],
                   run['skipped_young']))
            return
        self.assertNotIn('size', by_reason)
        cap = status['max_images']
        over_cap = cap is not None and status['images'] > cap
        low_space = (status['filesystem']['avail_bytes'] <
                     status['min_free_space_bytes'])
        if not over_cap and not low_space:
            self.assertEqual(set(), set(by_reason) - {'idle'})
            if 'idle' not in by_reason:
                self.assertEqual({'total_files_pruned': 0,
                                  'total_bytes_pruned': 0}, result)

    @decorators.idempotent_id('14dafb8f-72d4-49a6-94f7-87d881debfa5')
    def test_clean_cache(self):
        """A clean removes what its dry run listed, and answers the counts."""
        plan = self.admin_client.clean_cache(dry_run=True)
        result = self.admin_client.clean_cache()
        self.assertEqual(200, result.response.status)
        self.assertEqual(base.CLEAN_KEYS, set(result))
        self.assertEqual(
            {'total_files_cleaned': plan['total_files_cleaned'],
             'total_bytes_cleaned': plan['total_bytes_cleaned']}, result)
        # What it listed is gone: a dry run now lists none of it.
        again = self.admin_client.clean_cache(dry_run=True)
        self.assertEqual(set(), {f['path'] for f in plan['files']} &
                         {f['path'] for f in again['files']})

    @decorators.idempotent_id('b9acd4d3-58ca-4d61-ac4b-047a81699a47')
    def test_clean_dry_run_changes_nothing(self):
        """A dry run of clean lists what a clean would remove, and no more."""
        before = self._snapshot()
        plan = self.admin_client.clean_cache(dry_run=True)
        self.assertEqual(before, self._snapshot())

        self.assertEqual(200, plan.response.status)
        self.assertEqual(base.CLEAN_DRY_RUN_KEYS, set(plan))
        self.assertIs(True, plan['dry_run'])
        for planned in plan['files']:
            self.assertEqual(base.PLANNED_FILE_KEYS, set(planned))
            self.assertIn(planned['reason'], base.CLEAN_REASONS)
            self.assertRegex(planned['path'], r'^(invalid|incomplete)/[^/]+$')
        self.assertEqual(len(plan['files']), plan['total_files_cleaned'])
        self.assertEqual(sum(f['size'] for f in plan['files']),
                         plan['total_bytes_cleaned'])
        # Nothing was removed: a second dry run still finds what the first
        # one did (failed downloads stay until a clean).
        invalid = {f['path'] for f in plan['files']
                   if f['reason'] == 'invalid'}
        again = self.admin_client.clean_cache(dry_run=True)
        self.assertEqual(set(), invalid - {f['path'] for f in again['files']})

    @decorators.idempotent_id('a26841fd-3e42-4455-a7de-6575459527c5')
    def test_clear_queue_keeps_cached_images(self):
        image_id = self.queue_image()
        cached = set(self.cached_sizes())

        resp = self.admin_client.cache_clear(target='queue')

        self.assertEqual(204, resp.response.status)
        listing = self.admin_client.list_cache()
        self.assertNotIn(image_id, listing['queued_images'])
        self.assertEqual([], listing['queued_images'])
        self.assertEqual(set(), cached - {image['image_id'] for image in
                                          listing['cached_images']})

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('53b53ab9-8ce8-4fe9-b3dd-11891c49332b')
    def test_clear_with_invalid_target(self):
        image_id = self.queue_image()
        self.assertRaises(lib_exc.BadRequest,
                          self.admin_client.cache_clear, target='invalid')
        self.assertIn(image_id,
                      self.admin_client.list_cache()['queued_images'])

    @decorators.idempotent_id('231a14e4-63ab-44f3-9bdc-0aa9f4fe0964')
    def test_pin_and_unpin_image(self):
        """A pin holds for an image not cached yet, and keeps its note."""
        image_id = data_utils.rand_uuid()
        note = data_utils.rand_name(prefix='cache_maint', name='pin')

        pin = self.pin_image(image_id, note=note)

        self.assertEqual(201, pin.response.status)
        self.assertEqual(base.PIN_KEYS, set(pin))
        self.assertEqual(image_id, pin['image_id'])
        self.assertEqual(note, pin['note'])
        # Pinning it again keeps the pin as it was, note and time.
        again = self.admin_client.pin_image(image_id)
        self.assertEqual(200, again.response.status)
        self.assertEqual(pin, again)
        self.assertIn(dict(pin), self.admin_client.list_pins()['pins'])

        resp = self.admin_client.unpin_image(image_id)

        self.assertEqual(204, resp.response.status)
        self.assertNotIn(image_id, self.pinned_ids())
        self.assertRaises(lib_exc.NotFound,
                          self.admin_client.unpin_image, image_id)

    @decorators.idempotent_id('9219e92c-07b3-4a85-b580-7f6ac1e0ce34')
    def test_prune_dry_run_changes_nothing(self):
        """A dry run of prune lists what a prune would evict, and no more."""
        before = self._snapshot()
        plan = self.admin_client.prune_cache(dry_run=True)
        self.assertEqual(before, self._snapshot())

        self.assertEqual(200, plan.response.status)
        self.assertEqual(base.PRUNE_DRY_RUN_KEYS, set(plan))
        self.assertIs(True, plan['dry_run'])
        for planned in plan['images']:
            self.assertEqual(base.PLANNED_IMAGE_KEYS, set(planned))
            self.assertIn(planned['reason'],
                          base.EVICT_REASONS | base.KEEP_REASONS)
        going = [planned for planned in plan['images']
                 if planned['reason'] in base.EVICT_REASONS]
        self.assertEqual(len(going), plan['total_files_pruned'])
        self.assertEqual(sum(planned['size'] for planned in going),
                         plan['total_bytes_pruned'])

    @decorators.idempotent_id('e5d18986-5a2e-4e15-8b3d-aba9aa099029')
    def test_queue_and_delete_image(self):
        """cache-maint queues any well-formed id; the queue holds it once."""
        image_id = self.queue_image()
        self.assertEqual(
            1, self.admin_client.list_cache()['queued_images'].count(
                image_id))
        resp = self.admin_client.cache_queue(image_id)
        self.assertEqual(202, resp.response.status)
        self.assertEqual(
            1, self.admin_client.list_cache()['queued_images'].count(
                image_id))

        resp = self.admin_client.cache_delete(image_id)

        self.assertEqual(204, resp.response.status)
        self.assertNotIn(image_id,
                         self.admin_client.list_cache()['queued_images'])
        self.assertRaises(lib_exc.NotFound,
                          self.admin_client.cache_delete, image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('2e81af8d-7273-4fce-93dd-425c2a056d42')
    def test_queue_malformed_image_id(self):
        """An image id is a canonical UUID; anything else is a 400."""
        malformed = data_utils.rand_uuid().upper()
        self.assertRaises(lib_exc.BadRequest,
                          self.admin_client.cache_queue, malformed)
        self.assertNotIn(malformed,
                         self.admin_client.list_cache()['queued_images'])

    @decorators.idempotent_id('d7b2853a-83c9-4c07-94c6-c08f20bf18dd')
    def test_runs_record_prune(self):
        """After a prune, the newest run an API request made is that prune."""
        result = self.admin_client.prune_cache()

        runs = self.admin_client.list_runs()

        self.assertEqual({'runs'}, set(runs))
        newest = self._newest_api_run()
        self.assertEqual('prune', newest['task'])
        self.assertEqual('API', newest['trigger'])
        self.assertEqual('succeeded', newest['outcome'])
        self.assertIsNone(newest['error'])
        self.assertEqual(dict(result), newest['result'])
        self.assertGreaterEqual(newest['finished_at'], newest['started_at'])
        self.assertEqual(set(), base.RUN_KEYS - set(newest))
        self.assertEqual(newest, self._newest_api_run('prune'))
