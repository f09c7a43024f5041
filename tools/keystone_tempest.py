"""Run the cache-maint tempest plugin against a real Keystone on loopback.

    python -m tools.keystone_tempest [--workdir DIR] [--keystone-venv DIR]
                                     [--glance-venv DIR] [--regex REGEX]
                                     [--keep]
                                     [-- extra tempest run arguments]

From the top of a checkout, in a virtualenv holding cache-maint and
tempest 47. The script

1. installs Keystone 30 from PyPI into a virtualenv of its own (once:
   ``tests.support.keystone.install``), sets it up in the work directory and
   serves it on a free loopback port;
2. fills an image cache with ``cache-maint-manage scratch-cache`` beyond
   ``image_cache_max_size``, and starts the real ``cache-maint`` on it,
   timers and the prune watcher off, validating tokens with Keystone
   (``[api] auth_strategy = keystone``);
3. with ``--glance-venv DIR`` (a virtualenv holding glance==33.0.0), also
   serves a real glance-api 33 from it on loopback
   (``tests.support.glance_api``): Keystone authentication as its own
   service user, the image cache middleware (``flavor =
   keystone+cachemanagement``) caching into the very directory cache-maint
   maintains, with the same ``[oslo_concurrency] lock_path`` (cache-maint
   reads glance-api.conf first, as in production), registered in the
   catalog as ``image``; tempest is then told Glance is there and caches
   into cache-maint's cache, so the plugin's scenario test runs (and
   tempest runs with ``--serial``: the scenario's images would otherwise
   come and go under the API tests' prune);
4. installs the tempest plugin of this checkout (editable) if ``tempest
   list-plugins`` does not show it, writes a tempest workspace whose
   ``tempest.conf`` points at them, and runs ``tempest run --regex
   cache_maint`` in it, exiting with tempest's status (2: the environment
   could not be brought up).

Everything lives in the work directory (a new temporary one by default);
``--keep`` leaves the servers running and prints how to reach them.
``--regex tempest.api.identity.v3.test_tokens`` runs tempest's own tests
instead, to check the environment without the plugin.
"""

import argparse
import configparser
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import time

import pytest

from tests.support import glance_api
from tests.support import keystone as keystone_harness
from tests.support import processes
from tests.support import running

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLUGIN_SOURCE = ROOT / 'cache-maint-tempest-plugin'
#: The plugin's package, as ``tempest list-plugins`` shows its entry point.
PLUGIN_PACKAGE = 'cache_maint_tempest_plugin'
DEFAULT_REGEX = 'cache_maint'
#: The cache's limit, and what scratch-cache fills it with: over the limit,
#: so that a prune has work. The images are sparse: no disk is used.
MAX_SIZE = 64 * 1024 * 1024
SCRATCH_SIZE = '96M'
#: Catalog type of cache-maint (the plugin's ``[cache_maint]
#: catalog_type``), registered so the catalog is complete as well.
CATALOG_TYPE = 'image-cache'
#: Status when the environment could not be brought up.
SETUP_FAILED = 2
#: The tempest-enabled services: only identity and cache-maint run here
#: (and glance, with --glance-venv).
UNAVAILABLE_SERVICES = ('glance', 'nova', 'cinder', 'neutron', 'swift')
#: What the scenario test's images are, for tempest's image options.
IMAGE_FORMATS = {'container_formats': 'bare', 'disk_formats': 'raw'}


class ToolError(Exception):
    """A step of the script failed; the message says which and why."""


def parse_args(argv):
    """The script's own options, and what follows ``--`` for tempest."""
    if '--' in argv:
        split = argv.index('--')
        argv, extra = argv[:split], argv[split + 1:]
    else:
        extra = []
    parser = argparse.ArgumentParser(
        prog='python -m tools.keystone_tempest',
        description=__doc__.split('\n\n')[0],
        epilog='Arguments after -- go to "tempest run".')
    parser.add_argument('--workdir', type=pathlib.Path,
                        help='A new or empty directory for everything '
                             '(default: a new temporary directory)')
    parser.add_argument('--keystone-venv', type=pathlib.Path,
                        help="Keystone's virtualenv, made if missing "
                             '(default: $%s, else %s)'
                             % (keystone_harness.VENV_ENVIRONMENT_VARIABLE,
                                keystone_harness.DEFAULT_VENV))
    parser.add_argument('--glance-venv', type=pathlib.Path,
                        help='A virtualenv holding glance==%s: run a '
                             'glance-api from it, caching into '
                             'cache-maint\'s cache, so that the scenario '
                             'test runs (default: no Glance; the scenario '
                             'test skips)' % glance_api.GLANCE_VERSION)
    parser.add_argument('--regex', default=DEFAULT_REGEX,
                        help='The tests "tempest run" selects (default: '
                             '%(default)s, the plugin\'s tests)')
    parser.add_argument('--keep', action='store_true',
                        help='Leave Keystone, cache-maint (and glance-api) '
                             'running and print how to reach them')
    args = parser.parse_args(argv)
    args.tempest_args = extra
    return args


class Steps:
    """Prints each step as it starts and ends, and keeps its duration."""

    def __init__(self):
        self.timings = []
        self._start = time.monotonic()

    def run(self, what, function, *args):
        say('%s ...' % what)
        started = time.monotonic()
        result = function(*args)
        self.timings.append((what, time.monotonic() - started))
        say('%s: done in %.1f s' % (what, self.timings[-1][1]))
        return result

    def summary(self):
        lines = ['%6.1f s  %s' % (seconds, what)
                 for what, seconds in self.timings]
        lines.append('%6.1f s  in all' % (time.monotonic() - self._start))
        return '\n'.join(lines)


def say(message):
    print('keystone_tempest: %s' % message, flush=True)


def make_workdir(path):
    """The work directory: ``path`` if new or empty, else a new one."""
    if path is None:
        return pathlib.Path(tempfile.mkdtemp(prefix='keystone-tempest-'))
    path = path.absolute()
    if path.exists() and any(path.iterdir()):
        raise ToolError('--workdir %s is not empty: give a new or empty '
                        'directory (scratch-cache fills only an empty '
                        'cache)' % path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(workdir):
    """The image cache cache-maint maintains (and glance-api caches into)."""
    return workdir / 'cache-maint' / 'cache'


def make_daemon(workdir, keystone, config_files=()):
    """cache-maint's configuration, validating tokens with ``keystone``.

    Timers off (``cache_prune_interval``/``cache_clean_interval`` 0) and
    the watcher off (``running.Daemon`` writes ``[prune] watch = false``):
    the cache stays over its limit until a test prunes it.
    ``config_files`` (glance-api.conf) are read first, as in production:
    the lock path among others comes from there.
    """
    service_dir = workdir / 'cache-maint'
    service_dir.mkdir()
    return running.Daemon(
        service_dir, cache_dir(workdir),
        api={'auth_strategy': 'keystone'},
        sections={'keystone_authtoken': keystone.authtoken_section()},
        config_files=config_files,
        image_cache_max_size=MAX_SIZE, cache_prune_interval=0,
        cache_clean_interval=0)


def make_glance(workdir, keystone, venv):
    """glance-api's configuration and database, its own service user.

    It caches into cache-maint's cache directory and locks in a lock
    directory of the work directory, which cache-maint reads from its
    glance-api.conf.
    """
    credentials = keystone.add_user(glance_api.SERVICE_NAME)
    glance = glance_api.GlanceAPI(
        workdir / 'glance', venv, keystone.authtoken_section(credentials),
        cache_dir(workdir), workdir / 'locks', MAX_SIZE)
    return glance.setup()


def start_glance(keystone, glance):
    """Serve glance-api; register it in the catalog as ``image``."""
    glance.start()
    glance_api.register(keystone, glance)


def fill_cache(daemon):
    """``cache-maint-manage scratch-cache``: a cache over its limit.

    With the daemon's configuration files, glance-api.conf first: the
    same lock path as the service's.
    """
    argv = []
    for path in daemon.config_files + [daemon.config_path]:
        argv += ['--config-file', path]
    result = processes.run_script(
        'cache-maint-manage', argv + ['scratch-cache', '--size',
                                      SCRATCH_SIZE])
    if result.returncode != 0:
        raise ToolError('cache-maint-manage scratch-cache exited with '
                        'status %d:\n%s%s' % (result.returncode,
                                              result.stdout, result.stderr))
    print(result.stdout, end='', flush=True)


def register_cache_maint(keystone, daemon):
    """cache-maint's URL in the catalog, for clients that look it up."""
    keystone.create_service(CATALOG_TYPE, 'cache-maint')
    keystone.create_endpoint(CATALOG_TYPE, 'public', daemon.url(''))


def tempest_command():
    """The tempest console script of this virtualenv."""
    path = pathlib.Path(sys.executable).parent / 'tempest'
    if not os.access(path, os.X_OK):
        raise ToolError('tempest is not installed next to %s: pip install '
                        'tempest==47.0.0 into this virtualenv'
                        % sys.executable)
    return str(path)


def _run(argv, what, **kwargs):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True,
                            timeout=processes.DEADLINE * 10, **kwargs)
    if result.returncode != 0:
        raise ToolError('%s exited with status %d:\n%s%s'
                        % (what, result.returncode, result.stdout[-3000:],
                           result.stderr[-3000:]))
    return result.stdout


def plugin_installed(tempest):
    listing = _run([tempest, 'list-plugins'], 'tempest list-plugins')
    return PLUGIN_PACKAGE in listing


def ensure_plugin(tempest, required):
    """The checkout's tempest plugin, installed (editable) if missing.

    Installed rather than refused: the plugin is part of this checkout,
    and the script runs its tests; editable, as the project itself is in
    a developer's virtualenv, so edits to the tests take effect at once.
    """
    if plugin_installed(tempest):
        return 'already installed'
    if not (PLUGIN_SOURCE / 'setup.cfg').exists():
        message = ('the tempest plugin is neither installed nor in %s'
                   % PLUGIN_SOURCE)
        if required:
            raise ToolError(message)
        return message + '; running without it'
    _run([sys.executable, '-m', 'pip', 'install', '--quiet',
          '--disable-pip-version-check', '-e', str(PLUGIN_SOURCE)],
         'pip install -e %s' % PLUGIN_SOURCE)
    if not plugin_installed(tempest):
        raise ToolError('pip installed %s but tempest list-plugins does not '
                        'show %s' % (PLUGIN_SOURCE, PLUGIN_PACKAGE))
    return 'installed from %s' % PLUGIN_SOURCE


def tempest_options(keystone, daemon, glance=None):
    """tempest.conf's sections for this Keystone and this cache-maint.

    With ``glance``, Glance is available and caches into cache-maint's
    cache (``[cache_maint] glance_caching``), and its own cache API is
    checked too (``[image] image_caching_enabled``).
    """
    admin = keystone.admin
    options = {
        'auth': {'admin_username': admin.username,
                 'admin_password': admin.password,
                 'admin_project_name': admin.project_name,
                 'admin_domain_name': admin.user_domain_name,
                 'use_dynamic_credentials': 'true'},
        'identity': {'uri_v3': keystone.auth_url, 'auth_version': 'v3',
                     'region': keystone.region},
        'identity-feature-enabled': {'api_v2': 'false'},
        'service_available': dict(
            {service: 'false' for service in UNAVAILABLE_SERVICES},
            cache_maint='true'),
        # The cache is filled over its limit before the run: the prune
        # test must then find it so, or fail.
        'cache_maint': {'endpoint': daemon.url(''),
                        'cache_over_limit': 'true'},
    }
    if glance is not None:
        options['service_available']['glance'] = 'true'
        options['cache_maint']['glance_caching'] = 'true'
        options['image'] = dict(IMAGE_FORMATS, image_caching_enabled='true')
        options['image-feature-enabled'] = {'api_v2': 'true',
                                            'import_image': 'false'}
    return options


def write_workspace(workdir, tempest, keystone, daemon, glance=None):
    """``tempest init`` a workspace, then add to its ``etc/tempest.conf``.

    The workspace registry is a file of the work directory, not
    ``~/.tempest/workspace.yaml``.
    """
    workspace = workdir / 'tempest'
    _run([tempest, 'init', '--workspace-path',
          str(workdir / 'tempest-workspaces.yaml'), '--name',
          'cache-maint-%d' % daemon.port, str(workspace)], 'tempest init')
    config_path = workspace / 'etc' / 'tempest.conf'
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_path)
    for section, options in tempest_options(keystone, daemon,
                                            glance).items():
        if not parser.has_section(section):
            parser.add_section(section)
        for name, value in options.items():
            parser.set(section, name, value)
    with open(config_path, 'w') as f:
        parser.write(f)
    return workspace


def run_tempest(tempest, workspace, regex, extra):
    """``tempest run`` in the workspace, its output on ours; its status."""
    argv = [tempest, 'run', '--config-file',
            str(workspace / 'etc' / 'tempest.conf'), '--regex', regex]
    say('$ %s' % ' '.join(shlex.quote(arg) for arg in argv + extra))
    return subprocess.call(argv + extra, cwd=workspace,
                           stdin=subprocess.DEVNULL)


def print_logs(workdir, servers):
    say('logs under %s:' % workdir)
    keystone = servers.get('keystone')
    daemon = servers.get('cache-maint')
    glance = servers.get('glance')
    if keystone is not None:
        print('  Keystone:     %s\n                %s'
              % (keystone.log_path, keystone.server_log_path))
    if daemon is not None:
        print('  cache-maint:  %s' % daemon.log_path)
    if glance is not None:
        print('  glance-api:   %s\n                %s'
              % (glance.log_path, glance.server_log_path))
    workspace = workdir / 'tempest'
    if workspace.exists():
        print('  tempest:      %s' % (workspace / 'logs' / 'tempest.log'))
    sys.stdout.flush()


def print_tails(servers):
    for name in ('keystone', 'cache-maint', 'glance'):
        if servers.get(name) is not None:
            print(servers[name].diagnostics())
    sys.stdout.flush()


def print_reach(servers, workspace):
    """The export lines and commands of a kept environment."""
    keystone, daemon = servers['keystone'], servers['cache-maint']
    glance = servers.get('glance')
    environment = keystone.env(keystone.admin)
    environment['CACHE_MAINT_URL'] = daemon.url('')
    pids = [keystone.process.pid, daemon.process.pid]
    if glance is not None:
        environment['GLANCE_URL'] = glance.url('')
        pids.append(glance.process.pid)
    say('left running (--keep); to reach them as admin:')
    for name, value in sorted(environment.items()):
        print('export %s=%s' % (name, shlex.quote(value)))
    for label, credentials in (('member', keystone.member),
                               ('service', keystone.service)):
        print('# %s: user %s, project %s, password %s'
              % (label, credentials.username, credentials.project_name,
                 credentials.password))
    if glance is not None:
        print('# glance-api: %s (catalog type %s), config %s'
              % (glance.url(''), glance_api.SERVICE_TYPE,
                 glance.config_path))
    print('# tempest: cd %s && tempest run --config-file etc/tempest.conf '
          '--regex %s' % (workspace, DEFAULT_REGEX))
    print('# to stop them: kill -TERM %s' % ' '.join(map(str, pids)))
    sys.stdout.flush()


def bring_up(args, workdir, steps, servers):
    """Keystone, cache-maint (glance-api) and the workspace; its path.

    ``servers`` gets each server as soon as it exists, so that the caller
    can stop it, or print its logs, whatever happens next.
    """
    tempest = tempest_command()
    glance_venv = None
    if args.glance_venv is not None:
        glance_venv = steps.run('check the Glance virtualenv',
                                glance_api.check_venv, args.glance_venv)
    venv = steps.run('install Keystone (%s)' % keystone_harness.KEYSTONE_PIN,
                     keystone_harness.install, args.keystone_venv)
    keystone = servers['keystone'] = keystone_harness.Keystone(
        workdir / 'keystone', venv)
    steps.run('set up Keystone', keystone.setup)
    steps.run('start Keystone', keystone.start)
    say('Keystone at %s' % keystone.auth_url)
    glance = None
    config_files = []
    if glance_venv is not None:
        glance = servers['glance'] = steps.run(
            'set up glance-api (glance-manage db sync)', make_glance,
            workdir, keystone, glance_venv)
        config_files.append(glance.config_path)
    daemon = servers['cache-maint'] = make_daemon(workdir, keystone,
                                                  config_files)
    steps.run('fill a scratch cache', fill_cache, daemon)
    steps.run('start cache-maint', daemon.start)
    register_cache_maint(keystone, daemon)
    say('cache-maint at %s' % daemon.url(''))
    if glance is not None:
        # After scratch-cache, which fills only an empty cache: glance-api
        # opens the cache's database as it starts.
        steps.run('start glance-api', start_glance, keystone, glance)
        say('glance-api at %s' % glance.url(''))
    say('tempest plugin: %s' % steps.run(
        'check the tempest plugin', ensure_plugin, tempest,
        args.regex == DEFAULT_REGEX))
    workspace = steps.run('write the tempest workspace', write_workspace,
                          workdir, tempest, keystone, daemon, glance)
    say('tempest workspace %s' % workspace)
    return tempest, workspace


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    steps = Steps()
    servers = {}
    workdir = workspace = None
    status = SETUP_FAILED
    try:
        workdir = make_workdir(args.workdir)
        say('work directory %s' % workdir)
        tempest, workspace = bring_up(args, workdir, steps, servers)
        extra = list(args.tempest_args)
        if args.glance_venv is not None and '--serial' not in extra:
            # The scenario's images come and go in the cache the API
            # tests measure, and its prune would take the over-limit cache
            # from under the API prune test: one worker, the API tests
            # (which sort first) before the scenario.
            extra.append('--serial')
        status = steps.run('tempest run', run_tempest, tempest, workspace,
                           args.regex, extra)
        say('tempest exited with status %d' % status)
    except (ToolError, keystone_harness.KeystoneError,
            glance_api.GlanceError, pytest.fail.Exception,
            subprocess.SubprocessError) as e:
        say('FAILED: %s' % e)
    except KeyboardInterrupt:
        say('interrupted')
        workspace = None
    finally:
        if status != 0:
            print_tails(servers)
        if args.keep and workspace is not None:
            print_reach(servers, workspace)
        else:
            for name in ('glance', 'cache-maint', 'keystone'):
                if servers.get(name) is not None:
                    servers[name].stop()
        if workdir is not None:
            print_logs(workdir, servers)
        print(steps.summary(), flush=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
