"""Paced deletion: ``[prune] max_delete_rate`` bytes a second at most.

A prune of many GB, freed as fast as the filesystem can, competes with
glance-api's reads of the same disk: freeing a multi-GB file's extents
(and, on SSDs, discarding them) is work the disk does while glance-api
waits. Paced, prune frees one step (half a second at the rate) at a time
and waits between steps, so the disk serves glance-api in between.

A file larger than a step is released in steps: it is opened, unlinked,
then truncated from the end one step at a time, and closed. Truncating a
file glance-api is still sending to a client would cut that download
short, so truncation happens only once the file has no name left and the
kernel grants a write lease on it, which it does only if no other open
file description of it exists anywhere; otherwise the file is just closed,
and the space comes back when its last reader closes it, as with any
unlink. The lease is dropped at once: with no name left, nothing can open
the file anew (only through ``/proc/<cache-maint's pid>/fd``).

Time is the monotonic clock, so a jump of the wall clock neither stalls a
paced prune nor lets it burst; a stop request ends a wait at once.
"""

import errno
import fcntl
import os
import stat
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Seconds of deletion at the rate that make one step.
STEP_SECONDS = 0.5

#: The smallest step, in bytes, however low the rate: fewer system calls.
MIN_STEP = 1024 * 1024

#: Errors that say a lease cannot be had on this file or filesystem at all
#: (not ours and no CAP_LEASE; a filesystem without leases).
_NO_LEASES = (errno.EACCES, errno.EPERM, errno.EINVAL, errno.ENOLCK)

_OPEN_FLAGS = (os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)


class Pacer:
    """Keeps the bytes freed at or under ``rate`` a second.

    ``freed(n)`` returns n / rate seconds after the time the previous
    bytes allowed, or after now if that is past: time spent on other work
    earns no burst.
    """

    def __init__(self, rate, stop_event=None, clock=time.monotonic):
        if rate <= 0:
            raise ValueError('a pacer needs a rate above 0')
        self.rate = rate
        #: Bytes freed in one go: one batch of small files, or one
        #: truncation of a large one.
        self.step = max(MIN_STEP, int(rate * STEP_SECONDS))
        self._stop_event = stop_event or threading.Event()
        self._clock = clock
        self._due = None
        #: Seconds spent waiting, for the run's record.
        self.waited = 0.0
        self.warned_no_leases = False

    @property
    def stopping(self):
        return self._stop_event.is_set()

    def freed(self, nbytes):
        """Count ``nbytes`` just freed; wait as the rate says.

        Returns False, at once, if a stop was requested.
        """
        now = self._clock()
        self._due = max(self._due or now, now) + nbytes / self.rate
        delay = self._due - now
        if delay > 0:
            self.waited += delay
            if self._stop_event.wait(delay):
                return False
        return not self.stopping


def release(fd, pacer):
    """Free an unlinked file held open at ``fd`` in steps, then close it.

    Truncated only if nothing else has it open (see the module's doc);
    either way its bytes count against the rate.
    """
    try:
        size = os.fstat(fd).st_size
        if not _alone(fd, pacer):
            pacer.freed(size)
            return
        while size > 0:
            left = max(0, size - pacer.step)
            os.ftruncate(fd, left)
            freed, size = size - left, left
            if not pacer.freed(freed):
                return      # closing frees the rest at once
    except OSError as e:
        LOG.warning('Could not release an evicted image in steps (%s); its '
                    'space comes back at once', e)
    finally:
        os.close(fd)


def _alone(fd, pacer):
    """True if no other open file description of this nameless file exists.

    The kernel grants a write lease only then; it is dropped at once (a
    lease broken later would signal this process).
    """
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 0:
        return False    # another name still reaches it
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    except OSError as e:
        if e.errno in _NO_LEASES and not pacer.warned_no_leases:
            pacer.warned_no_leases = True
            LOG.warning('No write lease on evicted images here (%s): large '
                        'images are unlinked whole, not released in steps',
                        e.strerror)
        return False    # EAGAIN: open elsewhere
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return True


def hold(base, name):
    """An fd to release ``name`` in ``base`` with, or None.

    None if it is no regular file or cannot be opened for writing: a plain
    unlink then removes the name, whatever it is.
    """
    try:
        fd = os.open(name, _OPEN_FLAGS, dir_fd=base)
    except OSError:
        return None     # the plain unlink that follows says what it is
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def close(fd):
    """Close what ``hold`` returned, if anything."""
    if fd is not None:
        os.close(fd)
