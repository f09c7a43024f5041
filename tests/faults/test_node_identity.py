"""Which node am I? centralized_db's node URL (issue 11, item 8).

A ``worker_self_reference_url`` with a trailing slash once registered a
second ``node_reference`` row: the node's records became invisible to
cache-maint, its files untracked, and a prune evicted the image read most
recently. On real PostgreSQL and MariaDB, with the rows glance-api made:

* a URL that differs from a registered one only by case, a default port or
  trailing slashes is refused at start, naming the registered spelling,
  and no row is added;
* a node whose files have no record while other nodes' records exist is
  never pruned as untracked: the run fails, saying why, nothing goes.
"""

import os

import pytest
import sqlalchemy as sa

from cache_maint.drivers import glance_tables as tables
from tests.faults import conftest as faults
from tests.support import caches
from tests.support import processes
from tests.support import settings

SERVERS = ('postgresql', 'mysql')


def node_urls(cache):
    with cache.engine.connect() as conn:
        return sorted(conn.execute(sa.select(
            tables.node_reference.c.node_reference_url)).scalars())


@pytest.mark.parametrize('kind', SERVERS)
@pytest.mark.parametrize('spelling', [
    caches.NODE_URL + '/', caches.NODE_URL.upper().replace('HTTP', 'http'),
    caches.NODE_URL + '//'])
def test_a_near_miss_of_a_registered_url_is_refused(
        kind, spelling, make_cache, tmp_path):
    cache = make_cache(kind)
    faults.Workload(cache, 5)
    before = node_urls(cache)
    config = settings.write_config(tmp_path / 'cache-maint.conf', {
        'DEFAULT': {'image_cache_dir': cache.path,
                    'image_cache_driver': 'centralized_db',
                    'worker_self_reference_url': spelling},
        'database': {'connection': cache.url},
        'api': {'bind_port': processes.free_port(),
                'auth_strategy': 'noauth2'},
        'metrics': {'bind_port': processes.free_port()}})
    result = processes.run_script('cache-maint', ['--config-file', config])
    assert result.returncode != 0
    assert ('worker_self_reference_url = %s is not registered in '
            'node_reference, but %s is' % (spelling, caches.NODE_URL)
            ) in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
    assert node_urls(cache) == before


@pytest.mark.parametrize('kind', SERVERS)
def test_a_node_that_sees_none_of_its_records_is_not_pruned(
        kind, make_cache, daemons):
    cache = make_cache(kind)
    workload = faults.Workload(cache, 20)
    # cache-maint knows this node under another URL than glance-api's:
    # every file looks untracked to it, while glance-api's records exist.
    daemon = daemons(cache, worker_self_reference_url='http://elsewhere:9292',
                     image_cache_max_size=0, cache_prune_interval=0,
                     cache_clean_interval=0).start()
    assert daemon.log_lines('WARNING', 'has no record in cached_images')
    response = daemon.post('prune')
    assert response.status_code == 500, response.text
    assert "This node's records cannot be found" in response.text
    assert workload.files() == set(workload.ids)
    lines = daemon.log_lines('ERROR', 'Prune run (API) failed',
                             'refusing to evict 20 images as untracked')
    assert len(lines) == 1, daemon.diagnostics()
    health = daemon.request('GET', '/healthcheck')
    assert health.status_code == 503
    assert os.path.isdir(cache.path)
