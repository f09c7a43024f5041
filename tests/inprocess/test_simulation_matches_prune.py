"""``simulate`` makes the choices a real prune makes, on the same state.

A real sqlite cache on disk and a simulated one take the same requests, as
glance-api records them, and are pruned at the same moments: each prune
must evict the same images, in the same order, for every policy, the
policies' memory going through the state database on the real side and
staying in memory on the simulated one.
"""

import random
import sqlite3

import pytest

from cache_maint import cache as cm_cache
from cache_maint import eviction
from cache_maint import maintenance
from cache_maint import simulation
from cache_maint import targets as evict_targets

from tests.support import caches
from tests.support import plans

KIB = caches.KIB
LIMIT = 40 * KIB


class Twins:
    """A cache on disk and its simulated twin, fed the same requests."""

    def __init__(self, tmp_path, policy):
        self.disk = caches.SqliteCache(tmp_path / 'cache')
        self.policy = policy
        self.simulated = simulation.SimulatedCache(
            eviction.make(policy), evict_targets.Targets(LIMIT))

    def request(self, image_id, size, now):
        """A GET of the image's data: a hit, or a miss glance-api caches."""
        if not self.simulated.request(image_id, size, now):
            self.disk.add_image(size=size, last_accessed=now,
                                image_id=image_id)
            return
        with sqlite3.connect(self.disk.db_path) as conn:
            conn.execute('UPDATE cached_images SET hits = hits + 1, '
                         'last_accessed = ? WHERE image_id = ?',
                         (now, image_id))

    def prune(self, now):
        """Prune both; the victims of each, in eviction order."""
        subject = cm_cache.Cache.from_conf(self.disk.conf())
        subject.setup()
        try:
            real = maintenance.prune(subject, LIMIT, now=now,
                                     policy=self.policy,
                                     open_images=lambda path: ())
        finally:
            subject.close()
        simulated = [victim.image_id for victim
                     in self.simulated.prune(now)]
        return real.removed_ids(), simulated


@pytest.mark.parametrize('policy', eviction.NAMES)
@pytest.mark.parametrize('seed', [1, 2, 3])
def test_each_prune_evicts_what_simulate_evicts(tmp_path, policy, seed):
    rnd = random.Random(seed)
    twins = Twins(tmp_path, policy)
    # A few popular images and many read once or twice: every policy has
    # choices to make, and the adaptive one has refetches to learn from.
    pool = [plans.new_id(rnd) for _ in range(30)]
    sizes = {image_id: rnd.choice((1, 2, 3, 5)) * KIB for image_id in pool}
    weights = [1 / (rank + 1) for rank in range(len(pool))]
    now = 1767225600.0
    evicted_any = False
    for _round in range(12):
        for image_id in rnd.choices(pool, weights, k=15):
            now += rnd.uniform(1, 120)
            twins.request(image_id, sizes[image_id], now)
        now += 60
        real, simulated = twins.prune(now)
        assert real == simulated
        evicted_any = evicted_any or bool(real)
    assert evicted_any
    assert set(twins.disk.rows()) == set(twins.simulated.records)
