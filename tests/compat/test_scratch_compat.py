"""Glance 33's own cache code reads a ``cache-maint-manage scratch-cache``.

The real command fills a scratch cache (and, for centralized_db, creates
Glance's two tables in an empty database); Glance's ``ImageCache`` on the
same directory must list exactly the recorded images with their sizes and
hits, queue what was queued, clean exactly the failed and stalled
downloads, and prune it under its limit. Run with ``tox -e compat``.
"""

import json
import os
import random

import pytest

pytest.importorskip('glance.image_cache', reason='needs glance==33.0.0')

from cache_maint import scratch  # noqa: E402
from tests.support import glance as glance_harness  # noqa: E402
from tests.support import processes  # noqa: E402
from tests.support import settings  # noqa: E402

MIB = 1024 ** 2
LIMIT = 8 * MIB
SIZE = 12 * MIB
COUNT = 20
SEED = 20261207
NODE_URL = 'http://scratch-node.example.org:9292'
CASES = ['sqlite', 'xattr', 'centralized_db-sqlite',
         'centralized_db-postgresql', 'centralized_db-mysql']


@pytest.fixture(params=CASES)
def case(request, tmp_path):
    """(driver, connection): a centralized_db database has no table yet."""
    kind = request.param
    if not kind.startswith('centralized_db'):
        yield kind, None
        return
    server = kind.split('-', 1)[1]
    if server == 'sqlite':
        yield 'centralized_db', glance_harness.sqlite_url(
            tmp_path / 'glance.db')
        return
    # An unreachable server skips the case (fails it in CI).
    with glance_harness.scratch_database(server, tables=None) as url:
        yield 'centralized_db', url


def test_glance_reads_a_scratch_cache(tmp_path, case):
    driver, connection = case
    path = str(tmp_path / 'cache')
    sections = {'DEFAULT': {
        'image_cache_dir': path, 'image_cache_driver': driver,
        'image_cache_max_size': LIMIT,
        'worker_self_reference_url': NODE_URL,
        'log_file': str(tmp_path / 'manage.log')}}
    if connection:
        sections['database'] = {'connection': connection}
    config = settings.write_config(tmp_path / 'scratch.conf', sections)
    result = processes.run_script(
        'cache-maint-manage', ['--config-file', config, 'scratch-cache',
                               '--size', SIZE, '--images', COUNT,
                               '--seed', SEED, '--format', 'json'])
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert made['size_bytes'] == SIZE
    # Ids, sizes and hits do not depend on the moment the cache was made.
    planned = scratch.plan(random.Random(SEED), SIZE, COUNT, 0, 86400)

    with glance_harness.GlanceImageCache(
            path, driver, LIMIT, connection=connection,
            node_url=NODE_URL) as glance:
        listed = {entry['image_id']: entry
                  for entry in glance.cached_images()}
        expected = {i.image_id: i for i in planned.images}
        if driver == 'xattr':
            # Its records are the files: those without user.hits are read
            # as images of no hit.
            expected.update({i.image_id: i for i in planned.untracked})
        assert set(listed) == set(expected)
        for image_id, image in expected.items():
            assert listed[image_id]['size'] == image.size
            assert listed[image_id]['hits'] == image.hits
            assert glance.hits(image_id) == image.hits
        assert glance.queued() == [q for q, _ in planned.queued]
        assert glance.size() == SIZE

        glance.clean()
        fresh = {p.image_id for p in planned.incomplete
                 if p.note == 'fresh'}
        assert set(os.listdir(os.path.join(path, 'incomplete'))) == fresh
        assert os.listdir(os.path.join(path, 'invalid')) == []

        files, freed = glance.prune()
        assert files > 0 and freed > 0
        assert glance.size() <= LIMIT
