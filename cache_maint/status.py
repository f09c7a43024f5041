"""What an operator asks first: how full is the cache, and is it looked after?

One document for ``GET /v2/cache/status`` and ``cache-maint-manage status``:
the cache's size against its limits, its partial and failed downloads, the
queue, its filesystem, the pins; for each task its interval, its last run
(whoever started it) and its next scheduled one; whether the watcher is on.
Each part that cannot be read says why instead, so that the status of a
broken cache is still an answer.

The service keeps its schedule in the state (``record_schedule``), so that
``cache-maint-manage status`` can tell it from another process.
"""

import os
import time

from cache_maint import cachedir
from cache_maint import exception
from cache_maint import locks
from cache_maint import targets as evict_targets

#: The state's name for what the service says of itself.
SERVICE = 'service'

TASKS = ('clean', 'prune')


def intervals(conf):
    return {'clean': conf.cache_clean_interval,
            'prune': conf.cache_prune_interval}


def record_schedule(cache, conf):
    """The timer is about to start: each enabled task runs at once."""
    now = time.time()
    for task, every in intervals(conf).items():
        record_next_run(cache, task, now if every else None)


def record_start(cache, watching):
    """The service started: its pid and whether it watches the cache."""
    _put(cache, SERVICE, {'pid': os.getpid(), 'started_at': time.time(),
                          'watching': watching})


def record_next_run(cache, task, when):
    """The periodic ``task`` runs next at ``when`` (epoch seconds)."""
    _put(cache, _NEXT_RUN % task, when)


def service_started_at(cache, conf):
    """When the service running on this cache started; None if none runs.

    What a prune from the command line counts idle time from, as the
    service's own prunes do.
    """
    if not locks.service_running(conf):
        return None
    service = _get(cache, SERVICE) or {}
    return service.get('started_at')


def record_stop(cache):
    service = _get(cache, SERVICE)
    if service is not None and service.get('pid') == os.getpid():
        service.update(stopped_at=time.time())
        _put(cache, SERVICE, service)


_NEXT_RUN = 'next_run:%s'


def _get(cache, name):
    try:
        return cache.state.get(name)
    except exception.StateError:
        return None


def _put(cache, name, value):
    try:
        cache.state.put(name, value)
    except exception.StateError:
        pass        # status then shows no schedule; runs log the fault


def status(conf, cache, runner, watching=None, service_running=None,
           public=True):
    """The status document.

    ``watching`` says whether the watcher is active (None: ask the state,
    as another process does); ``service_running`` whether the service
    runs (None: this is the service). ``public`` errors name no host path
    (the API's); the command line says all.
    """
    service = _get(cache, SERVICE) or {}
    running = True if service_running is None else service_running
    if watching is None:
        watching = bool(running and service.get('watching'))
    try:
        last = runner.last_runs()
    except exception.CacheMaintError:
        last = {}
    tasks = {}
    for task, every in intervals(conf).items():
        tasks[task] = {'interval': every,
                       'last_run': _summary(last.get(task)),
                       'next_run': _get(cache, _NEXT_RUN % task)
                       if every and running else None}
    return {'cache': _cache_part(conf, cache, public),
            'driver': cache.metadata.name,
            'tasks': tasks,
            'watcher': {'enabled': conf.prune.watch, 'active': watching},
            'service': {'running': running,
                        'started_at': service.get('started_at')
                        if running else None}}


def _summary(record):
    if record is None:
        return None
    keys = ('id', 'trigger', 'started_at', 'finished_at', 'outcome',
            'error', 'result', 'by_reason', 'failures', 'skipped_in_use',
            'skipped_pinned', 'skipped_young', 'records')
    return {key: record.get(key) for key in keys}


def _cache_part(conf, cache, public):
    targets = evict_targets.Targets.from_conf(conf)
    part = {'max_size_bytes': targets.max_size,
            'high_watermark_bytes': targets.high_mark,
            'low_watermark_bytes': targets.low_mark,
            'max_images': targets.max_images or None,
            'eviction_policy': conf.prune.eviction_policy}
    try:
        images = cache.files.scan_images()
        avail, total = cache.files.filesystem()
        usage = cache.files.usage()
    except exception.CacheMaintError as e:
        part['error'] = e.public_message if public else str(e)
    else:
        part.update(
            size_bytes=sum(f.size for f in images.values()),
            images=len(images),
            incomplete=usage[cachedir.INCOMPLETE],
            invalid=usage[cachedir.INVALID],
            queued=usage[cachedir.QUEUE],
            filesystem={'avail_bytes': avail, 'total_bytes': total},
            min_free_space_bytes=targets.free_space_floor(total))
    try:
        cache.state.check_usable()
        part['pins'] = len(cache.state.pinned_ids())
    except exception.StateError as e:
        part['pins'] = None
        part['state_error'] = e.public_message if public else str(e)
    return part
