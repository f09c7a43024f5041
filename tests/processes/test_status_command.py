"""The real ``cache-maint-status upgrade check``, run as an operator does."""

import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from tests.support import processes
from tests.support import settings

TITLES = ['Configuration', 'Cache directory', 'Metadata driver',
          'Node reference', 'Node index', 'Keystone authentication',
          'Policy file']

#: The configuration the package ships, the embedded default.
EMBEDDED = pathlib.Path(__file__).resolve().parents[2] / 'etc' / (
    'cache-maint.conf')
EMBEDDED_CACHE_DIR = '/tmp/cache-maint/image-cache'

#: oslo.upgradecheck's statuses.
SUCCESS, WARNING, FAILURE, ERROR = 0, 1, 2, 255


def run_all(*argvs):
    """Run ``cache-maint-status`` once per argv, all at once; in order."""
    started = [subprocess.Popen(
        [processes.console_script('cache-maint-status')]
        + [str(arg) for arg in argv], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True) for argv in argvs]
    done = []
    for process in started:
        try:
            stdout, stderr = process.communicate(
                timeout=processes.DEADLINE * 2)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail('%s did not exit within %s s'
                        % (' '.join(process.args), processes.DEADLINE * 2))
        done.append(subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr))
    return done


def check(config_path, *args):
    """The argv of ``upgrade check`` on one config file."""
    return ('--config-file', config_path, 'upgrade', 'check') + args


def embedded_default(tmp_path):
    """The shipped etc/cache-maint.conf, on a cache directory of the test's.

    The directory is made, and nothing in it, as the README says.
    """
    text = EMBEDDED.read_text()
    assert EMBEDDED_CACHE_DIR in text
    cache_dir = tmp_path / 'image-cache'
    cache_dir.mkdir()
    path = tmp_path / 'cache-maint.conf'
    path.write_text(text.replace(EMBEDDED_CACHE_DIR, str(cache_dir)))
    return path


def as_json(result):
    """{title: (code, details)} of a ``--json`` run, checked as a whole."""
    answer = json.loads(result.stdout)
    assert [c['check'] for c in answer['checks']] == TITLES
    found = {c['check']: (c['result'], c['details'])
             for c in answer['checks']}
    assert result.returncode == max(code for code, _ in found.values())
    return found


def test_the_embedded_default_answers(tmp_path):
    config = embedded_default(tmp_path)
    table, machine = run_all(check(config), check(config, '--json'))
    assert table.returncode in (SUCCESS, WARNING), table.stderr
    assert table.stderr == ''
    for title in TITLES:
        assert 'Check: %s' % title in table.stdout
    assert 'Result: Failure' not in table.stdout
    found = as_json(machine)
    assert machine.returncode == table.returncode
    assert found['Keystone authentication'][0] == SUCCESS
    assert 'auth_strategy is noauth2' in found['Keystone authentication'][1]
    assert found['Node reference'] == (SUCCESS,
                                       'not used by the sqlite driver')
    # glance-api has not run there: its subdirectories and its database
    # are missing, and the check made neither.
    assert found['Cache directory'][0] == WARNING
    assert found['Metadata driver'][0] == WARNING
    assert list((tmp_path / 'image-cache').iterdir()) == []


def broken(tmp_path, name, **sections):
    """A config file, on an empty Glance cache, with ``sections`` over it."""
    cache = tmp_path / 'cache'
    if not cache.exists():
        for sub in ('incomplete', 'invalid', 'queue'):
            (cache / sub).mkdir(parents=True)
    written = {'DEFAULT': {'image_cache_dir': str(cache),
                           'image_cache_driver': 'sqlite'},
               'api': {'auth_strategy': 'noauth2'}}
    for section, options in sections.items():
        written[section] = dict(written.get(section, {}), **options)
    return settings.write_config(tmp_path / name, written)


def test_a_broken_configuration_fails_naming_the_option(tmp_path):
    (tmp_path / 'policy.yaml').write_text(
        'cache_list: "role:admin\n  - ]: {\n')
    cases = [
        (broken(tmp_path, 'value.conf',
                DEFAULT={'image_cache_max_size': 'lots'}),
         'Configuration', '[DEFAULT] image_cache_max_size'),
        (broken(tmp_path, 'nodir.conf',
                DEFAULT={'image_cache_dir': str(tmp_path / 'nowhere')}),
         'Cache directory', '[DEFAULT] image_cache_dir'),
        (broken(tmp_path, 'policy.conf', oslo_policy={
            'policy_file': str(tmp_path / 'policy.yaml')}),
         'Policy file', '[oslo_policy] policy_file'),
        (broken(tmp_path, 'keystone.conf',
                api={'auth_strategy': 'keystone'}),
         'Keystone authentication', '[keystone_authtoken]'),
    ]
    results = run_all(*[check(config, '--json') for config, _, _ in cases]
                      + [check(config) for config, _, _ in cases])
    machine, tables = results[:len(cases)], results[len(cases):]
    for (config, title, option), result, table in zip(cases, machine,
                                                      tables):
        assert result.returncode == FAILURE, (config, result.stdout)
        assert result.stderr == '', result.stderr
        code, details = as_json(result)[title]
        assert code == FAILURE
        assert option in details, (config, details)
        assert table.returncode == FAILURE
        assert 'Result: Failure' in table.stdout
        assert 'Traceback' not in table.stdout + table.stderr
    assert not (tmp_path / 'nowhere').exists()


def test_what_cannot_be_read_is_one_line_and_the_error_status(tmp_path):
    (tmp_path / 'unparsable.conf').write_text('[DEFAULT\nimage_cache_dir\n')
    os.mkfifo(tmp_path / 'fifo.conf')
    cases = [
        # Never waited on for ever, nor read until memory runs out.
        (check(tmp_path / 'fifo.conf'),
         ['configuration error', 'fifo.conf', 'is not a regular file']),
        (check('/dev/zero'),
         ['configuration error', '/dev/zero', 'is not a regular file']),
        (check(tmp_path / 'missing.conf'),
         ['configuration error', 'missing.conf']),
        (check(tmp_path), ['configuration error', str(tmp_path),
                           'is not a regular file']),
        (check(tmp_path / 'unparsable.conf'),
         ['configuration error', 'unparsable.conf']),
        (('--config-file', broken(tmp_path, 'ok.conf'), 'upgrade'),
         ['configuration error', 'check']),
        (('--config-dir', tmp_path / 'nodir', 'upgrade', 'check'),
         ['configuration error', 'nodir']),
    ]
    for (argv, needles), result in zip(cases, run_all(
            *[argv for argv, _ in cases])):
        assert result.returncode == ERROR, (argv, result.stderr)
        assert result.stdout == ''
        lines = result.stderr.splitlines()
        assert len(lines) == 1, (argv, result.stderr)
        assert lines[0].startswith('cache-maint-status: '), lines
        for needle in needles:
            assert needle in lines[0], (argv, lines[0])


#: The console script's own code, with one check given a bug.
CRASHING = textwrap.dedent('''
    import sys
    from cache_maint import upgrade_checks
    from cache_maint.cmd import status

    def broken(path):
        raise RuntimeError('a bug in the policy check')

    upgrade_checks._policy_rules = broken
    sys.argv[0] = 'cache-maint-status'
    sys.exit(status.main())
''')


@pytest.mark.parametrize('debug', [False, True])
def test_a_check_that_crashes_is_one_line_and_255(tmp_path, debug):
    (tmp_path / 'policy.yaml').write_text('cache_list: "role:admin"\n')
    config = broken(tmp_path, 'crash.conf',
                    DEFAULT={'debug': str(debug).lower()})
    result = subprocess.run(
        [sys.executable, '-c', CRASHING] + list(map(str, check(config))),
        capture_output=True, text=True, timeout=processes.DEADLINE * 2)
    assert result.returncode == ERROR
    assert result.stdout == ''
    line = ('cache-maint-status: error: the "Policy file" check failed '
            'unexpectedly: RuntimeError: a bug in the policy check')
    if debug:
        assert 'Traceback' in result.stderr
        assert result.stderr.splitlines()[-1] == line
    else:
        assert result.stderr == line + '\n'


def test_version_and_help():
    version, usage = run_all(('--version',), ('--help',))
    assert version.returncode == 0
    assert version.stdout.strip() == importlib.metadata.version(
        'cache-maint')
    assert usage.returncode == 0
    assert '--config-file' in usage.stdout and 'upgrade' in usage.stdout
