"""Replaying a request trace through prune's own eviction code.

``cache-maint-manage simulate`` answers "which policy, and how large a
cache?" before anything changes on a node. A trace is a CSV file with the
header ``timestamp,image_id,size`` (epoch seconds, any image id, bytes),
one row per image download glance-api served (see ``cache_maint.glance_log``
to make one from glance-api's log).

The replay follows glance-api and cache-maint on a simulated clock, with no
disk: every miss is cached at once with 0 hits; a hit adds one to the
image's hits and sets its last access; a prune runs every
``prune_interval`` seconds of trace time, the first one interval after the
first request, and, with ``[prune] watch`` on, ``react_delay`` seconds
after a miss takes the cache over its high watermark or image cap. Each
prune makes its choices with the very objects a real prune uses
(``maintenance.plan``, its Planner and the policy, with its memory kept
between prunes), down to the cache size or the low watermark. The
free-space floor has no filesystem to measure and is left out.

``offline`` is the reference: on the same prune schedule, it evicts first
the images whose next request is furthest away (never, first of all), as
only a policy that knew the future could. Under the size target alone, no
policy does much better; ``min_age``, ``max_images`` and ``max_idle_time``
bind it as they bind the others.
"""

import array
import csv
import dataclasses
import math

from cache_maint import cachedir
from cache_maint.drivers import base as driver_base
from cache_maint import eviction
from cache_maint import exception
from cache_maint import maintenance
from cache_maint import targets as evict_targets

HEADER = ('timestamp', 'image_id', 'size')

#: The name of the furthest-next-use reference, beside the policies'.
OFFLINE = 'offline'

#: The longest image id a trace may hold (Glance's ids are 36 characters).
MAX_ID_LENGTH = 255

#: The last second of the year 9999: no later timestamp is a date.
LAST_TIME = 253402300799

#: The shortest prune interval, seconds: a shorter one is lost in the
#: precision of epoch seconds.
MIN_PRUNE_INTERVAL = 0.001

#: Victims planned at a time: a prune plans all of its own in one go.
_PLAN_ALL = 2 ** 62


class TraceError(exception.CacheMaintError):
    """A trace that cannot be replayed; the message says where and why."""


@dataclasses.dataclass
class Trace:
    """The requests of a trace, in time order, kept compact."""

    times: array.array = dataclasses.field(
        default_factory=lambda: array.array('d'))
    image_ids: list = dataclasses.field(default_factory=list)
    sizes: array.array = dataclasses.field(
        default_factory=lambda: array.array('q'))

    @classmethod
    def of(cls, requests):
        """A Trace of ``(timestamp, image_id, size)``, put in time order."""
        trace = cls()
        for request in sorted(requests, key=lambda request: request[0]):
            trace.append(*request)
        return trace

    def __len__(self):
        return len(self.times)

    def append(self, timestamp, image_id, size):
        self.times.append(timestamp)
        self.image_ids.append(image_id)
        self.sizes.append(size)

    def unique_bytes(self):
        """Bytes of the distinct images (each at its first size)."""
        seen = {}
        for image_id, size in zip(self.image_ids, self.sizes):
            seen.setdefault(image_id, size)
        return sum(seen.values())

    def next_requests(self):
        """For each request, when the same image is requested next (inf)."""
        following = array.array('d', [math.inf]) * len(self)
        seen = {}
        times, image_ids = self.times, self.image_ids
        for index in range(len(self) - 1, -1, -1):
            image_id = image_ids[index]
            following[index] = seen.get(image_id, math.inf)
            seen[image_id] = times[index]
        return following


def read_trace(lines, name='trace'):
    """A Trace from CSV ``lines``; TraceError names a bad line.

    Rows out of time order are put in order (ties keep the file's order):
    logs of several workers interleave.
    """
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as e:
        raise TraceError('%s, line 1: %s' % (name, e))
    if header is None or tuple(field.strip().lstrip('\ufeff')
                               for field in header) != HEADER:
        raise TraceError('%s: the first line must be the header %s'
                         % (name, ','.join(HEADER)))
    trace = Trace()
    ids = {}
    ordered = True
    last = -math.inf
    try:
        for row in reader:
            if not row:
                continue
            timestamp, image_id, size = _row(row, reader.line_num, name)
            image_id = ids.setdefault(image_id, image_id)
            ordered = ordered and timestamp >= last
            last = timestamp
            trace.append(timestamp, image_id, size)
    except csv.Error as e:
        raise TraceError('%s, line %d: %s' % (name, reader.line_num, e))
    except UnicodeDecodeError:
        raise TraceError('%s, line %d: not UTF-8 text'
                         % (name, reader.line_num + 1))
    if not len(trace):
        raise TraceError('%s holds no request' % name)
    return trace if ordered else _in_time_order(trace)


def _row(row, line, name):
    if len(row) != 3:
        raise TraceError('%s, line %d: %d fields, not the 3 of %s'
                         % (name, line, len(row), ','.join(HEADER)))
    timestamp, image_id, size = row
    try:
        timestamp = float(timestamp)
    except ValueError:
        timestamp = None
    if timestamp is None or not 0 <= timestamp <= LAST_TIME:
        raise TraceError('%s, line %d: timestamp %r is not epoch seconds '
                         'from 1970 to 9999' % (name, line, row[0][:40]))
    if not image_id or len(image_id) > MAX_ID_LENGTH or \
            not image_id.isprintable():
        raise TraceError('%s, line %d: image_id %r is empty, longer than %d '
                         'characters or not printable'
                         % (name, line, image_id[:40], MAX_ID_LENGTH))
    try:
        size = int(size)
    except ValueError:
        size = -1
    if not 0 <= size < 2 ** 63:
        raise TraceError('%s, line %d: size %r is not a number of bytes'
                         % (name, line, row[2][:40]))
    return timestamp, image_id, size


def _in_time_order(trace):
    order = sorted(range(len(trace)), key=trace.times.__getitem__)
    ordered = Trace()
    for index in order:
        ordered.append(trace.times[index], trace.image_ids[index],
                       trace.sizes[index])
    return ordered


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When prunes run, and what they aim for; see cache_maint.conf.prune.

    ``targets`` has the ``[prune]`` options; its ``max_size`` is replaced
    by each cache size replayed.
    """

    prune_interval: float
    targets: evict_targets.Targets
    watch: bool = False
    react_delay: float = 2.0

    def __post_init__(self):
        interval = self.prune_interval
        if not (interval == 0 or MIN_PRUNE_INTERVAL <= interval < math.inf):
            raise exception.ConfigError(
                '--prune-interval must be 0 (none) or from %g seconds up, '
                'not %r' % (MIN_PRUNE_INTERVAL, interval))
        if not interval and not self.watch:
            raise exception.ConfigError(
                'with --prune-interval 0 (or [DEFAULT] cache_prune_interval '
                '= 0) and no watch, nothing would ever prune')

    @classmethod
    def from_conf(cls, conf, prune_interval=None):
        return cls(
            prune_interval=(conf.cache_prune_interval
                            if prune_interval is None else prune_interval),
            targets=dataclasses.replace(
                evict_targets.Targets.from_conf(conf), min_free_space=0),
            watch=conf.prune.watch, react_delay=conf.prune.react_delay)


@dataclasses.dataclass(frozen=True)
class Result:
    """One replay: the contract of ``simulate --format json``."""

    policy: str
    cache_size: int
    requests: int
    bytes_requested: int
    bytes_missed: int
    objects_missed: int
    prunes: int

    @property
    def byte_miss_ratio(self):
        return _ratio(self.bytes_missed, self.bytes_requested)

    @property
    def object_miss_ratio(self):
        return _ratio(self.objects_missed, self.requests)

    def to_dict(self):
        return {'policy': self.policy, 'cache_size': self.cache_size,
                'requests': self.requests,
                'bytes_requested': self.bytes_requested,
                'bytes_missed': self.bytes_missed,
                'byte_miss_ratio': self.byte_miss_ratio,
                'object_miss_ratio': self.object_miss_ratio,
                'prunes': self.prunes}


def _ratio(part, whole):
    return part / whole if whole else 0.0


def replay(trace, cache_size, policy, schedule):
    """Replay ``trace`` on a cache of ``cache_size`` bytes; a Result.

    ``policy`` is an eviction policy name, or OFFLINE.
    """
    return _Replay(trace, cache_size, policy, schedule).run()


class _Furthest:
    """The offline reference: furthest next request first (never: first).

    It ranks as a policy does, so that it meets the same Planner; it knows
    the future from the replay.
    """

    name = OFFLINE
    needs_records = False

    def __init__(self):
        #: {image_id: time of its next request}, kept by the replay.
        self.next_request = {}

    def observe(self, records, now):
        pass

    def rank(self, recorded, records, now):
        following = self.next_request
        return sorted(recorded, key=lambda cached: -following[
            cached.image_id])

    def evicted(self, victims, records, now):
        pass


class SimulatedCache:
    """A cache as a prune reads it, in memory: records and files.

    Glance's records (one ImageRecord per image, least recently used
    first: a hit moves an image to the end) and the directory's files,
    kept as requests come, so that a prune reads them as they are.
    """

    def __init__(self, policy, targets, records=()):
        """``records``: ImageRecords to start with, LRU first."""
        self.policy = policy
        self.targets = targets
        self.records = {}           # {image_id: ImageRecord}, LRU first
        self.files = {}             # {image_id: CachedFile}
        self.size = 0
        for record in records:
            self.records[record.image_id] = record
            self.files[record.image_id] = cachedir.CachedFile(
                record.image_id, record.size, record.last_modified,
                record.last_accessed)
            self.size += record.size

    def request(self, image_id, size, now):
        """A download of the image, as glance-api serves it; True if a hit.

        A hit adds one to the hits and sets the last access; a miss is
        cached at once, with 0 hits.
        """
        records = self.records
        cached = records.pop(image_id, None)
        if cached is not None:
            records[image_id] = driver_base.ImageRecord(
                image_id, now, cached.last_modified, cached.size,
                cached.hits + 1)
            return True
        records[image_id] = driver_base.ImageRecord(image_id, now, now,
                                                    size, 0)
        self.files[image_id] = cachedir.CachedFile(image_id, size, now, now)
        self.size += size
        return False

    def prune(self, now):
        """Prune at ``now`` as maintenance.prune chooses; the victims."""
        records, files, targets = self.records, self.files, self.targets
        needs = targets.needs(self.size, len(records))
        if not needs.any() and not targets.max_idle_time:
            return []
        last_read = ({image_id: cached.last_accessed
                      for image_id, cached in records.items()}
                     if targets.max_idle_time else {})
        planner = maintenance.plan(
            self.policy, records, files,
            records if self.policy.needs_records else {}, targets, now,
            last_read)
        victims = planner.next(needs, _PLAN_ALL)
        self.policy.evicted(victims, records, now)
        for victim in victims:
            self.size -= victim.size
            del records[victim.image_id]
            del files[victim.image_id]
        return victims


class _Replay:
    """One replay of a trace through one policy and cache size."""

    def __init__(self, trace, cache_size, policy, schedule):
        self.trace = trace
        self.schedule = schedule
        self.cache = SimulatedCache(
            _Furthest() if policy == OFFLINE else eviction.make(policy),
            dataclasses.replace(schedule.targets, max_size=cache_size))
        self.prunes = 0

    def _prune(self, now, watched=False):
        cache = self.cache
        if watched and not cache.targets.needs(cache.size,
                                               len(cache.records)).any():
            # The watcher does not prune a cache a prune since has brought
            # back within its targets.
            return
        self.prunes += 1
        cache.prune(now)

    def run(self):
        trace, cache, schedule = self.trace, self.cache, self.schedule
        records, targets = cache.records, cache.targets
        furthest = (cache.policy.next_request
                    if isinstance(cache.policy, _Furthest) else None)
        following = trace.next_requests() if furthest is not None else None
        high_mark, max_images = targets.high_mark, targets.max_images
        interval = schedule.prune_interval
        next_prune = trace.times[0] + interval if interval else math.inf
        watched = math.inf          # when a watched crossing prunes
        requested = missed = misses = 0
        for index, now in enumerate(trace.times):
            while next_prune <= now or watched <= now:
                if watched < next_prune:
                    self._prune(watched, watched=True)
                    watched = math.inf
                    continue
                self._prune(next_prune)
                next_prune += interval
                # Ticks with no request between them: all but the last
                # find the cache as the one before left it, so only the
                # last runs (its idle images are theirs and more); every
                # one counts. A long quiet spell costs one prune.
                due = math.floor((min(now, watched) - next_prune) / interval)
                if due >= 1:
                    self.prunes += due
                    next_prune += due * interval
            image_id = trace.image_ids[index]
            size = trace.sizes[index]
            requested += size
            if not cache.request(image_id, size, now):
                missed += size
                misses += 1
                if (schedule.watch and watched == math.inf and (
                        cache.size > high_mark or (
                            max_images and len(records) > max_images))):
                    watched = now + schedule.react_delay
            if furthest is not None:
                furthest[image_id] = following[index]
        return Result(policy=cache.policy.name,
                      cache_size=targets.max_size, requests=len(trace),
                      bytes_requested=requested, bytes_missed=missed,
                      objects_missed=misses, prunes=self.prunes)


def sizes_of(trace, sizes):
    """Cache sizes in bytes: floats are shares of the unique bytes."""
    unique = None
    result = []
    for size in sizes:
        if isinstance(size, float):
            if unique is None:
                unique = trace.unique_bytes()
            size = int(unique * size)
        result.append(size)
    return result


def simulate(trace, cache_sizes, policies, schedule):
    """{'results': [...], 'offline': [...]}: the contract of the JSON."""
    results, offline = [], []
    for cache_size in cache_sizes:
        for policy in policies:
            results.append(replay(trace, cache_size, policy,
                                  schedule).to_dict())
        reference = replay(trace, cache_size, OFFLINE, schedule)
        offline.append({'cache_size': cache_size,
                        'byte_miss_ratio': reference.byte_miss_ratio,
                        'object_miss_ratio': reference.object_miss_ratio})
    return {'results': results, 'offline': offline}
