"""A real glance-api 33 process with Keystone authentication, on loopback.

``GlanceAPI`` runs Glance's own WSGI application
(``glance.wsgi.api:application`` of glance==33.0.0) from a virtualenv of
its own (``venv``: Glance, keystonemiddleware and waitress installed) under
``waitress-serve``, with the paste pipeline Glance ships for
``flavor = keystone+cachemanagement``: keystonemiddleware's ``authtoken``,
then the image cache middleware and the cache management API. Its images
database is sqlite, made by ``glance-manage db sync``; its store is a
filesystem store; its image cache (sqlite driver) is ``cache_dir``, which
may be a cache cache-maint maintains, and ``[oslo_concurrency] lock_path``
is ``lock_path``, so that a cache-maint reading ``config_path`` first (as
in production, where it reads glance-api.conf) locks the same files.
Everything it writes is under ``workdir``, except what it caches.

``register`` is the Keystone side, composed of
``tests.support.keystone.Keystone``'s public API: the ``image`` service in
the catalog (Glance's own service user comes from ``Keystone.add_user``).

Glance's cache middleware caches only the images downloaded through it:
starting glance-api on a full cache changes nothing in it.
"""

import os
import pathlib
import shutil
import signal
import subprocess

from tests.support import processes
from tests.support import settings

#: The Glance this harness is written against.
GLANCE_VERSION = '33.0.0'
#: Glance's paste pipeline with Keystone, the cache and its management API.
FLAVOR = 'keystone+cachemanagement'
#: Where pip puts Glance's sample files (setup.cfg's data_files) in a venv.
PASTE_SAMPLE = pathlib.Path('etc', 'glance', 'glance-api-paste.ini')
#: Catalog type and name Glance is registered under.
SERVICE_TYPE = 'image'
SERVICE_NAME = 'glance'
#: How long glance-api gets to answer after a start; a deadline for
#: polling, never a measurement.
START_DEADLINE = 120
STOP_DEADLINE = 30
MANAGE_DEADLINE = 300
THREADS = 8


class GlanceError(RuntimeError):
    """glance-api could not be set up, started or registered."""


def _clean_environment(**extra):
    """The caller's environment without what would steer another Python."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV',
                                   '__PYVENV_LAUNCHER__')}
    environment.update(extra)
    return environment


def check_venv(venv):
    """``venv`` as an absolute path, if it holds Glance 33 and what runs it.

    Raises GlanceError naming what is missing.
    """
    venv = pathlib.Path(venv).absolute()
    missing = [str(venv / 'bin' / name)
               for name in ('python', 'glance-manage', 'waitress-serve')
               if not os.access(venv / 'bin' / name, os.X_OK)]
    if missing:
        raise GlanceError('%s is not a virtualenv with glance==%s and '
                          'waitress: missing %s'
                          % (venv, GLANCE_VERSION, ', '.join(missing)))
    try:
        result = subprocess.run(
            [str(venv / 'bin' / 'python'), '-c',
             'import importlib.metadata as m; print(m.version("glance"))'],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            env=_clean_environment(), timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GlanceError('could not ask %s for its Glance: %s' % (venv, e))
    version = result.stdout.strip()
    if result.returncode != 0 or version != GLANCE_VERSION:
        raise GlanceError('%s holds glance %s, not %s: pip install '
                          'glance==%s into it\n%s'
                          % (venv, version or '(none)', GLANCE_VERSION,
                             GLANCE_VERSION, result.stderr[-2000:]))
    if not (venv / PASTE_SAMPLE).exists():
        raise GlanceError('%s has no %s: Glance was not installed by pip '
                          'into it' % (venv, PASTE_SAMPLE))
    return venv


def register(keystone, glance, interfaces=('public', 'internal')):
    """``glance`` in ``keystone``'s catalog as the ``image`` service."""
    keystone.create_service(SERVICE_TYPE, SERVICE_NAME)
    existing = {(endpoint['interface'], endpoint['url'])
                for endpoint in keystone.endpoints(SERVICE_TYPE)}
    for interface in interfaces:
        if (interface, glance.url('')) not in existing:
            keystone.create_endpoint(SERVICE_TYPE, interface, glance.url(''))


class GlanceAPI:
    """One glance-api 33 in ``workdir``, run from the virtualenv ``venv``.

    :param authtoken: its ``[keystone_authtoken]`` section (for example
        ``Keystone.authtoken_section(keystone.add_user(SERVICE_NAME))``)
    :param cache_dir: ``image_cache_dir`` (sqlite driver)
    :param lock_path: ``[oslo_concurrency] lock_path`` (created if missing)
    :param max_size: ``image_cache_max_size`` (Glance itself prunes only
        when asked to: ``POST /v2/cache/prune`` or glance-cache-pruner)

    ``setup()`` writes the configuration and makes the images database,
    ``start()`` serves it and waits for ``GET /versions``, ``stop()``
    stops it (idempotent).
    """

    def __init__(self, workdir, venv, authtoken, cache_dir, lock_path,
                 max_size, host='127.0.0.1', port=None):
        self.workdir = pathlib.Path(workdir).absolute()
        self.venv = pathlib.Path(venv).absolute()
        self.authtoken = dict(authtoken)
        self.cache_dir = pathlib.Path(cache_dir).absolute()
        self.lock_path = pathlib.Path(lock_path).absolute()
        self.max_size = max_size
        self.host = host
        self.port = port or processes.free_port()
        self.etc = self.workdir / 'etc'
        self.config_path = self.etc / 'glance-api.conf'
        self.paste_path = self.etc / 'glance-api-paste.ini'
        self.log_path = self.workdir / 'glance-api.log'
        self.server_log_path = self.workdir / 'waitress.log'
        self.manage_log_path = self.workdir / 'glance-manage.log'
        self.process = None

    def url(self, path):
        return 'http://%s:%d%s' % (self.host, self.port, path)

    # -- life cycle ----------------------------------------------------

    def setup(self):
        """Write glance-api.conf and the paste file; ``glance-manage db sync``.

        The paste file is Glance's own, from the virtualenv.
        """
        for directory in (self.etc, self.workdir / 'store',
                          self.workdir / 'staging', self.lock_path):
            directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.venv / PASTE_SAMPLE, self.paste_path)
        settings.write_config(self.config_path, self.sections())
        self._manage('db', 'sync')
        return self

    def sections(self):
        """glance-api.conf, as ``{section: {option: value}}``."""
        return {
            'DEFAULT': {
                'image_cache_dir': self.cache_dir,
                'image_cache_driver': 'sqlite',
                'image_cache_max_size': self.max_size,
                'image_cache_stall_time': 86400,
                'enabled_import_methods': '[]',
                'node_staging_uri': 'file://%s' % (self.workdir / 'staging'),
                'log_file': self.log_path,
                'use_stderr': 'false',
                'debug': 'false',
            },
            'paste_deploy': {'flavor': FLAVOR,
                             'config_file': self.paste_path},
            'database': {'connection': 'sqlite:///%s'
                         % (self.workdir / 'glance.sqlite')},
            'glance_store': {
                'stores': 'file',
                'default_store': 'file',
                'filesystem_store_datadir': self.workdir / 'store',
            },
            'oslo_concurrency': {'lock_path': self.lock_path},
            'keystone_authtoken': self.authtoken,
        }

    def start(self, timeout=START_DEADLINE):
        """Serve Glance with waitress; return once GET /versions answers."""
        if self.running:
            return self
        with open(self.server_log_path, 'ab') as out:
            self.process = subprocess.Popen(
                [str(self.venv / 'bin' / 'waitress-serve'),
                 '--listen=%s:%d' % (self.host, self.port),
                 '--threads=%d' % THREADS, 'glance.wsgi.api:application'],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                env=_clean_environment(OS_GLANCE_CONFIG_DIR=str(self.etc)))
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=STOP_DEADLINE):
        """SIGTERM waitress's session, SIGKILL it after ``timeout``."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
        else:
            process.wait()

    def diagnostics(self):
        """The tails of waitress's output and Glance's log."""
        return ('--- %s ---\n%s\n--- %s ---\n%s'
                % (self.server_log_path,
                   processes.read_tail(self.server_log_path),
                   self.log_path, processes.read_tail(self.log_path)))

    # -- internals -----------------------------------------------------

    def _manage(self, *args):
        argv = [str(self.venv / 'bin' / 'glance-manage'), '--config-file',
                str(self.config_path)] + list(args)
        with open(self.manage_log_path, 'ab') as out:
            try:
                result = subprocess.run(
                    argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT,
                    env=_clean_environment(), timeout=MANAGE_DEADLINE)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise GlanceError('glance-manage %s failed: %s\n%s'
                                  % (' '.join(args), e, processes.read_tail(
                                      self.manage_log_path)))
        if result.returncode != 0:
            raise GlanceError('glance-manage %s exited with status %d\n%s'
                              % (' '.join(args), result.returncode,
                                 processes.read_tail(self.manage_log_path)))

    def _wait_ready(self, timeout):
        url = self.url('/versions')
        processes.wait_for(
            lambda: processes.answers(self.process, url, 'glance-api',
                                      self.diagnostics),
            'glance-api to answer GET %s' % url,
            timeout=timeout, diagnostics=self.diagnostics)
