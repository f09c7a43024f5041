"""What removing files did: the record one run of unlinks builds."""

import dataclasses
import errno
import stat

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Removal:
    """What removing a set of files did.

    ``removed`` we unlinked, freeing ``bytes_freed``; ``vanished`` were
    already gone; ``failed`` could not be removed (unlink errors are
    logged).
    ``fatal`` says why removal stopped early, on an error that dooms every
    file of the directory (read-only, permission denied).
    """

    removed: tuple = ()
    bytes_freed: int = 0
    vanished: tuple = ()
    failed: tuple = ()
    fatal: str = None
    #: The bytes each of ``removed`` freed, in the same order.
    removed_sizes: tuple = ()


# Errors that hold for a whole directory: no point trying the next file.
_DIRECTORY_ERRORS = (errno.EROFS, errno.EACCES)


class NotAFile(Exception):
    """What was under an image's name was not a regular file: left alone."""


def size_of(st):
    """The bytes unlinking an entry of this lstat frees (files only)."""
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


class Outcome:
    """Collects what a series of unlinks did, for a Removal."""

    def __init__(self):
        self.removed, self.vanished, self.failed = [], [], []
        self.sizes = []
        self.freed = 0
        self.fatal = None

    def record(self, name, error, size, where):
        """Count one unlink of ``size`` bytes that ended with ``error``.

        ``error`` is None if it worked. Returns False if the error dooms
        every file of the directory.
        """
        if error is None:
            self.removed.append(name)
            self.sizes.append(size)
            self.freed += size
        elif isinstance(error, FileNotFoundError):
            self.vanished.append(name)
        elif isinstance(error, NotAFile):
            self.failed.append(name)
        else:
            self.failed.append(name)
            if error.errno in _DIRECTORY_ERRORS:
                self.fatal = self.fatal or (
                    'cannot remove files from %s: %s' % (where,
                                                         error.strerror))
                return False
            LOG.warning('Cannot remove %s/%s: %s', where, name, error)
        return True

    def removal(self):
        return Removal(tuple(self.removed), self.freed, tuple(self.vanished),
                       tuple(self.failed), self.fatal, tuple(self.sizes))
