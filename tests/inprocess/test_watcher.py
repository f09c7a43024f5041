"""The watcher in-process, where the real service cannot show a case.

The real service's watcher is tested in ``tests/processes/test_watch.py``.
Here: a machine where inotify cannot be used (no inotify, or its limits
reached), where the watcher lists the directory instead; and a parent
directory the service's user may not read (the tests run as root, who may
read any): inotify refuses to watch it, which costs only the re-watch of a
cache directory made again.
"""

import threading

from watchdog import observers

from cache_maint import cachedir
from cache_maint import targets
from cache_maint import watcher
from tests.support import caches
from tests.support import processes

KIB = caches.KIB


def test_without_inotify_the_watcher_lists_the_directory(
        tmp_path, monkeypatch, caplog):
    cache = caches.SqliteCache(tmp_path / 'cache')

    class NoInotify(observers.Observer):
        def schedule(self, handler, path, **kwargs):
            raise OSError(24, 'inotify instance limit reached')

    monkeypatch.setattr(observers, 'Observer', NoInotify)
    monkeypatch.setattr(watcher, 'POLL_INTERVAL', 0.2)
    pruned = threading.Event()
    watching = watcher.CacheWatcher(
        cachedir.CacheDir(cache.path), targets.Targets(4 * KIB),
        pruned.set, react_delay=0.1).start()
    try:
        assert watching.method == 'polling'
        assert 'listing it every' in caplog.text
        assert not pruned.is_set()
        for _ in range(5):
            cache.land()
        processes.wait_for(pruned.is_set, 'the watcher to prune')
    finally:
        watching.stop()


def test_an_unreadable_parent_costs_only_the_rewatch(tmp_path, monkeypatch,
                                                     caplog):
    cache = caches.SqliteCache(tmp_path / 'cache')
    parent = str(tmp_path)
    real_observer = observers.Observer

    class NoParent(real_observer):
        def schedule(self, handler, path, **kwargs):
            if path == parent:
                raise PermissionError(13, 'Permission denied', path)
            return super().schedule(handler, path, **kwargs)

    monkeypatch.setattr(observers, 'Observer', NoParent)
    pruned = threading.Event()
    watching = watcher.CacheWatcher(
        cachedir.CacheDir(cache.path), targets.Targets(4 * KIB),
        lambda: pruned.set(), react_delay=0.1).start()
    try:
        assert watching.method == 'inotify'
        assert 'if %s is removed and made again' % cache.path in caplog.text
        for _ in range(5):
            cache.land()
        processes.wait_for(pruned.is_set, 'the watcher to prune')
    finally:
        watching.stop()
