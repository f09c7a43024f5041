"""Per-image operations of the cache API: list, queue, delete, clear.

Glance's semantics, on a ``cache.Cache``: an image is cached when its
regular file is in the cache directory, queued when ``queue/<id>`` exists.
Deleting an image removes its record first and its file second, as prune
does (see ``cache_maint.evictor``): glance-api can then always record the
image again once its file is gone. A file that stays gets its record back.
"""

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint import evictor
from cache_maint import exception

LOG = logging.getLogger(__name__)

TARGETS = ('both', 'cache', 'queue')


def listing(cache):
    """The cached images' records, by id, and the queued images' ids."""
    return cached_records(cache), cache.files.queued_images()


def cached_records(cache):
    """The records GET /v2/cache lists, ordered by image id.

    Every record of a local store, as Glance lists them. A store shared by
    many nodes is read for the images on disk alone, by id: reading all
    of this node's records would read every node's. A record whose file is
    gone is then not listed (Glance would list it): the image is not
    cached, and the next clean deletes the record.
    """
    if not cache.metadata.shared:
        return cache.metadata.list_records()
    return sorted(cache.metadata.records_of(cache.files.scan_images()),
                  key=lambda record: record.image_id)


def list_cache(cache):
    """Glance's ``GET /v2/cache`` document."""
    records, queued = listing(cache)
    return {'cached_images': [r.to_dict() for r in records],
            'queued_images': queued}


def queue(cache, image_id):
    """Queue an image; False if it is already cached, caching or queued."""
    queued = cache.files.queue_image(image_id)
    if queued:
        LOG.info('Queued image %s for caching', image_id)
    return queued


def delete(cache, image_id):
    """Remove an image from the cache and from the queue.

    Raises ImageNotCached if it was neither cached, recorded nor queued. A
    file that is there but cannot be removed fails the request and keeps
    its record.
    """
    files = cache.files
    was_cached = files.has_image(cachedir.check_image_id(image_id))
    removal, forgotten = evictor.records_first(
        cache, [image_id], lambda: files.remove_images([image_id]))
    if removal.fatal or (was_cached and removal.failed):
        raise exception.CacheDirError(
            removal.fatal or 'cannot remove cached image %s/%s'
            % (files.path, image_id))
    unqueued = files.unqueue(image_id)
    if not (removal.removed or unqueued or forgotten):
        raise exception.ImageNotCached(
            'image %s is neither cached nor queued' % image_id)
    LOG.info('Deleted image %s from the cache%s', image_id,
             ' and the queue' if unqueued else '')


def clear(cache, target='both'):
    """Empty the cache, the queue, or both."""
    if target not in TARGETS:
        raise exception.InvalidClearTarget(
            'invalid x-image-cache-clear-target %r' % target)
    cached = queued = 0
    if target in ('both', 'cache'):
        # Every record goes, those without a file too: all of them are
        # read, records first (glance-api makes a file before its record).
        recorded = cache.metadata.recorded_ids()
        files = cache.files.scan_images()
        removal, _ = evictor.records_first(
            cache, list(files) + [image_id for image_id in recorded
                                  if image_id not in files],
            lambda: cache.files.remove_images(list(files)))
        if removal.fatal:
            raise exception.CacheDirError(removal.fatal)
        cached = len(removal.removed)
    if target in ('both', 'queue'):
        removal = cache.files.remove_from(cachedir.QUEUE)
        if removal.fatal:
            raise exception.CacheDirError(removal.fatal)
        queued = len(removal.removed)
    LOG.info('Cleared %d cached and %d queued images', cached, queued)


def cached_nodes(cache, image_id):
    """The URLs of the nodes that have cached an image (centralized_db)."""
    return cache.metadata.cached_nodes(cachedir.check_image_id(image_id))
