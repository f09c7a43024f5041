"""A configuration that cannot work stops the start (issue 6, item 8).

The real ``cache-maint`` and ``cache-maint-manage`` exit non-zero at once
with a message that names the option, no traceback and no password, and a
refused start leaves the disk exactly as it was: no cache directory, no
subdirectory, no database file, no lock file, nothing outside.
"""

from concurrent import futures
import contextlib
import os
import subprocess
import sys

import pytest

from tests import base
from tests.faults import hostile
from tests.functional import helpers

PASSWORD = 's3cret-never-shown'


def _closed_port():
    """A loopback port that nothing listens on."""
    return helpers.free_port()


# name: (the option the message must name, [DEFAULT] changes, other
# sections). '{root}' is the test's directory, '{port}' a closed port.
CASES = {
    'negative image_cache_max_size': (
        'image_cache_max_size', {'image_cache_max_size': -1}, {}),
    'negative cache_clean_interval': (
        'cache_clean_interval', {'cache_clean_interval': -1}, {}),
    'negative cache_prune_interval': (
        'cache_prune_interval', {'cache_prune_interval': -1800}, {}),
    'negative image_cache_stall_time': (
        'image_cache_stall_time', {'image_cache_stall_time': -1}, {}),
    'missing cache dir': (
        'image_cache_dir', {'image_cache_dir': '{root}/no/such/cache'}, {}),
    'cache dir is a file': (
        'image_cache_dir', {'image_cache_dir': '{root}/a-file'}, {}),
    'read-only cache dir': ('image_cache_dir', {}, {}),
    'unknown image_cache_driver': (
        'image_cache_driver', {'image_cache_driver': 'memcache'}, {}),
    'sqlite database outside the cache': (
        'image_cache_sqlite_db',
        {'image_cache_sqlite_db': '../outside.db'}, {}),
    'unreachable PostgreSQL': (
        '[database] connection', {'image_cache_driver': 'centralized_db'},
        {'database': {'connection': 'postgresql://glance:%s@127.0.0.1:'
                                    '{port}/glance' % PASSWORD}}),
    'unreachable MariaDB': (
        '[database] connection', {'image_cache_driver': 'centralized_db'},
        {'database': {'connection': 'mysql+pymysql://glance:%s@127.0.0.1:'
                                    '{port}/glance' % PASSWORD}}),
    'malformed database URL': (
        '[database] connection', {'image_cache_driver': 'centralized_db'},
        {'database': {'connection': 'not a database url'}}),
    'database URL with a bad port': (
        '[database] connection', {'image_cache_driver': 'centralized_db'},
        {'database': {'connection': 'mysql+pymysql://glance:%s@127.0.0.1:'
                                    'port/glance' % PASSWORD}}),
    'no database URL': (
        '[database] connection', {'image_cache_driver': 'centralized_db'},
        {}),
    'no worker_self_reference_url': (
        'worker_self_reference_url',
        {'image_cache_driver': 'centralized_db',
         'worker_self_reference_url': None},
        {'database': {'connection': 'sqlite:///{root}/glance.db'}}),
    'bind_port out of range': ('bind_port', {}, {'api': {'bind_port': 70000}}),
}

#: The cases issue 6 names; cache-maint-manage is run on these, the
#: service on every case.
ISSUE_CASES = (
    'negative image_cache_max_size', 'negative cache_clean_interval',
    'negative cache_prune_interval', 'negative image_cache_stall_time',
    'missing cache dir', 'cache dir is a file', 'read-only cache dir',
    'unknown image_cache_driver', 'unreachable PostgreSQL',
    'malformed database URL')

RUNS = [('cache-maint', case) for case in sorted(CASES)] + [
    ('cache-maint-manage', case) for case in ISSUE_CASES]


def write_case(root, case, port):
    """Write the config of ``case`` under ``root``; return its path."""
    option, default, sections = CASES[case]
    options = {'image_cache_dir': os.path.join(root, 'cache'),
               'image_cache_driver': 'sqlite',
               'worker_self_reference_url': 'http://node-1.example.org:9292',
               'image_cache_max_size': 1024, 'image_cache_stall_time': 60,
               'cache_clean_interval': 1, 'cache_prune_interval': 1}
    options.update(default)
    config = {'DEFAULT': {k: v for k, v in options.items() if v is not None},
              'api': {'bind_host': '127.0.0.1', 'bind_port': port,
                      'auth_strategy': 'noauth2'}}
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    for values in config.values():
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = value.format(root=root,
                                            port=_closed_port())
    return helpers.write_config(os.path.join(root, 'cache-maint.conf'),
                                config)


def make_site(root):
    """A new node's cache: one image, no subdirectory, no database yet.

    So that anything a refused start would create shows; and a file.
    """
    cache = os.path.join(root, 'cache')
    os.mkdir(cache)
    with open(os.path.join(cache, base.new_id()), 'wb') as f:
        f.write(b'x' * base.KIB)
    with open(os.path.join(root, 'a-file'), 'wb') as f:
        f.write(b'not a directory\n')


def refused_start(root, program, case):
    """Run ``program`` on ``case`` in ``root``: (result, before, after)."""
    make_site(root)
    config = write_case(root, case, helpers.free_port())
    args = ['--config-file', config]
    if program == 'cache-maint-manage':
        args.append('prune')
    guard = (base.read_only(os.path.join(root, 'cache'))
             if case == 'read-only cache dir' else contextlib.nullcontext())
    with guard:
        before = hostile.tree(root)
        result = helpers.run_script(program, args)
        after = hostile.tree(root)
    return result, before, after


@pytest.fixture(scope='module')
def refused(tmp_path_factory):
    """Every run of RUNS, made a few at a time: each starts a Python."""
    roots = {run: str(tmp_path_factory.mktemp('bad-config'))
             for run in RUNS}
    with futures.ThreadPoolExecutor(max_workers=4) as pool:
        started = {run: pool.submit(refused_start, roots[run], *run)
                   for run in RUNS}
        return {run: future.result() for run, future in started.items()}


@pytest.mark.parametrize('program, case', RUNS,
                         ids=['%s: %s' % run for run in RUNS])
def test_a_bad_configuration_is_refused_at_start(refused, program, case):
    result, before, after = refused[(program, case)]

    assert result.returncode != 0, result
    assert CASES[case][0] in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr + result.stdout, result
    assert PASSWORD not in result.stderr + result.stdout
    if program == 'cache-maint-manage':
        assert result.stdout == ''
    assert after == before, 'a refused start changed the disk'


def test_a_listener_already_in_use_is_refused_before_the_cache_is_touched(
        tmp_path):
    """The port is taken: cache-maint refuses, naming [api] bind_port."""
    cache = base.SqliteCache(tmp_path / 'cache')
    cache.add_image()
    for sub in ('incomplete', 'invalid', 'queue'):
        os.rmdir(os.path.join(cache.path, sub))
    os.unlink(cache.db_path)
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import socket, sys; s = socket.socket(); '
         's.bind(("127.0.0.1", 0)); s.listen(); '
         'print(s.getsockname()[1], flush=True); sys.stdin.read()'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(holder.stdout.readline())
        config = helpers.write_config(tmp_path / 'cache-maint.conf', {
            'DEFAULT': {'image_cache_dir': cache.path,
                        'image_cache_driver': 'sqlite'},
            'api': {'bind_host': '127.0.0.1', 'bind_port': port,
                    'auth_strategy': 'noauth2'}})
        before = hostile.tree(tmp_path)
        result = helpers.run_script('cache-maint', ['--config-file', config])
    finally:
        holder.communicate('')
    assert result.returncode != 0
    assert 'bind_port' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
    assert hostile.tree(tmp_path) == before
