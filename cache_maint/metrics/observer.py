"""What the metrics say, looked at: the cache and its state, as snapshots.

An ``Observer`` reads the runs every process recorded in the state since its
previous look, and scans the cache directory only when the directory changed
(or every ``RESCAN`` seconds). What it found is one immutable ``Snapshot``;
``cache_maint.metrics.exposition`` serves the latest one to a scrape.
"""

import dataclasses
import math
import os
import threading
import time

from oslo_log import log as logging

from cache_maint import cachedir
from cache_maint import maintenance
from cache_maint import state as cm_state
from cache_maint import targets as evict_targets

LOG = logging.getLogger(__name__)

#: Seconds after which a look scans the directory even if it seems
#: unchanged (a download growing in incomplete/ changes no directory).
RESCAN = 600

#: A directory modified less than this many seconds before a look may be
#: modified again within the same tick of its filesystem's clock (a second
#: on some): its mtime then proves nothing, and the next look scans again.
MTIME_TRUST = 2

#: A fill of an image this node evicted less than this many seconds ago is
#: a refetch: what the eviction cost.
REFETCH_WINDOW = 86400

TASKS = ('clean', 'prune')
OUTCOMES = ('succeeded', 'stopped', 'failed')
#: Why a file was removed: prune's targets, then clean's.
REASONS = evict_targets.REASONS + (maintenance.INVALID_REASON,
                                   maintenance.STALLED_REASON)
#: The states of a file in the cache, and where each lives.
STATES = ('cached', 'incomplete', 'invalid', 'queued')
_SUBDIR_STATE = {cachedir.INCOMPLETE: 'incomplete',
                 cachedir.INVALID: 'invalid', cachedir.QUEUE: 'queued'}

#: Upper bounds (s) of the buckets of the run duration histogram.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800,
                    3600, 4 * 3600, math.inf)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a scrape is served: the values of the latest look.

    None (or an empty dict) where nothing is known yet: the metric is
    then exposed with no sample rather than a made-up zero.
    """

    #: {state: (files, bytes)} of the latest scan.
    usage: dict = None
    filesystem_avail: int = None
    pins: int = None
    #: {task: epoch seconds} of its latest successful run.
    last_success: dict = dataclasses.field(default_factory=dict)
    #: {(task, outcome): runs} since this process started.
    runs: dict = dataclasses.field(default_factory=dict)
    #: {task: (cumulative counts per DURATION_BUCKETS, sum of seconds)}.
    durations: dict = dataclasses.field(default_factory=dict)
    #: {reason: (files, bytes)} removed since this process started.
    evictions: dict = dataclasses.field(default_factory=dict)
    fills: int = 0
    filled_bytes: int = 0
    refetches: int = 0
    refetched_bytes: int = 0


def _marks(path):
    """(inode, mtime in ns) of the cache directory and its subdirectories.

    None for one that cannot be read. A change in any says the directory
    must be scanned again.
    """
    marks = []
    for name in ('',) + cachedir.SUBDIRS:
        try:
            st = os.stat(os.path.join(path, name), follow_symlinks=not name)
        except OSError:
            marks.append(None)
        else:
            marks.append((st.st_ino, st.st_mtime_ns))
    return tuple(marks)


class Observer:
    """Looks at one cache and its state; ``snapshot`` is the latest look.

    ``look()`` is called from one thread at a time (it serializes itself)
    and never raises: a part that fails keeps its previous values, and is
    logged once until it works again.
    """

    def __init__(self, conf, cache, clock=time.time):
        self.cache = cache
        self.snapshot = Snapshot()
        self._clock = clock
        self._looking = threading.Lock()
        #: The id of the latest run record counted; None before the first
        #: look, which counts none (the counters are this process's).
        self._after = None
        #: Of the previous scan: the directory's marks (None: scan again),
        #: when it was made (monotonic, and epoch seconds at its start),
        #: the ids it found (None before the first) and those it counted
        #: as fills.
        self._marks = None
        self._scanned = None
        self._scan_started = None
        self._seen = None
        self._fresh = frozenset()
        self._failing = {}

    # -- a look ---------------------------------------------------------

    def look(self):
        """Update the snapshot from the state and, if it changed, the disk."""
        with self._looking:
            values = {}
            self._attempt('runs', self._look_at_runs, values)
            self._attempt('cache', self._look_at_cache, values)
            if values:
                self.snapshot = dataclasses.replace(self.snapshot, **values)

    def _attempt(self, part, look, values):
        """Add what ``look`` finds to ``values``; log a failure streak once."""
        try:
            look(values)
        except Exception as e:
            if not self._failing.get(part):
                LOG.warning('The metrics of the %s are not up to date (they '
                            'keep their last values): %s', part, e)
            self._failing[part] = True
        else:
            if self._failing.get(part):
                LOG.info('The metrics of the %s are up to date again', part)
            self._failing[part] = False

    def _look_at_runs(self, values):
        """Count the runs recorded since the previous look, by any process."""
        state = self.cache.state
        snapshot = self.snapshot
        # As the state has it: the latest success by any process, however
        # old, and however the clock stood then (never a maximum, which a
        # clock once ahead would pin in the future).
        last_success = {task: record['finished_at'] for task, record
                        in state.last_successes().items()}
        pins = len(state.pinned_ids())
        if self._after is None:
            # The first look: what ran before this process is not counted.
            newest = state.runs(limit=1)
            records, after = [], newest[-1]['id'] if newest else 0
        else:
            records = state.runs(after=self._after,
                                 limit=cm_state.RUN_HISTORY)
            if not records:
                newest = state.runs(limit=1)
                if newest and newest[-1]['id'] < self._after:
                    # The state database was made anew: its ids restarted.
                    records = state.runs(limit=cm_state.RUN_HISTORY)
            after = records[-1]['id'] if records else self._after
        runs = dict(snapshot.runs)
        durations = dict(snapshot.durations)
        evictions = dict(snapshot.evictions)
        for record in records:
            task, outcome = record['task'], record['outcome']
            runs[task, outcome] = runs.get((task, outcome), 0) + 1
            durations[task] = _observe(durations.get(task),
                                       record.get('duration') or 0.0)
            for reason, removed in (record.get('by_reason') or {}).items():
                files, size = evictions.get(reason, (0, 0))
                evictions[reason] = (files + removed.get('files', 0),
                                     size + removed.get('bytes', 0))
        values.update(runs=runs, durations=durations, evictions=evictions,
                      last_success=last_success, pins=pins)
        self._after = after

    def _look_at_cache(self, values):
        """Scan the directory if it changed; count what glance-api cached."""
        files = self.cache.files
        started = self._clock()
        marks = _marks(files.path)
        avail, _total = files.filesystem()
        values.update(filesystem_avail=avail)
        if (marks == self._marks and self._scanned is not None
                and time.monotonic() - self._scanned < RESCAN):
            return
        images = files.scan_images()
        usage = {_SUBDIR_STATE[name]: (found['files'], found['bytes'])
                 for name, found in files.usage().items()
                 if name in _SUBDIR_STATE}
        usage['cached'] = (len(images),
                           sum(image.size for image in images.values()))
        values.update(usage=usage)
        if self._seen is not None:
            values.update(self._count_fills(images))
        self._seen = frozenset(images)
        self._scanned = time.monotonic()
        self._scan_started = started
        recent = (started - MTIME_TRUST) * 1e9
        self._marks = None if any(
            mark is not None and mark[1] > recent for mark in marks) else marks

    def _count_fills(self, images):
        """The fill and refetch counters, with this scan's fills.

        A fill is an image glance-api cached since the previous scan: an id
        that scan did not find, or one the state says was evicted after it
        began (evicted, then cached again in between).
        """
        state = self.cache.state
        present = set(images)
        evicted = set(state.evicted_since(self._scan_started)) & present
        # An image counted as a fill by the previous scan whose eviction
        # was recorded after that scan began (a long prune) is that fill,
        # not another one; but its refetch is counted now.
        fills = (present - self._seen) | (evicted - self._fresh)
        refetched = state.take_evicted(
            fills | (evicted & self._fresh),
            since=self._clock() - REFETCH_WINDOW)
        self._fresh = frozenset(fills)
        snapshot = self.snapshot
        return {
            'fills': snapshot.fills + len(fills),
            'filled_bytes': snapshot.filled_bytes + sum(
                images[image_id].size for image_id in fills),
            'refetches': snapshot.refetches + len(refetched),
            'refetched_bytes': snapshot.refetched_bytes + sum(
                images[image_id].size for image_id in refetched
                if image_id in images)}


def _observe(histogram, seconds):
    """The duration histogram ``(counts, sum)`` with one more run."""
    counts, total = histogram or ((0,) * len(DURATION_BUCKETS), 0.0)
    return (tuple(count + (seconds <= bound)
                  for count, bound in zip(counts, DURATION_BUCKETS)),
            total + seconds)
