"""The real service prunes within seconds of images landing over a target.

Its periodic prune is an hour apart here: only the watcher can bring the
cache back under its limit in time. Images land as glance-api caches them
(written in ``incomplete/``, renamed into place, recorded).
"""

import shutil

from tests.support import caches
from tests.support import processes

KIB = caches.KIB


def _watch_runs(daemon):
    return [run for run in daemon.runs('prune') if run['trigger'] == 'watch']


def _started(cache, daemons, **prune):
    """A daemon with its periodic prune an hour apart, its first one done."""
    daemon = daemons(image_cache_max_size=10 * KIB, cache_prune_interval=3600,
                     cache_clean_interval=0)
    daemon.add_sections({'prune': dict({'watch': 'true', 'react_delay': 0.5},
                                       **prune)})
    daemon.start()
    processes.wait_for(lambda: daemon.runs('prune'), 'the first prune')
    return daemon


def test_a_landing_over_the_limit_is_pruned_within_seconds(cache, daemons):
    old = [cache.add_image(last_accessed=1000.0 + i) for i in range(8)]
    daemon = _started(cache, daemons)
    landed = [cache.land() for _ in range(5)]

    processes.wait_for(lambda: cache.size() <= 10 * KIB,
                       'the cache back under its limit',
                       diagnostics=daemon.diagnostics)
    # The three least recently used went, for the size limit.
    assert cache.images() == set(old[3:] + landed)
    run, = processes.wait_for(lambda: _watch_runs(daemon),
                              'the run the watcher started')
    assert run['outcome'] == 'succeeded'
    assert run['by_reason'] == {'size': {'files': 3, 'bytes': 3 * KIB}}
    assert 'Watching %s for images landing (inotify)' % cache.path \
        in daemon.log()


def test_a_burst_of_landings_makes_one_prune(cache, daemons):
    daemon = _started(cache, daemons, react_delay=2)
    landed = [cache.land() for _ in range(30)]

    processes.wait_for(lambda: cache.size() <= 10 * KIB,
                       'the cache back under its limit',
                       diagnostics=daemon.diagnostics)
    assert cache.images() == set(landed[20:])
    assert len(_watch_runs(daemon)) == 1


def test_the_image_cap_and_the_low_watermark(cache, daemons):
    daemon = _started(cache, daemons, max_images=6, high_watermark=90,
                      low_watermark=50)
    landed = [cache.land() for _ in range(7)]

    processes.wait_for(lambda: len(cache.images()) <= 6,
                       'the cache back under its image cap',
                       diagnostics=daemon.diagnostics)
    assert cache.images() == set(landed[1:])
    run, = _watch_runs(daemon)
    assert run['by_reason'] == {'count': {'files': 1, 'bytes': KIB}}
    # Over 90% of the limit (9 KiB): down to 5 KiB, for the size.
    landed += [cache.land() for _ in range(4)]
    processes.wait_for(lambda: cache.size() <= 5 * KIB,
                       'the cache down to its low watermark',
                       diagnostics=daemon.diagnostics)
    assert cache.images() == set(landed[-5:])


def test_watch_off_leaves_it_to_the_timer(cache, daemons):
    daemon = _started(cache, daemons, watch='false')
    assert 'for images landing' not in daemon.log()


def test_a_cache_dir_written_with_a_trailing_slash(cache, daemons):
    """The events name the directory as configured: any spelling works."""
    daemon = daemons(image_cache_dir=cache.path + '/',
                     image_cache_max_size=10 * KIB, cache_prune_interval=3600,
                     cache_clean_interval=0)
    daemon.add_sections({'prune': {'watch': 'true', 'react_delay': 0.5}})
    daemon.start()
    processes.wait_for(lambda: daemon.runs('prune'), 'the first prune')
    landed = [cache.land() for _ in range(12)]
    processes.wait_for(lambda: cache.size() <= 10 * KIB,
                       'the cache back under its limit',
                       diagnostics=daemon.diagnostics)
    assert cache.images() == set(landed[2:])


def test_a_cache_directory_made_again_is_watched_again(cache, daemons):
    daemon = _started(cache, daemons)
    shutil.rmtree(cache.path)
    processes.wait_for(
        lambda: daemon.log_lines('WARNING', 'was removed or moved away'),
        'the watcher to see the directory go',
        diagnostics=daemon.diagnostics)
    # As glance-api makes it again when it starts: the directory, its
    # subdirectories and an empty database.
    again = caches.SqliteCache(cache.path)
    processes.wait_for(
        lambda: daemon.log_lines('Watching %s again' % cache.path),
        'the watcher to watch the new directory',
        diagnostics=daemon.diagnostics)
    landed = [again.land() for _ in range(12)]
    processes.wait_for(lambda: again.size() <= 10 * KIB,
                       'the cache back under its limit',
                       diagnostics=daemon.diagnostics)
    assert again.images() == set(landed[2:])
