"""Which cached images a process holds open: one scan of /proc per run.

glance-api streams a cached image to its client from an open file. Evicting
it then frees no space until the stream ends (the blocks stay allocated
while the file is open) and makes the next request for that image a miss:
prune leaves such images for a later run.

The scan reads the open descriptors of the processes of the cache's owner
(and of this service's user) once (``/proc/<pid>/fd`` links); it never looks
per file. Another user's process holding an image open (a cache file is
usually world-readable) does not keep it: it could hold eviction off for
good. A process of the cache's owner whose descriptors cannot be read
(``hidepid``, a container boundary, a hardening policy) could be streaming
an image unseen: the scan then protects what it found and warns, once per
process lifetime, that the protection is partial.
"""

import os

from oslo_log import log as logging

from cache_maint import cachedir

LOG = logging.getLogger(__name__)

PROC = '/proc'

_warned = False


def _warn_once(message, *args):
    global _warned
    if not _warned:
        _warned = True
        LOG.warning(message + '; images it holds open may be evicted. '
                    'Run cache-maint as the user glance-api runs as.', *args)


def open_images(cache_dir, proc=PROC):
    """The ids of the cached images some other process holds open.

    Never raises: a scan that is not permitted protects nothing (or only
    what it could see), and says so once.
    """
    base = os.path.realpath(cache_dir)
    prefix = base.rstrip('/') + '/'
    try:
        owner = os.stat(base).st_uid
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError as e:
        _warn_once('Cannot scan %s for open images (%s)', proc, e.strerror)
        return set()
    own = str(os.getpid())
    # glance-api runs as the cache's owner (or as this service's user):
    # another user reading the cache's files must not hold eviction off.
    users = {owner, os.geteuid()}
    found = set()
    hidden = 0
    for pid in pids:
        if pid == own:
            continue
        try:
            if os.stat(os.path.join(proc, pid)).st_uid not in users:
                continue
        except OSError:
            continue        # the process ended meanwhile
        fd_dir = os.path.join(proc, pid, 'fd')
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            hidden += 1
            continue
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith(prefix):
                name = target[len(prefix):]
                if cachedir.is_image_id(name):
                    found.add(name)
    if hidden:
        _warn_once('Cannot see the open files of %d processes of the '
                   "cache's owner (uid %d)", hidden, owner)
    return found
