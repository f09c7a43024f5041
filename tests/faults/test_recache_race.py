"""glance-api caches again what prune evicts, for a minute (issue 11, item 11).

Prune once deleted a batch's records after unlinking its files; an image
glance-api cached again in between had its INSERT rejected by the old
record, which prune then deleted: a hot image with no record at all. Here
Glance 33's own cache code (tests.faults.glance_writer, in a process of its
own, with its 2 s sqlite lock timeout) caches and reads a small pool of
images as fast as it can, while the real cache-maint prunes and cleans
every second under a limit a third of the pool's size, for each driver;
and again with the watcher, not the timer, setting off every prune.

What must hold: Glance never logged a rejected INSERT, a lock timeout or a
download removed under it; no file stayed without its record for longer
than a commit takes; and after a final clean every file has a record and
every record a file.
"""

import json
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from tests.support import caches
from tests.support import processes


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

#: Seconds each driver is run for (issue 11 asks for a minute).
SECONDS = float(os.environ.get('CACHE_MAINT_RACE_SECONDS', 60))

#: Seconds a file may be seen without a record before it counts as lost:
#: glance-api records a download just after renaming it into place, and
#: may wait up to 2 s for the sqlite lock to do so.
UNRECORDED_FOR = 5

KIB = caches.KIB


def glance_connection(cache):
    """The cache's database URL, with the DBAPI Glance's oslo.db uses."""
    url = sa.engine.make_url(cache.url)
    if url.get_backend_name() == 'postgresql':
        url = url.set(drivername='postgresql+psycopg2')
    return url.render_as_string(hide_password=False)


def start_writer(cache, kind, seconds):
    args = [sys.executable, '-m', 'tests.faults.glance_writer',
            '--cache-dir', cache.path, '--driver', cache.driver,
            '--seconds', str(seconds)]
    if cache.driver == 'centralized_db':
        args += ['--connection', glance_connection(cache),
                 '--node-url', cache.node_url]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def watch_unrecorded(cache, writer):
    """Images seen on disk without a record for UNRECORDED_FOR s or more."""
    since, lost = {}, set()
    while writer.poll() is None:
        now = time.monotonic()
        unrecorded = cache.images() - set(cache.rows())
        since = {image_id: since.get(image_id, now)
                 for image_id in unrecorded}
        lost |= {image_id for image_id, first in since.items()
                 if now - first >= UNRECORDED_FOR}
        time.sleep(0.5)
    return lost


@pytest.mark.parametrize('kind', ['sqlite', 'xattr', 'postgresql'])
def test_glance_caches_again_what_prune_evicts(kind, make_cache, daemons):
    cache = make_cache(kind)
    daemon = daemons(cache, image_cache_max_size=30 * KIB,
                     image_cache_stall_time=0, cache_prune_interval=1,
                     cache_clean_interval=1, debug='false').start()
    race(cache, kind, daemon, SECONDS)


@pytest.mark.parametrize('kind', ['sqlite', 'xattr'])
def test_glance_caches_again_what_the_watcher_evicts(kind, make_cache,
                                                     daemons):
    """The same race, with the watcher setting off every prune (issue 13).

    The timer is an hour apart; the watcher reacts to each of Glance's
    landings within 0.2 s, so its prunes race Glance's writes as closely.
    """
    cache = make_cache(kind)
    daemon = daemons(cache, image_cache_max_size=30 * KIB,
                     image_cache_stall_time=0, cache_prune_interval=3600,
                     cache_clean_interval=1, debug='false')
    daemon.add_sections({'prune': {'watch': 'true', 'react_delay': 0.2}})
    daemon.start()
    race(cache, kind, daemon, SECONDS / 3)
    assert {run['trigger'] for run in daemon.runs('prune')} >= {'watch'}


def race(cache, kind, daemon, seconds):
    """Glance's writer against ``daemon`` for ``seconds``; check the end."""
    writer = start_writer(cache, kind, seconds)
    try:
        lost = watch_unrecorded(cache, writer)
        out, err = writer.communicate(timeout=processes.DEADLINE)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()
    assert writer.returncode == 0, err[-3000:]
    report = json.loads(out)
    assert report['failures'] == {}, report
    assert report['cached'] > 50 and report['read'] > 50, report
    assert lost == set(), 'files left without a record: %s' % sorted(lost)

    pruning = [run for run in daemon.runs('prune')
               if (run['result'] or {}).get('total_files_pruned')]
    assert len(pruning) >= seconds / 4, 'prune seldom had work: %d runs' % (
        len(pruning))
    assert daemon.post('clean').status_code == 200
    assert cache.images() == set(cache.rows())
    assert 'Traceback' not in daemon.log(), daemon.diagnostics()
