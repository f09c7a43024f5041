"""Pinned images: what prune never evicts, whatever its targets.

A pin is cache-maint's own, kept in the cache's state: Glance knows nothing
of it, so an explicit ``DELETE /v2/cache/{image_id}`` (or glance-api's own
prune) still removes a pinned image, and the pin stays for when the image
is cached again. An image need not be cached to be pinned.
"""

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint import exception
from cache_maint import state

LOG = logging.getLogger(__name__)


def check_note(note):
    """Return ``note``; raise InvalidPinNote unless it is short text."""
    if note is None:
        return ''
    if not isinstance(note, str) or len(note) > state.MAX_NOTE or any(
            not ch.isprintable() for ch in note):
        raise exception.InvalidPinNote(
            'a pin note must be printable text of at most %d characters'
            % state.MAX_NOTE, limit=state.MAX_NOTE)
    return note


def pin(cache, image_id, note=None):
    """Pin an image; return (pin, created)."""
    found, created = cache.state.pin(cachedir.check_image_id(image_id),
                                     check_note(note))
    if created:
        LOG.info('Pinned image %s: prune will not evict it', image_id)
    return found, created


def unpin(cache, image_id):
    """Unpin an image; raise NotPinned if it was not pinned."""
    if not cache.state.unpin(cachedir.check_image_id(image_id)):
        raise exception.NotPinned('image %s is not pinned' % image_id,
                                  image_id=image_id)
    LOG.info('Unpinned image %s: prune may evict it again', image_id)


def list_pins(cache):
    return cache.state.pins()
