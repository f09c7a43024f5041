"""Rows one node reads from the shared cached_images (issue 17, item 1).

On PostgreSQL, on Glance's schema (nothing indexes node_reference_id), with
20 other nodes holding ten times this node's rows, of the same images too:
after a first round that may read everything once, the real
``cache-maint-manage list``, ``clean`` and ``prune`` each read at most a
small multiple of this node's own rows. What they read is PostgreSQL's own
count (``pg_stat_user_tables``: rows read by sequential scans plus rows
fetched through indexes), taken once the command has exited: a backend
hands its counts over as it ends, and the test polls until they settle.
"""

import random
import time

import pytest
import sqlalchemy as sa

from tests.support import caches
from tests.support import databases
from tests.support import plans
from tests.support import processes
from tests.support import running
from tests.support import settings

KIB = caches.KIB
MINE = 300              # this node's images, 1 KiB each
OTHERS = 20             # other nodes, each with ten times as many rows
THEIRS = 10 * MINE
EVICTED = 50            # what the measured prune evicts
#: The most a node's operation may read, in its own rows.
MULTIPLE = 3

READ = sa.text(
    'SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) '
    'FROM pg_stat_user_tables WHERE relname = :table')


class RowsRead:
    """PostgreSQL's count of the rows read from cached_images, settled."""

    def __init__(self, url):
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def now(self):
        with self.engine.connect() as conn:
            conn.execute(sa.text('SELECT pg_stat_clear_snapshot()'))
            return conn.execute(READ, {'table': 'cached_images'}).scalar()

    def settled(self):
        """The count once three looks, a quarter second apart, agree."""
        looks = [self.now()]
        deadline = time.monotonic() + processes.DEADLINE
        while len(looks) < 3 or len(set(looks[-3:])) > 1:
            assert time.monotonic() < deadline, looks
            time.sleep(0.25)
            looks.append(self.now())
        return looks[-1]


@pytest.fixture
def shared(tmp_path):
    """This node's cache and 20 other nodes' rows, in a scratch database."""
    with databases.scratch_database('postgresql') as url:
        rnd = random.Random(9)
        cache = caches.CentralCache(tmp_path / 'cache', url)
        mine = plans.timeline(MINE)
        cache.add_planned(mine)
        ids = [image.image_id for image in mine]
        for node in range(OTHERS):
            # Half of this node's images, and their own.
            theirs = rnd.sample(ids, MINE // 2) + [
                plans.new_id(rnd) for _ in range(THEIRS - MINE // 2)]
            cache.record([plans.Image(image_id, KIB, 5000.0, 5000.0)
                          for image_id in theirs],
                         node_url='http://other-%d:9292' % node)
        with cache.engine.connect() as conn:
            conn.execute(sa.text('ANALYZE cached_images'))
            conn.commit()
        counter = RowsRead(url)
        try:
            yield cache, mine, counter
        finally:
            counter.engine.dispose()
            cache.engine.dispose()


def measured(counter, config, *args):
    """(rows read, the JSON printed) by one cache-maint-manage command."""
    before = counter.settled()
    printed = running.manage_json(config, *args)
    return counter.settled() - before, printed


def test_list_clean_and_prune_read_what_this_node_has(shared, tmp_path):
    cache, mine, counter = shared
    total = MINE + OTHERS * THEIRS
    config = settings.write_config(
        tmp_path / 'cache-maint.conf', settings.cache_sections(
            cache, image_cache_max_size=MINE * KIB,
            log_file=str(tmp_path / 'cache-maint.log')))

    # The first round: the first clean reconciles fully, reading every
    # node's rows to find this node's (a sequential scan).
    first, _ = measured(counter, config, 'clean', '--show-run')
    assert first >= total
    rows = {}
    rows['list'], listing = measured(counter, config, 'list', '--format',
                                     'json')
    assert len(listing['cached_images']) == MINE
    settings.write_config(config, settings.cache_sections(
        cache, image_cache_max_size=(MINE - EVICTED) * KIB,
        log_file=str(tmp_path / 'cache-maint.log')))
    rows['prune'], pruned = measured(counter, config, 'prune')
    assert pruned['total_files_pruned'] == EVICTED
    # This clean looks up the images the prune evicted, by id.
    rows['clean'], run = measured(counter, config, 'clean', '--show-run')
    assert run['records'] == {'checked': EVICTED, 'forgotten': 0,
                              'full_reconciliation': False}
    rows['clean again'], _ = measured(counter, config, 'clean')
    print('rows read of cached_images (%d rows, %d of this node): first '
          'clean %d; %s' % (total, MINE, first, ', '.join(
              '%s %d' % item for item in rows.items())))
    assert all(count <= MULTIPLE * MINE for count in rows.values()), rows
    assert cache.images() == set(cache.rows()) == {
        image.image_id for image in mine[EVICTED:]}
