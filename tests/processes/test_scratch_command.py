"""The real ``cache-maint-manage scratch-cache``, then clean and prune."""

import json
import os
import sqlite3
import subprocess

import pytest

from tests.support import caches
from tests.support import env
from tests.support import fs
from tests.support import glance_schema
from tests.support import running
from tests.support import settings

MIB = 1024 ** 2
LIMIT = 2 * MIB

manage = running.manage


@pytest.fixture
def configure(tmp_path):
    """Write a config for a sqlite cache at ``tmp_path/cache``; its path."""
    def configure(**options):
        default = {'image_cache_dir': str(tmp_path / 'cache'),
                   'image_cache_driver': 'sqlite',
                   'image_cache_max_size': LIMIT}
        default.update(options)
        return settings.write_config(tmp_path / 'cache-maint.conf',
                                     {'DEFAULT': default})
    return configure


def ok(result):
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    return result.stdout


def snapshot(path):
    """Every entry under ``path`` with its size and mtime."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            st = os.lstat(full)
            found[os.path.relpath(full, path)] = (st.st_size, st.st_mtime_ns)
    return found


def test_fill_then_clean_and_prune(tmp_path, configure):
    config = configure()
    cache_dir = str(tmp_path / 'cache')

    made = json.loads(ok(manage(config, 'scratch-cache', '--size', '3M',
                                '--images', '15', '--seed', '42',
                                '--format', 'json')))

    assert made['driver'] == 'sqlite'
    assert made['seed'] == 42
    assert made['images']['files'] == 15
    assert made['size_bytes'] == 3 * MIB
    assert made['over_limit_bytes'] == MIB
    assert made['next_commands'] == [
        'cache-maint-manage --config-file %s %s' % (config, task)
        for task in ('status', 'clean --dry-run', 'prune --dry-run',
                     'prune')]
    listing = json.loads(ok(manage(config, 'list', '--format', 'json')))
    assert len(listing['cached_images']) == 15
    assert len(listing['queued_images']) == 2
    status = json.loads(ok(manage(config, 'status', '--format', 'json')))
    assert status['cache']['size_bytes'] == 3 * MIB
    assert status['cache']['images'] == 17
    preview = json.loads(ok(manage(config, 'clean', '--dry-run',
                                   '--format', 'json')))
    assert sorted(f['path'].split('/')[0] for f in preview['files']) == [
        'incomplete', 'incomplete', 'invalid', 'invalid']
    assert {f['reason'] for f in preview['files']} == {'invalid', 'stalled'}

    pruned = json.loads(ok(manage(config, 'prune')))

    assert pruned['total_files_pruned'] >= 3       # the 2 untracked, and more
    assert pruned['total_bytes_pruned'] >= MIB
    status = json.loads(ok(manage(config, 'status', '--format', 'json')))
    assert status['cache']['size_bytes'] <= LIMIT
    ok(manage(config, 'clean'))
    assert len(os.listdir(os.path.join(cache_dir, 'incomplete'))) == 2
    assert os.listdir(os.path.join(cache_dir, 'invalid')) == []


def test_table_output_names_the_next_commands(tmp_path, configure):
    config = configure()
    out = ok(manage(config, 'scratch-cache', '--size', '1.5M', '--seed', '1'))
    assert 'sqlite driver, --seed 1 makes it again' in out
    assert '20 images recorded' in out
    assert 'over image_cache_max_size' not in out    # 1.5M is within 2M
    for task in ('status', 'clean --dry-run', 'prune --dry-run', 'prune'):
        assert '  cache-maint-manage --config-file %s %s\n' % (config, task) \
            in out


def test_default_size_is_over_the_limit(tmp_path, configure):
    config = configure()
    made = json.loads(ok(manage(config, 'scratch-cache', '--format', 'json')))
    assert made['size_bytes'] == LIMIT * 3 // 2
    assert made['images']['files'] == 20


def failed_in_one_line(result):
    assert result.returncode != 0, result.stdout
    assert 'Traceback' not in result.stderr, result.stderr
    assert result.stdout == ''
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_non_empty_directory_is_refused(tmp_path, configure):
    config = configure()
    cache_dir = tmp_path / 'cache'
    os.makedirs(cache_dir / 'invalid')
    (cache_dir / 'invalid' / 'left-over').write_text('x')
    before = snapshot(cache_dir)

    line = failed_in_one_line(manage(config, 'scratch-cache'))

    assert line == ('cache-maint-manage scratch-cache failed: refusing to '
                    'fill %s: it is not empty (it holds invalid/left-over); '
                    'scratch-cache fills only a new directory or an empty '
                    'Glance layout' % cache_dir)
    assert snapshot(cache_dir) == before


def test_a_filled_cache_is_refused(tmp_path, configure):
    config = configure()
    ok(manage(config, 'scratch-cache', '--size', '1M'))
    before = snapshot(tmp_path / 'cache')
    line = failed_in_one_line(manage(config, 'scratch-cache'))
    assert line.startswith('cache-maint-manage scratch-cache failed: '
                           'refusing to fill ')
    assert snapshot(tmp_path / 'cache') == before


@pytest.mark.parametrize('args, needle', [
    (['--size', 'garbage'], "--size 'garbage' is not a size"),
    (['--size', '1.5'], "--size '1.5' is not a size"),
    (['--size', '0'], '--size 0'),
    (['--size=-1G'], "--size '-1G'"),
    (['--size', '-1G'], '--size: expected one argument'),
    (['--size', '9000T'], "--size '9000T' is more than a scratch cache "
                          'holds: give at most 17592186044416 (16T)'),
    (['--size', '9' * 30], "--size '%s' is more than a scratch cache "
                           'holds' % ('9' * 30)),
    (['--size', '5.0'], "--size '5.0' is not a size"),
    (['--size', '10K'], 'too small'),
    (['--images', '0'], '--images 0'),
    (['--images', '99999999'], '--images 99999999'),
    (['--images', 'many'], "--images: invalid int value: 'many'"),
])
def test_bad_options_are_one_line(tmp_path, configure, args, needle):
    config = configure()
    line = failed_in_one_line(manage(config, 'scratch-cache', *args))
    assert needle in line
    assert not os.path.exists(tmp_path / 'cache')


def test_a_file_where_the_directory_should_be(tmp_path, configure):
    (tmp_path / 'cache').write_text('mine')
    line = failed_in_one_line(manage(configure(), 'scratch-cache'))
    assert 'not a directory' in line
    assert (tmp_path / 'cache').read_text() == 'mine'


def test_a_missing_parent(tmp_path, configure):
    config = configure(image_cache_dir=str(tmp_path / 'no' / 'cache'))
    line = failed_in_one_line(manage(config, 'scratch-cache'))
    assert 'parent directory %s does not exist' % (tmp_path / 'no') in line
    assert not os.path.exists(tmp_path / 'no')


def test_help_says_what_a_size_is(configure):
    result = manage(configure(), 'scratch-cache', '--help')
    text = ' '.join(result.stdout.split())
    assert 'decimals allowed with a suffix only (1536M, 1.5G; not 1.5 nor ' \
        '5.0); at most 16.0 TiB' in text


def test_a_database_outside_the_directory(tmp_path, configure):
    """The repro: another cache's empty cache.db, by its absolute path."""
    real = tmp_path / 'realcache' / 'cache.db'
    real.parent.mkdir()
    conn = sqlite3.connect(real)
    conn.executescript(glance_schema.SQLITE)
    conn.close()
    before = snapshot(tmp_path / 'realcache')
    config = configure(image_cache_dir=str(tmp_path / 'absdb'),
                       image_cache_sqlite_db=str(real))
    line = failed_in_one_line(manage(config, 'scratch-cache', '--images',
                                     '3', '--size', '10K'))
    assert line == (
        'cache-maint-manage scratch-cache failed: refusing to fill the '
        'cache: its database %s ([DEFAULT] image_cache_sqlite_db) lands on '
        '%s, outside image_cache_dir %s; a scratch cache keeps its records '
        'in its own directory' % (real, real, tmp_path / 'absdb'))
    assert snapshot(tmp_path / 'realcache') == before
    assert not os.path.exists(tmp_path / 'absdb')


def test_a_large_lock_file_is_refused(tmp_path, configure):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    (cache_dir / 'glance-cache-prune').write_bytes(b'x' * 100 * 1024)
    before = snapshot(cache_dir)
    line = failed_in_one_line(manage(configure(), 'scratch-cache'))
    assert 'it holds glance-cache-prune (a lock file of 102400 bytes)' in line
    assert snapshot(cache_dir) == before


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs with these options (root only): its path."""
    mounted = []

    def mount(options):
        if os.getuid() != 0:
            env.unavailable('mounting a tmpfs needs root')
        where = tmp_path / 'mnt'
        where.mkdir()
        result = subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(where)],
            capture_output=True, text=True)
        if result.returncode != 0:
            env.unavailable('cannot mount a tmpfs: %s' % result.stderr)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        fs.unmount(where)


def test_a_filesystem_out_of_inodes(configure, tmpfs):
    """The repro: one line, where a traceback was; nothing written."""
    mount = tmpfs('size=200m,nr_inodes=15')
    config = configure(image_cache_dir=str(mount / 'sc'))
    line = failed_in_one_line(manage(config, 'scratch-cache', '--images',
                                     '3', '--size', '10K'))
    assert line == ('cache-maint-manage scratch-cache failed: a scratch '
                    'cache of 13 files needs 29 free inodes, and the '
                    'filesystem of %s has 14: give fewer --images' % mount)
    assert os.listdir(mount) == []


def test_sparse_files_need_no_room_for_their_size(configure, tmpfs):
    mount = tmpfs('size=200m')
    config = configure(image_cache_dir=str(mount / 'sc'))
    made = json.loads(ok(manage(config, 'scratch-cache', '--size', '150M',
                                '--format', 'json')))
    assert made['size_bytes'] == 150 * MIB
    status = json.loads(ok(manage(config, 'status', '--format', 'json')))
    assert status['cache']['size_bytes'] == 150 * MIB


def test_a_shared_database_with_another_node(tmp_path):
    """centralized_db: other nodes' rows are never written beside."""
    url = 'sqlite:///%s' % (tmp_path / 'shared.db')
    other = caches.CentralCache(tmp_path / 'other', url,
                                node_url=caches.OTHER_NODE_URL)
    other.add_image(size=5 * 1024, hits=3)
    before = other.rows()
    other.engine.dispose()
    config = settings.write_config(tmp_path / 'central.conf', {
        'DEFAULT': {'image_cache_dir': str(tmp_path / 'cache'),
                    'image_cache_driver': 'centralized_db',
                    'worker_self_reference_url': caches.NODE_URL},
        'database': {'connection': url}})
    line = failed_in_one_line(manage(config, 'scratch-cache'))
    assert line == (
        'cache-maint-manage scratch-cache failed: refusing to write scratch '
        'records in the database of [database] connection: it holds 1 '
        'cached image record and 1 other node in node_reference (%s); a '
        'scratch cache goes only into an empty database, or one where this '
        'node (%s) alone is registered'
        % (caches.OTHER_NODE_URL, caches.NODE_URL))
    assert not os.path.exists(tmp_path / 'cache')
    assert other.rows() == before
    other.engine.dispose()
