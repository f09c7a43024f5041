"""React to the cache filling: a prune within seconds of a target crossed.

glance-api writes every cache miss to disk and reads
``image_cache_max_size`` only when something prunes, so between two
periodic prunes the cache grows without bound. The watcher follows the
cache directory's events through watchdog (inotify on Linux; where inotify
cannot be used, watchdog's polling observer, which lists the directory
every few seconds) and keeps the size and count of the cached images up to
date without a rescan: glance-api renames a finished download into place,
one event. Once the cache crosses its high watermark or its image cap, or
the filesystem's free space falls under its floor, a prune starts within
``[prune] react_delay`` seconds. A burst of landings makes one prune, and
the prune is a run like any other: under the task's locks, never beside
another prune, whoever asked. After each prune it set off, the watcher
rescans, so that any drift is corrected. The parent directory is watched
too, for the cache directory's own name: a cache directory removed and
made again is watched again as soon as it is back.
"""

import os
import stat
import threading

from oslo_log import log as logging
from watchdog import events
from watchdog import observers
from watchdog.observers import polling

from cache_maint import cachedir
from cache_maint import exception

LOG = logging.getLogger(__name__)

#: Seconds between two listings of the directory by the polling observer.
POLL_INTERVAL = 2


class CacheWatcher(events.FileSystemEventHandler):
    """Starts ``prune()`` when the cache at ``files`` misses its targets.

    ``targets`` is a ``targets.Targets``; ``prune()`` makes one run, and
    raises TaskInProgress if a run is going on elsewhere (then the watcher
    looks again ``react_delay`` seconds later).
    """

    def __init__(self, files, targets, prune, react_delay):
        super().__init__()
        self._files = files
        # Event paths are the watched path joined with a name.
        self._dir = os.path.normpath(files.path)
        self._targets = targets
        self._prune = prune
        self._react_delay = react_delay
        self._sizes = {}
        self._total = 0     # sum(self._sizes.values()), kept as it changes
        self._guard = threading.Lock()
        self._timer = None
        self._stopped = False
        self._observer = None
        self._dir_watch = None
        #: 'inotify' or 'polling': how the directory is watched.
        self.method = None

    def start(self):
        """Start watching; CacheDirError if the directory cannot be."""
        self._rescan()
        try:
            self._observer = self._schedule(observers.Observer())
            self.method = 'inotify'
        except OSError as e:
            if not os.path.isdir(self._files.path):
                raise exception.CacheDirError(
                    'cannot watch image cache directory %s: %s'
                    % (self._files.path, e))
            # No inotify here (or its limits reached): list the directory.
            LOG.warning('Cannot watch %s with inotify (%s); listing it every '
                        '%d s instead', self._files.path, e, POLL_INTERVAL)
            self._observer = self._schedule(
                polling.PollingObserver(timeout=POLL_INTERVAL))
            self.method = 'polling'
        LOG.info('Watching %s for images landing (%s); a prune follows '
                 'within %s s of a target crossed', self._files.path,
                 self.method, self._react_delay)
        self._check()
        return self

    def _schedule(self, observer):
        self._dir_watch = observer.schedule(self, self._files.path,
                                            recursive=False)
        observer.daemon = True
        observer.start()
        self._watch_parent(observer)
        return observer

    def _watch_parent(self, observer):
        """Watch the parent for the cache directory's name, if it may be.

        Only a cache directory removed and made again needs it: a parent
        this user cannot read costs that, with one warning, and nothing
        else.
        """
        parent = os.path.dirname(self._dir)
        if parent == self._dir:
            return
        try:
            observer.schedule(self, parent, recursive=False)
        except OSError as e:
            LOG.warning('Cannot watch %s (%s): if %s is removed and made '
                        'again, the watcher will not see it until the '
                        'service restarts', parent, e, self._files.path)

    @property
    def active(self):
        """True while the directory is being watched."""
        return (not self._stopped and self._observer is not None
                and self._observer.is_alive())

    def stop(self):
        """Stop watching; a prune it started stops at its next safe point.

        Returns once that prune is over, so that the cache can be closed.
        """
        with self._guard:
            self._stopped = True
            timer = self._timer
            if timer is not None:
                timer.cancel()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
        if timer is not None:
            timer.join()

    # Events, from the observer's thread.

    def on_created(self, event):
        if self._is_the_directory(event.src_path):
            self._watch_again()
            return
        self._landed(event.src_path)

    def on_closed(self, event):
        self._landed(event.src_path)

    def on_moved(self, event):
        if self._is_the_directory(event.src_path):
            self._lost_directory()
        elif self._is_the_directory(event.dest_path):
            self._watch_again()
        else:
            self._gone(event.src_path)
            self._landed(event.dest_path)

    def on_deleted(self, event):
        if self._is_the_directory(event.src_path):
            self._lost_directory()
            return
        self._gone(event.src_path)

    def on_events_lost(self, event):
        LOG.warning('Events of %s were lost; rescanning it', self._files.path)
        self._rescan()
        self._check()

    def _is_the_directory(self, path):
        return os.path.normpath(os.fsdecode(path)) == self._dir

    # The directory removed (or moved away) and made again. Its parent is
    # watched too, for that: the directory's own watch says nothing while
    # a file in it is still open (the service's own lock file is), and
    # nothing at all once it is made again.

    def _lost_directory(self):
        # The old directory's own watch may say so late, through another
        # thread, after a new directory was made and watched: only what is
        # at the path now counts.
        if os.path.isdir(self._files.path):
            return
        LOG.warning('The image cache directory %s was removed or moved '
                    'away; it is watched again once it is back',
                    self._files.path)
        with self._guard:
            self._sizes, self._total = {}, 0

    def _watch_again(self):
        with self._guard:
            if self._stopped:
                return
            try:
                self._observer.unschedule(self._dir_watch)
            except KeyError:
                pass    # already gone with the directory
            try:
                self._dir_watch = self._observer.schedule(
                    self, self._files.path, recursive=False)
            except OSError as e:
                LOG.warning('Cannot watch %s again: %s; the periodic prune '
                            'still runs', self._files.path, e)
                return
        LOG.info('Watching %s again', self._files.path)
        self._rescan()
        self._check()

    def _image_id(self, path):
        path = os.fsdecode(path)
        if os.path.normpath(os.path.dirname(path)) != self._dir:
            return None
        name = os.path.basename(path)
        return name if cachedir.is_image_id(name) else None

    def _landed(self, path):
        image_id = self._image_id(path)
        if image_id is None:
            return
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return      # gone already: its delete event follows
        if not stat.S_ISREG(st.st_mode):
            return
        with self._guard:
            self._total += st.st_size - self._sizes.get(image_id, 0)
            self._sizes[image_id] = st.st_size
        self._check()

    def _gone(self, path):
        image_id = self._image_id(path)
        if image_id is not None:
            with self._guard:
                self._total -= self._sizes.pop(image_id, 0)

    # Deciding, and pruning.

    def _rescan(self):
        try:
            scanned = self._files.scan_images()
        except exception.CacheMaintError as e:
            LOG.warning('Cannot scan the image cache to watch it: %s', e)
            return
        with self._guard:
            self._sizes = {image_id: f.size for image_id, f in scanned.items()}
            self._total = sum(self._sizes.values())

    def _needs(self):
        with self._guard:
            size, count = self._total, len(self._sizes)
        filesystem = ()
        if self._targets.watches_free_space:
            try:
                filesystem = self._files.filesystem()
            except exception.CacheMaintError:
                pass
        return self._targets.needs(size, count, *filesystem)

    def _check(self):
        """Arm the timer if a target is missed and none is armed."""
        if not self._needs().any():
            return
        with self._guard:
            if self._stopped or self._timer is not None:
                return
            self._timer = threading.Timer(self._react_delay, self._react)
            self._timer.daemon = True
            self._timer.start()

    def _react(self):
        with self._guard:
            if self._stopped:
                return
            # The timer stays set while this runs: stop() joins it, and a
            # landing meanwhile arms no second one.
        look_again = False
        try:
            look_again = self._react_now()
        finally:
            with self._guard:
                self._timer = None
        if look_again:
            self._check()

    def _react_now(self):
        """Prune if a target is still missed; True to look again after.

        A target a prune could not get nearer (images it could not remove,
        or younger than min_age) is looked at again on the next landing,
        not in a loop; one it made progress on, or that a prune running
        elsewhere may have met, is looked at again now.
        """
        needs = self._needs()
        if not needs.any():
            return False
        LOG.info('The image cache missed a target (to shed: %s): pruning',
                 needs)
        try:
            result = self._prune()
        except exception.TaskInProgress:
            self._rescan()
            return True
        except exception.ServiceStopping:
            return False
        except exception.CacheMaintError as e:
            LOG.warning('The prune the watcher started failed: %s', e)
            result = None
        except Exception:
            LOG.exception('The prune the watcher started failed')
            result = None
        self._rescan()
        return bool(result is not None and result.files
                    and not result.stopped)
