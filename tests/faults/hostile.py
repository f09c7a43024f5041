"""Helpers of the hostile-input, access and configuration fault tests.

Whether an answer discloses anything of the host, and snapshots of
directory trees that never follow a link or open a FIFO. Raw HTTP and the
daemon harness are in ``tests.support``.
"""

import hashlib
import os
import stat


def assert_clean_error(reply, status, *secrets):
    """A JSON error of ``status`` that tells nothing of the host."""
    assert reply.status == status, reply
    assert reply.headers.get('content-type', '').startswith(
        'application/json'), reply
    error = reply.json()['error']
    assert error['code'] == status, reply
    assert error['message'], reply
    assert_discloses_nothing(reply, *secrets)
    return error['message']


def assert_discloses_nothing(reply, *secrets):
    """No traceback, no host path and nothing of the request echoed."""
    text = reply.body.decode('latin-1')
    assert 'Traceback' not in text, reply
    assert '\x00' not in text, reply
    for secret in secrets:
        assert str(secret) not in text, (secret, reply)


def tree(*roots, skip=()):
    """Everything about the entries under ``roots`` that a fault could change.

    Entries are lstat'ed, never followed: a symlink is recorded by its
    target, a regular file by its content's hash, a FIFO by its mode alone
    (opening it would block). Link counts and ctimes are left out: they
    change when another name of a hard-linked file is removed.
    """
    entries = {}
    for root in roots:
        root = str(root)
        if not os.path.lexists(root):
            entries[root] = None
            continue
        for path in _walk(root, skip):
            entries[path] = _describe(path)
    return entries


def _walk(root, skip=()):
    """``root`` and what is under it, less the entries named in ``skip``."""
    yield root
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        return
    for name in sorted(os.listdir(root)):
        if name not in skip:
            yield from _walk(os.path.join(root, name), skip)


def _describe(path):
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    detail = None
    if stat.S_ISLNK(st.st_mode):
        detail = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        with open(path, 'rb') as f:
            detail = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISDIR(st.st_mode):
        detail = tuple(sorted(os.listdir(path)))
    mtime = None if stat.S_ISLNK(st.st_mode) else st.st_mtime_ns
    return (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_size, mtime,
            detail)


#: What a run or a service creates for itself in the cache directory: lock
#: files, and cache-maint's state (its record of runs, its pins).
STATE_DIR = '.cache-maint'
OWN_ENTRIES = ('glance-cache-', 'image_cache_db_init', 'cache-maint-service',
               STATE_DIR)


def cache_tree(cache):
    """The cache's files, less the service's own (OWN_ENTRIES).

    The cache directory's own entry lists its children without them too:
    creating the state directory changes nothing of Glance's.
    """
    kept = {}
    # The state is not even walked: its journal comes and goes.
    for path, entry in tree(cache.path, skip=(STATE_DIR,)).items():
        if os.path.basename(path).startswith(OWN_ENTRIES):
            continue
        if path == cache.path and entry is not None:
            children = tuple(name for name in entry[-1]
                             if not name.startswith(OWN_ENTRIES))
            # Its mtime moves when the state directory is made.
            entry = entry[:4] + (None, children)
        kept[path] = entry
    return kept


def snapshot(cache):
    """The cache directory tree and its metadata records."""
    rows = cache.rows() if hasattr(cache, 'db_path') else None
    return cache_tree(cache), rows
