"""Per-image operations of the cache API: list, queue, delete, clear.

Glance's semantics, on a driver: an image is cached when its regular file
is in the cache directory, queued when ``queue/<id>`` exists. Deleting an
image removes its file first and its record second, as glance-api does.
"""

import dataclasses

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint import exception

LOG = logging.getLogger(__name__)

TARGETS = ('both', 'cache', 'queue')


@dataclasses.dataclass(frozen=True)
class Cleared:
    cached: int = 0
    queued: int = 0


def check_image_id(image_id):
    """Raise InvalidImageId unless ``image_id`` is a well-formed UUID."""
    if not cachedir.is_image_id(image_id):
        raise exception.InvalidImageId('malformed image id %r' % image_id)
    return image_id


def list_cache(driver):
    """Glance's ``GET /v2/cache`` document."""
    return {'cached_images': [r.to_dict() for r in driver.list_records()],
            'queued_images': driver.cachedir.queued_images()}


def queue(driver, image_id):
    """Queue an image; False if it is already cached, caching or queued."""
    queued = driver.cachedir.queue_image(check_image_id(image_id))
    if queued:
        LOG.info('Queued image %s for caching', image_id)
    return queued


def delete(driver, image_id):
    """Remove an image from the cache and from the queue.

    Raises ImageNotCached if it was neither cached nor queued. A record
    without its file is deleted too, silently.
    """
    check_image_id(image_id)
    cache = driver.cachedir
    removal = cache.remove_images([image_id])
    unqueued = cache.unqueue(image_id)
    if removal.fatal:
        raise exception.CacheDirError(removal.fatal)
    driver.forget([image_id])
    if not (removal.removed or unqueued):
        raise exception.ImageNotCached(
            'image %s is neither cached nor queued' % image_id)
    LOG.info('Deleted image %s from the cache%s', image_id,
             ' and the queue' if unqueued else '')


def clear(driver, target='both'):
    """Empty the cache, the queue, or both; return what went."""
    if target not in TARGETS:
        raise exception.InvalidClearTarget(
            'invalid x-image-cache-clear-target %r' % target)
    cached = queued = 0
    cache = driver.cachedir
    if target in ('both', 'cache'):
        lru_ids, files = driver.snapshot()
        removal = cache.remove_images(list(files))
        driver.forget(set(lru_ids) | set(removal.removed))
        if removal.fatal:
            raise exception.CacheDirError(removal.fatal)
        cached = len(removal.removed)
    if target in ('both', 'queue'):
        removal = cache.remove_from(cachedir.QUEUE)
        if removal.fatal:
            raise exception.CacheDirError(removal.fatal)
        queued = len(removal.removed)
    LOG.info('Cleared %d cached and %d queued images', cached, queued)
    return Cleared(cached, queued)


def cached_nodes(driver, image_id):
    """The URLs of the nodes that have cached an image (centralized_db)."""
    return driver.cached_nodes(check_image_id(image_id))
