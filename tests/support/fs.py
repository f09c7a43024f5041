"""Filesystem faults: a read-only directory, a tmpfs, a refused unlink."""

import contextlib
import os
import shutil
import subprocess


@contextlib.contextmanager
def read_only(path):
    """Make a directory unwritable for this process, even as root.

    Root ignores file modes, so as root the directory becomes a tmpfs
    mount holding a copy of its files, remounted read-only.
    """
    path = str(path)
    if os.getuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield
        finally:
            os.chmod(path, 0o755)
        return
    saved = path + '.saved'
    os.rename(path, saved)
    os.mkdir(path)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64m', 'tmpfs',
                    path], check=True)
    try:
        subprocess.run(['cp', '-a', saved + '/.', path], check=True)
        subprocess.run(['mount', '-o', 'remount,ro', path], check=True)
        yield
    finally:
        subprocess.run(['umount', path], check=True)
        # A running service may have written its lock files or state in
        # the moment between the mkdir and the mount: they go too.
        shutil.rmtree(path)
        os.rename(saved, path)


def mount_tmpfs(path, size):
    """Mount a tmpfs of ``size`` bytes at ``path``; None, or why not."""
    result = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', 'size=%d' % size, 'tmpfs', str(path)],
        capture_output=True, text=True)
    if result.returncode != 0:
        return 'cannot mount a tmpfs at %s: %s' % (path,
                                                   result.stderr.strip())
    return None


def unmount(path):
    """Unmount ``path``; detach it if still busy (a process being killed)."""
    if subprocess.run(['umount', str(path)]).returncode != 0:
        subprocess.run(['umount', '-l', str(path)], check=True)


def unlink_fails_for(monkeypatch, victim):
    """Make os.unlink refuse one name, as an immutable file would."""
    real_unlink = os.unlink

    def unlink(name, *args, **kwargs):
        if name == victim:
            raise PermissionError(1, 'Operation not permitted', name)
        return real_unlink(name, *args, **kwargs)

    monkeypatch.setattr(os, 'unlink', unlink)
