"""etc/cache-maint.service: what an operator installs as it is."""

import os
import shutil
import subprocess

import pytest

from cache_maint.cmd import common

UNIT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    __file__))), 'etc', 'cache-maint.service')


def settings():
    """{(section, key): [values]} of the unit file."""
    found, section = {}, None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('['):
                section = line.strip('[]')
                continue
            key, _, value = line.partition('=')
            found.setdefault((section, key), []).append(value)
    return found


def test_the_command_is_found_wherever_pip_or_a_package_put_it():
    command = settings()[('Service', 'ExecStart')][0].split()[0]
    # systemd looks a bare name up in /usr/local/bin and /usr/bin.
    assert command == 'cache-maint'


def test_a_configuration_error_is_not_restarted_for_ever():
    unit = settings()
    assert unit[('Service', 'Restart')] == ['on-failure']
    prevented = unit[('Service', 'RestartPreventExitStatus')][0].split()
    assert str(common.EX_CONFIG) in prevented
    assert ('Unit', 'StartLimitBurst') in unit
    assert ('Unit', 'StartLimitIntervalSec') in unit


def test_the_embedded_default_cache_under_tmp_stays_visible():
    assert ('Service', 'PrivateTmp') not in settings()


def test_it_says_where_its_documentation_is():
    assert settings()[('Unit', 'Documentation')]


@pytest.mark.skipif(shutil.which('systemd-analyze') is None,
                    reason='systemd-analyze is not installed')
def test_systemd_accepts_it(tmp_path):
    unit = tmp_path / 'cache-maint.service'
    shutil.copy(UNIT, unit)
    result = subprocess.run(['systemd-analyze', 'verify', str(unit)],
                            capture_output=True, text=True)
    # Neither the command nor its man pages are installed where this test
    # runs; anything else systemd says is a fault of the file.
    complaints = [line for line in (result.stdout + result.stderr)
                  .splitlines() if line.strip()
                  and 'Command cache-maint is not executable' not in line
                  and "Command 'man " not in line]
    assert complaints == []
