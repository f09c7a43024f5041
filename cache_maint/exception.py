"""Errors cache-maint raises, each with a log message and a public one.

``str(exc)`` is the full message for the log (it may name paths). The API
only ever shows ``exc.public_message``, which names no host path, and answers
with ``exc.code``.
"""


class CacheMaintError(Exception):
    """Base class: a clear message, a public message and an HTTP code."""

    code = 500
    public_fmt = 'Cache maintenance failed; the cache-maint log has the cause.'
    #: Seconds after which a client may try again (``Retry-After``).
    retry_after = None

    def __init__(self, message, **public_kwargs):
        super().__init__(message)
        self.public_message = self.public_fmt.format(**public_kwargs)


class ConfigError(CacheMaintError):
    """The configuration cannot work; the message names the option."""


class NodeIdentityError(ConfigError):
    """The metadata store seems to know this node under another name."""

    public_fmt = ("This node's records cannot be found in the cache "
                  'metadata; the cache-maint log has the cause.')


class CacheDirError(CacheMaintError):
    """The cache directory is missing, not a directory or not writable."""

    public_fmt = ('The image cache directory is not usable; the cache-maint '
                  'log has the cause.')


class AlreadyRunning(CacheMaintError):
    """Another cache-maint service maintains this cache already."""


class MetadataError(CacheMaintError):
    """The cache metadata store is unreachable, locked or corrupt."""

    code = 503
    public_fmt = ('The image cache metadata is not usable right now; the '
                  'cache-maint log has the cause.')


class MetadataFull(MetadataError):
    """The metadata store's filesystem has no room for a change."""


class StateError(CacheMaintError):
    """cache-maint's own state database cannot be read or written."""

    code = 503
    public_fmt = ("cache-maint's state (pins, run history) is not usable "
                  'right now; the cache-maint log has the cause.')


class TaskInProgress(CacheMaintError):
    """Another run of the same task held its lock for the whole wait."""

    code = 409
    public_fmt = ('A {task} run is already in progress and did not finish '
                  'within {wait} s; try again later.')


class ServiceStopping(CacheMaintError):
    """The service is stopping and will not start a run now."""

    code = 503
    public_fmt = 'cache-maint is stopping; try again in a moment.'
    retry_after = 5


class PolicyNotAuthorized(CacheMaintError):
    """The policy refused the request."""

    code = 403
    public_fmt = 'You are not authorized to complete {action} action.'


class PolicyUnavailable(CacheMaintError):
    """The policy rules cannot be loaded, so no request can be allowed."""

    code = 503
    public_fmt = ('The policy rules cannot be loaded; the cache-maint log has '
                  'the cause.')


class InvalidImageId(CacheMaintError):
    """An image id that is not a well-formed UUID."""

    code = 400
    public_fmt = ('Invalid image id: an image id is a lower-case UUID of '
                  'the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.')


class InvalidClearTarget(CacheMaintError):
    """An x-image-cache-clear-target that is not cache, queue or both."""

    code = 400
    public_fmt = ('x-image-cache-clear-target must be "cache", "queue", '
                  '"both" or empty (both).')


class ImageNotCached(CacheMaintError):
    """The image is neither cached nor queued on this node."""

    code = 404
    public_fmt = 'The image is neither cached nor queued.'


class CachedNodesUnsupported(CacheMaintError):
    """Only the centralized_db driver knows which nodes cache an image."""

    code = 409
    public_fmt = ('Listing the nodes that cache an image needs the '
                  'centralized_db cache driver.')


class NotPinned(CacheMaintError):
    """An unpin of an image that is not pinned."""

    code = 404
    public_fmt = 'Image {image_id} is not pinned.'


class InvalidPinNote(CacheMaintError):
    """A pin's note that is not short printable text."""

    code = 400
    public_fmt = ('A pin note must be printable text of at most {limit} '
                  'characters.')


class TooManyPins(CacheMaintError):
    """A pin beyond the most the state keeps."""

    code = 409
    public_fmt = ('{limit} images are pinned already, the most there may be; '
                  'unpin one first.')
