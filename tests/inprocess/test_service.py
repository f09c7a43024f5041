"""The service object itself, started and stopped in this process."""

import gc

import cache_maint.cmd  # noqa: F401  (selects oslo.service's backend first)
from cache_maint import service

from tests.support import caches


def test_start_up_objects_are_kept_out_of_collections(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    conf = cache.conf(api__bind_port=0, metrics__bind_port=0,
                      cache_clean_interval=0,
                      cache_prune_interval=0,
                      oslo_concurrency__lock_path=str(tmp_path / 'locks'))
    maintenance = service.MaintenanceService(conf)
    maintenance.start()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        maintenance.stop()
    # Stopped, it leaves nothing frozen: what it made can be collected.
    assert gc.get_freeze_count() == 0
    maintenance.wait()
