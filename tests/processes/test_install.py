"""What a wheel installs, built and installed the way an operator does.

The wheel comes from ``python -m build`` on a copy of the source tree; it
is installed with pip under a scratch prefix, the same layout as a
virtualenv's or ``/usr/local``'s: the commands in ``bin/``, the files a
deployment copies in ``share/cache-maint/``. The systemd unit is checked
with ``systemd-analyze verify`` where systemd is installed, both as
shipped (a system install) and with the virtualenv drop-in.
"""

import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
VERSION = importlib.metadata.version('cache-maint')
COMMANDS = ('cache-maint', 'cache-maint-manage', 'cache-maint-status')
SHARED = ('cache-maint.conf.sample', 'policy.yaml.sample',
          'cache-maint.service', 'cache-maint-virtualenv.conf',
          'cache-maint-alerts.yaml')
#: What a source distribution holds; the rest of a checkout (virtualenvs,
#: build output, git) is left out of the copy the wheel is built from.
SOURCES = ('setup.cfg', 'setup.py', 'pyproject.toml', 'README.rst',
           'LICENSE', 'cache_maint', 'etc')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    tree = tmp_path_factory.mktemp('source')
    for name in SOURCES:
        source = os.path.join(ROOT, name)
        if os.path.isdir(source):
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns(
                '__pycache__', '*.egg-info'))
        else:
            shutil.copy(source, tree / name)
    dist = tmp_path_factory.mktemp('dist')
    subprocess.run([sys.executable, '-m', 'build', '--wheel', '--outdir',
                    str(dist), str(tree)], check=True, capture_output=True)
    [path] = glob.glob(str(dist / '*.whl'))
    return path


@pytest.fixture(scope='module')
def prefix(wheel, tmp_path_factory):
    prefix = tmp_path_factory.mktemp('prefix')
    # --no-deps: the dependencies are this virtualenv's already. Without
    # --ignore-installed, pip would first uninstall the cache-maint this
    # virtualenv runs the tests with.
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet',
                    '--no-deps', '--ignore-installed',
                    '--no-warn-script-location', '--prefix', str(prefix),
                    wheel], check=True, capture_output=True)
    return prefix


def _site_packages(prefix):
    return sysconfig.get_path('purelib', vars={'base': str(prefix)})


def test_the_wheel_is_named_after_the_version(wheel):
    assert os.path.basename(wheel) == 'cache_maint-%s-py3-none-any.whl' % (
        VERSION)


def test_the_wheel_declares_every_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        [entry_points] = [name for name in archive.namelist()
                          if name.endswith('.dist-info/entry_points.txt')]
        text = archive.read(entry_points).decode()
    for command in COMMANDS:
        assert '\n%s = cache_maint.cmd.' % command in text


def test_installing_leaves_this_environment_alone(prefix):
    assert importlib.metadata.version('cache-maint') == VERSION
    assert shutil.which('cache-maint-manage',
                        path=os.path.dirname(sys.executable))


def test_the_commands_are_installed_and_answer(prefix):
    env = dict(os.environ, PYTHONPATH=_site_packages(prefix))
    for command in COMMANDS:
        path = os.path.join(prefix, 'bin', command)
        assert os.access(path, os.X_OK), command
    result = subprocess.run([os.path.join(prefix, 'bin', 'cache-maint'),
                             '--version'], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == VERSION


def test_the_deployment_files_are_installed_under_share(prefix):
    share = os.path.join(prefix, 'share', 'cache-maint')
    assert sorted(os.listdir(share)) == sorted(SHARED)
    etc = {'cache-maint-alerts.yaml': 'etc/prometheus/'}
    for name in SHARED:
        with open(os.path.join(share, name)) as installed, \
                open(os.path.join(ROOT, etc.get(name, 'etc/'), name)) as src:
            assert installed.read() == src.read(), name


systemd_analyze = shutil.which('systemd-analyze')
#: Where systemd looks for a command given without a path.
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
needs_systemd = pytest.mark.skipif(systemd_analyze is None,
                                   reason='systemd-analyze is not installed')


def _verify(unit, root=None, unit_path=None):
    """``systemd-analyze verify``: its output, empty when all is well."""
    # The man pages the unit names are built by tox -e docs, not installed
    # by the wheel.
    command = [systemd_analyze, 'verify', '--man=no']
    env = dict(os.environ)
    if root:
        command.append('--root=%s' % root)
    if unit_path:
        # The trailing colon keeps systemd's own unit directories (the
        # targets the unit names) after ours.
        env['SYSTEMD_UNIT_PATH'] = '%s:' % unit_path
    result = subprocess.run(command + [unit], env=env, capture_output=True,
                            text=True)
    return result.returncode, result.stdout + result.stderr


@needs_systemd
def test_the_unit_verifies_for_a_system_install(prefix, tmp_path):
    """As shipped: ``cache-maint`` found in ``/usr/local/bin``.

    An image of such a system, made of copies (``--root`` resolves every
    path inside it): pip's script where a system-wide pip puts it, the
    ``kill`` of ``ExecReload``, systemd's own units.
    """
    root = tmp_path / 'root'
    bin_dir = root / 'usr' / 'local' / 'bin'
    bin_dir.mkdir(parents=True)
    shutil.copy(os.path.join(prefix, 'bin', 'cache-maint'), bin_dir)
    (root / 'bin').mkdir()
    shutil.copy('/bin/kill', root / 'bin')
    shutil.copytree('/usr/lib/systemd/system',
                    root / 'usr' / 'lib' / 'systemd' / 'system',
                    symlinks=True)
    units = root / 'etc' / 'systemd' / 'system'
    units.mkdir(parents=True)
    shutil.copy(os.path.join(prefix, 'share', 'cache-maint',
                             'cache-maint.service'), units)
    assert _verify('cache-maint.service', root=root) == (0, '')


@needs_systemd
def test_the_unit_verifies_for_a_virtualenv_with_drop_in(prefix, tmp_path):
    """The drop-in, with this install's prefix for ``/opt/cache-maint``."""
    share = os.path.join(prefix, 'share', 'cache-maint')
    shutil.copy(os.path.join(share, 'cache-maint.service'), tmp_path)
    drop_in = tmp_path / 'cache-maint.service.d'
    drop_in.mkdir()
    with open(os.path.join(share, 'cache-maint-virtualenv.conf')) as f:
        text = f.read()
    assert '/opt/cache-maint/bin/cache-maint ' in text
    (drop_in / 'virtualenv.conf').write_text(
        text.replace('/opt/cache-maint', str(prefix)))
    assert _verify('cache-maint.service', unit_path=tmp_path) == (0, '')
    # Without the drop-in, the same unit does not find the command (unless
    # this machine has a system install too): the check is not vacuous.
    shutil.rmtree(drop_in)
    if shutil.which('cache-maint', path=SYSTEM_PATH):
        return
    status, output = _verify('cache-maint.service', unit_path=tmp_path)
    assert status != 0 and 'cache-maint is not executable' in output
