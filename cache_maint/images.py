"""Per-image operations of the cache API: list, queue, delete, clear.

Glance's semantics, on a driver: an image is cached when its regular file
is in the cache directory, queued when ``queue/<id>`` exists. Deleting an
image removes its record first and its file second, as prune does (see
``cache_maint.evictor``): glance-api can then always record the image again
once its file is gone. A file that stays gets its record back.
"""

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint import evictor
from cache_maint import exception

LOG = logging.getLogger(__name__)

TARGETS = ('both', 'cache', 'queue')


def check_image_id(image_id):
    """Raise InvalidImageId unless ``image_id`` is a well-formed UUID."""
    if not cachedir.is_image_id(image_id):
        raise exception.InvalidImageId('malformed image id %r' % image_id)
    return image_id


def listing(driver):
    """The cached images' records, by id, and the queued images' ids."""
    return driver.list_records(), driver.cachedir.queued_images()


def list_cache(driver):
    """Glance's ``GET /v2/cache`` document."""
    records, queued = listing(driver)
    return {'cached_images': [r.to_dict() for r in records],
            'queued_images': queued}


def queue(driver, image_id):
    """Queue an image; False if it is already cached, caching or queued."""
    queued = driver.cachedir.queue_image(check_image_id(image_id))
    if queued:
        LOG.info('Queued image %s for caching', image_id)
    return queued


def delete(driver, image_id):
    """Remove an image from the cache and from the queue.

    Raises ImageNotCached if it was neither cached, recorded nor queued. A
    file that is there but cannot be removed fails the request and keeps
    its record.
    """
    check_image_id(image_id)
    cache = driver.cachedir
    was_cached = cache.has_image(image_id)
    removal, forgotten = evictor.records_first(
        driver, [image_id], lambda: cache.remove_images([image_id]))
    if removal.fatal or (was_cached and removal.failed):
        raise exception.CacheDirError(
            removal.fatal or 'cannot remove cached image %s/%s'
            % (cache.path, image_id))
    unqueued = cache.unqueue(image_id)
    if not (removal.removed or unqueued or forgotten):
        raise exception.ImageNotCached(
            'image %s is neither cached nor queued' % image_id)
    LOG.info('Deleted image %s from the cache%s', image_id,
             ' and the queue' if unqueued else '')


def clear(driver, target='both'):
    """Empty the cache, the queue, or both."""
    if target not in TARGETS:
        raise exception.InvalidClearTarget(
            'invalid x-image-cache-clear-target %r' % target)
    cached = queued = 0
    cache = driver.cachedir
    if target in ('both', 'cache'):
        lru_ids, files = driver.snapshot()
        removal, _ = evictor.records_first(
            driver, list(files) + [image_id for image_id in lru_ids
                                   if image_id not in files],
            lambda: cache.remove_images(list(files)))
        if removal.fatal:
            raise exception.CacheDirError(removal.fatal)
        cached = len(removal.removed)
    if target in ('both', 'queue'):
        removal = cache.remove_from(cachedir.QUEUE)
        if removal.fatal:
            raise exception.CacheDirError(removal.fatal)
        queued = len(removal.removed)
    LOG.info('Cleared %d cached and %d queued images', cached, queued)


def cached_nodes(driver, image_id):
    """The URLs of the nodes that have cached an image (centralized_db)."""
    return driver.cached_nodes(check_image_id(image_id))
