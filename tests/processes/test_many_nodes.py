"""Many nodes on one Glance database, at the same moment (issue 17, item 3).

Three real ``cache-maint`` daemons, each with its own cache directory and
``worker_self_reference_url``, share one PostgreSQL or MariaDB database
with two more nodes that only have rows there. The nodes cache many of the
same images, in different orders. All three prune and clean on their
timers and on requests fired at the same moment; each must end with exactly
its own most recently used images and their rows, its stale rows gone, and
nothing of any other node changed: no row, no file.
"""

import concurrent.futures
import os
import random
import time

import pytest
import sqlalchemy as sa

from tests.support import caches
from tests.support import databases
from tests.support import glance_schema
from tests.support import plans
from tests.support import processes
from tests.support import running

KIB = caches.KIB
SERVERS = ['postgresql', 'mysql']
NODES = 3
IMAGES = 30         # per node, 1 KiB each
KEEP = 10           # what a prune to 10 KiB leaves
STALE = 4           # rows without a file, per node
BYSTANDERS = ['http://bystander-%d.example.org:9292' % i for i in (1, 2)]


def node_url(i):
    return 'http://node-%d.example.org:9292' % i


def all_rows(engine):
    """Every row of cached_images, every column, with its node's URL."""
    images, nodes = glance_schema.cached_images, glance_schema.node_reference
    query = sa.select(nodes.c.node_reference_url, *images.c).join(
        nodes, nodes.c.node_reference_id == images.c.node_reference_id)
    with engine.connect() as conn:
        return {(row.node_reference_url, row.image_id): tuple(row)
                for row in conn.execute(query)}


def files_of(path):
    """{name: (size, mtime_ns)} of the cache's image files."""
    found = {}
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if len(name) == 36 and os.path.isfile(full):
            st = os.stat(full)
            found[name] = (st.st_size, st.st_mtime_ns)
    return found


class Node:
    """One node: its cache, its images in LRU order, its daemon."""

    def __init__(self, tmp_path, url, i, pool, rnd):
        self.url = node_url(i)
        self.workdir = tmp_path / ('node-%d' % i)
        self.workdir.mkdir()
        self.cache = caches.CentralCache(self.workdir / 'cache', url,
                                         node_url=self.url)
        # Most of its images are other nodes' too, in another order.
        ids = rnd.sample(pool, IMAGES)
        first = time.time() - 2 * plans.DAY
        self.images = [plans.Image(image_id, KIB, first + n, first)
                       for n, image_id in enumerate(ids)]
        self.cache.add_planned(self.images)
        self.stale = [self.cache.add_row(last_accessed=first - 100)
                      for _ in range(STALE)]
        self.cache.add_invalid()
        self.daemon = None

    @property
    def survivors(self):
        return {image.image_id for image in self.images[-KEEP:]}

    def start(self):
        self.daemon = running.Daemon.for_cache(
            self.workdir, self.cache, image_cache_max_size=KEEP * KIB,
            cache_prune_interval=1, cache_clean_interval=1)
        self.daemon.start()

    def done(self):
        return (self.cache.images() == self.survivors
                and set(self.cache.rows()) == self.survivors
                and not self.cache.listdir('invalid'))

    def describe(self):
        return '%s: files %d, rows %d, stale left %d' % (
            self.url, len(self.cache.images()), len(self.cache.rows()),
            len(set(self.stale) & set(self.cache.rows())))


@pytest.fixture(params=SERVERS)
def cluster(request, tmp_path):
    with databases.scratch_database(request.param) as url:
        rnd = random.Random(17)
        pool = [plans.new_id(rnd) for _ in range(IMAGES * 2)]
        nodes = [Node(tmp_path, url, i, pool, rnd)
                 for i in range(1, NODES + 1)]
        # Nodes without cache-maint: rows of the same images, no files.
        for url_ in BYSTANDERS:
            nodes[0].cache.record(
                [plans.Image(image_id, 2 * KIB, 5000.0, 5000.0, 7)
                 for image_id in pool], node_url=url_)
        try:
            yield nodes
        finally:
            for node in nodes:
                if node.daemon is not None:
                    node.daemon.stop()
                node.cache.engine.dispose()


def test_three_nodes_prune_and_clean_at_once_each_its_own(cluster):
    nodes = cluster
    engine = nodes[0].cache.engine
    rows_before = all_rows(engine)
    files_before = {node.url: files_of(node.cache.path) for node in nodes}

    for node in nodes:
        node.start()
    # And requests for both tasks, to every node, at the same moment.
    with concurrent.futures.ThreadPoolExecutor(2 * NODES) as pool:
        answers = list(pool.map(
            lambda call: call[0].daemon.post(call[1]),
            [(node, task) for node in nodes for task in ('prune', 'clean')]))
    assert all(answer.status_code == 200 for answer in answers), [
        answer.text for answer in answers]

    processes.wait_for(
        lambda: all(node.done() for node in nodes),
        'every node to keep exactly its %d newest images' % KEEP,
        diagnostics=lambda: '\n'.join(
            [node.describe() for node in nodes]
            + [node.daemon.diagnostics() for node in nodes]))

    # Each node's survivors, rows and files, are as they were; every other
    # row is too, the bystanders' all of them.
    rows_after = all_rows(engine)
    expected = {key: row for key, row in rows_before.items()
                if key[0] in BYSTANDERS}
    for node in nodes:
        expected.update({(node.url, image_id): rows_before[
            (node.url, image_id)] for image_id in node.survivors})
        assert files_of(node.cache.path) == {
            image_id: files_before[node.url][image_id]
            for image_id in node.survivors}
    assert rows_after == expected
    for node in nodes:
        failed = [run for run in node.daemon.runs()
                  if run['outcome'] != 'succeeded']
        assert failed == [], failed
