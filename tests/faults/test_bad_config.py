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

from tests.faults import hostile
from tests.support import caches
from tests.support import fs
from tests.support import processes
from tests.support import rawhttp
from tests.support import running
from tests.support import settings

PASSWORD = 's3cret-never-shown'


def _closed_port():
    """A loopback port that nothing listens on."""
    return processes.free_port()


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
    # Library options the service reads (issue 11, item 6), and the
    # authentication it cannot work without (item 7).
    'debug is no boolean': (
        "invalid value 'maybe' for [DEFAULT] debug in", {'debug': 'maybe'},
        {}),
    'log file in no directory': (
        'log_file', {'log_file': '{root}/no/such/dir/cache-maint.log'}, {}),
    'bad graceful_shutdown_timeout': (
        "invalid value 'abc' for [DEFAULT] graceful_shutdown_timeout",
        {'graceful_shutdown_timeout': 'abc'}, {}),
    'bad max_request_body_size': (
        "invalid value 'abc' for [oslo_middleware] max_request_body_size",
        {}, {'oslo_middleware': {'max_request_body_size': 'abc'}}),
    'broken policy file': (
        'policy_file = {root}/broken-policy.yaml is not usable', {},
        {'oslo_policy': {'policy_file': '{root}/broken-policy.yaml'}}),
    'policy rule that does not parse': (
        'has a rule that cannot be parsed', {},
        {'oslo_policy': {'policy_file': '{root}/bad-rule-policy.yaml'}}),
    'unknown healthcheck backend': (
        '[healthcheck] backends names no_such_backend', {},
        {'healthcheck': {'backends': 'no_such_backend'}}),
    'keystone without [keystone_authtoken]': (
        '[keystone_authtoken] sets no auth_type', {},
        {'api': {'auth_strategy': 'keystone'}}),
    'keystone plugin missing its options': (
        '[keystone_authtoken] auth_type = password needs', {},
        {'api': {'auth_strategy': 'keystone'},
         'keystone_authtoken': {'auth_type': 'password'}}),
    # The [prune] targets and pacing (issue 13).
    'max_delete_rate with a unit of time': (
        "invalid value '100MB/s' for [prune] max_delete_rate", {},
        {'prune': {'max_delete_rate': '100MB/s'}}),
    'max_delete_rate with no suffix': (
        '[prune] max_delete_rate = 100 bytes a second', {},
        {'prune': {'max_delete_rate': '100'}}),
    'min_free_space of the whole filesystem': (
        "invalid value '100%' for [prune] min_free_space", {},
        {'prune': {'min_free_space': '100%'}}),
    'low watermark over the high one': (
        'low_watermark', {},
        {'prune': {'high_watermark': 80, 'low_watermark': 90}}),
    # cache-maint's own state (issue 14).
    'state_dir in no directory': (
        '[maintenance] state_dir', {},
        {'maintenance': {'state_dir': '{root}/no/such/state'}}),
    'state_dir is a file': (
        '[maintenance] state_dir', {},
        {'maintenance': {'state_dir': '{root}/a-file'}}),
    'state_dir in invalid/': (
        '[maintenance] state_dir = {root}/cache/invalid/state is in invalid/',
        {}, {'maintenance': {'state_dir': '{root}/cache/invalid/state'}}),
    'state_dir is the cache directory': (
        'is image_cache_dir, whose files glance-api counts', {},
        {'maintenance': {'state_dir': '{root}/cache'}}),
    'corrupt state database': (
        'state database {root}/state/state.db is not usable', {},
        {'maintenance': {'state_dir': '{root}/state'}}),
}

#: The cases whose configuration itself cannot work: exit status 78
#: (EX_CONFIG), which the systemd unit does not restart. The others
#: (the cache directory, the database, the address) exit 1.
CONFIGURATION_CASES = {
    'negative image_cache_max_size', 'negative cache_clean_interval',
    'negative cache_prune_interval', 'negative image_cache_stall_time',
    'unknown image_cache_driver', 'bind_port out of range',
    'debug is no boolean', 'log file in no directory',
    'bad graceful_shutdown_timeout', 'bad max_request_body_size',
    'broken policy file', 'policy rule that does not parse',
    'unknown healthcheck backend', 'keystone without [keystone_authtoken]',
    'keystone plugin missing its options',
    'max_delete_rate with a unit of time', 'max_delete_rate with no suffix',
    'min_free_space of the whole filesystem',
    'low watermark over the high one', 'state_dir in invalid/',
    'state_dir is the cache directory'}

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
                      'auth_strategy': 'noauth2'},
              'metrics': {'bind_port': processes.free_port()}}
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    for values in config.values():
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = value.format(root=root,
                                            port=_closed_port())
    return settings.write_config(os.path.join(root, 'cache-maint.conf'),
                                 config)


def expected_message(root, case):
    return CASES[case][0].format(root=root)


def make_site(root):
    """A new node's cache: one image, no subdirectory, no database yet.

    So that anything a refused start would create shows; and a file.
    """
    cache = os.path.join(root, 'cache')
    os.mkdir(cache)
    with open(os.path.join(cache, caches.new_id()), 'wb') as f:
        f.write(b'x' * caches.KIB)
    with open(os.path.join(root, 'a-file'), 'wb') as f:
        f.write(b'not a directory\n')
    with open(os.path.join(root, 'broken-policy.yaml'), 'w') as f:
        f.write('"cache_list": [unclosed\n')
    with open(os.path.join(root, 'bad-rule-policy.yaml'), 'w') as f:
        f.write('"cache_list": "role:admin and or"\n')
    os.mkdir(os.path.join(root, 'state'))
    with open(os.path.join(root, 'state', 'state.db'), 'wb') as f:
        f.write(b'\0not an SQLite database' * 64)


def refused_start(root, program, case):
    """Run ``program`` on ``case``: (result, before, after, root)."""
    make_site(root)
    config = write_case(root, case, processes.free_port())
    args = ['--config-file', config]
    if program == 'cache-maint-manage':
        args.append('prune')
    guard = (fs.read_only(os.path.join(root, 'cache'))
             if case == 'read-only cache dir' else contextlib.nullcontext())
    with guard:
        before = hostile.tree(root)
        result = processes.run_script(program, args)
        after = hostile.tree(root)
    return result, before, after, root


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
    result, before, after, root = refused[(program, case)]

    assert result.returncode != 0, result
    if case in CONFIGURATION_CASES:
        assert result.returncode == 78, result
    assert expected_message(root, case) in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'Traceback' not in result.stderr + result.stdout, result
    assert PASSWORD not in result.stderr + result.stdout
    if program == 'cache-maint-manage':
        assert result.stdout == ''
    assert after == before, 'a refused start changed the disk'


def test_a_listener_already_in_use_is_refused_before_the_cache_is_touched(
        tmp_path):
    """The port is taken: cache-maint refuses, naming [api] bind_port."""
    cache = caches.SqliteCache(tmp_path / 'cache')
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
        config = settings.write_config(tmp_path / 'cache-maint.conf', {
            'DEFAULT': {'image_cache_dir': cache.path,
                        'image_cache_driver': 'sqlite'},
            'api': {'bind_host': '127.0.0.1', 'bind_port': port,
                    'auth_strategy': 'noauth2'},
            'metrics': {'bind_port': processes.free_port()}})
        before = hostile.tree(tmp_path)
        result = processes.run_script('cache-maint', ['--config-file', config])
    finally:
        holder.communicate('')
    assert result.returncode != 0
    assert 'bind_port' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
    assert hostile.tree(tmp_path) == before


def test_typos_are_reported_with_the_nearest_name(tmp_path):
    """Unknown options nobody reads are a warning, not silence (item 10).

    cache-maint's own file is looked at whole; glance-api.conf only for
    cache-like names in [DEFAULT] and cache-maint's own groups, as it is
    full of options that are Glance's alone.
    """
    cache = caches.SqliteCache(tmp_path / 'cache')
    glance = settings.write_config(tmp_path / 'glance-api.conf', {
        'DEFAULT': {'image_cache_dir': cache.path, 'workers': 4,
                    'image_cache_stal_time': 60, 'show_multiple_locations':
                    'false'},
        'glance_store': {'stores': 'file'}})
    os.mkdir(tmp_path / 'daemon')
    daemon = running.Daemon(
        tmp_path / 'daemon', cache.path, config_files=[glance],
        api={'treads': 4}, sections={'prunee': {'watch': 'true'}},
        image_cache_max_sise=1024)
    own = daemon.config_path
    try:
        daemon.start()
        log = daemon.log()
    finally:
        daemon.stop()
    expected = [
        '%s: [DEFAULT] image_cache_stal_time is not an option cache-maint '
        'knows, and is ignored; did you mean image_cache_stall_time?' % glance,
        '%s: [DEFAULT] image_cache_max_sise is not an option cache-maint '
        'knows, and is ignored; did you mean image_cache_max_size?' % own,
        '%s: [api] treads is not an option cache-maint knows, and is '
        'ignored; did you mean threads?' % own]
    for line in expected:
        assert line in log, log
    for glances_own in ('workers', 'show_multiple_locations', 'stores'):
        assert '] %s is not an option' % glances_own not in log


def test_a_bad_value_is_one_plain_line(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    config = settings.write_config(tmp_path / 'cache-maint.conf', {
        'DEFAULT': {'image_cache_dir': cache.path,
                    'image_cache_driver': 'sqlite',
                    'image_cache_max_size': '10G'},
        'api': {'auth_strategy': 'noauth2'}})
    result = processes.run_script('cache-maint', ['--config-file', config])
    assert result.returncode == 78
    assert result.stderr.strip() == (
        "cache-maint: configuration error: invalid value '10G' for "
        '[DEFAULT] image_cache_max_size in %s: invalid literal for int() '
        "with base 10: '10G'" % config)


def test_a_second_service_on_the_same_cache_is_refused(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    for name in ('first', 'second'):
        os.mkdir(tmp_path / name)
    with running.daemon(tmp_path / 'first', cache.path) as first:
        second = running.Daemon(tmp_path / 'second', cache.path,
                                cache_prune_interval=0,
                                cache_clean_interval=0)
        result = processes.run_script('cache-maint',
                                      ['--config-file', second.config_path])
        assert result.returncode == 1
        assert ('another cache-maint service (pid %d) already maintains '
                'this cache' % first.process.pid) in result.stderr
        assert rawhttp.answers(first.port)


def test_check_config_says_what_a_start_would(tmp_path):
    cache = caches.SqliteCache(tmp_path / 'cache')
    good = settings.write_config(tmp_path / 'good.conf', {
        'DEFAULT': {'image_cache_dir': cache.path,
                    'image_cache_driver': 'sqlite'},
        'api': {'auth_strategy': 'noauth2'}})
    result = processes.run_script('cache-maint',
                                  ['--check-config', '--config-file', good])
    assert result.returncode == 0, result.stderr
    assert 'can be used' in result.stdout
    bad = settings.write_config(tmp_path / 'bad.conf', {
        'DEFAULT': {'image_cache_dir': cache.path,
                    'image_cache_driver': 'sqlite'},
        'api': {'auth_strategy': 'keystone'}})
    result = processes.run_script('cache-maint',
                                  ['--check-config', '--config-file', bad])
    assert result.returncode == 78
    assert '[keystone_authtoken] sets no auth_type' in result.stderr
