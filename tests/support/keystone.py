"""A real Keystone 30 from PyPI, served on loopback for tests and tools.

``install`` makes a virtualenv of Keystone's own (its dependencies must not
meet cache-maint's), ``Keystone`` configures one server in a directory of
its own (sqlite, fernet tokens, its logs), bootstraps it, adds the users a
test needs and serves it with gunicorn. Everything it writes is under its
``workdir``; ``stop()`` leaves no process behind.

The client side (sessions, tokens, the catalog helpers) uses keystoneauth1
of whichever virtualenv runs the caller; Keystone itself runs only from its
own virtualenv.

Three things about Keystone 30 shape this module:

* ``keystone.wsgi.api:application`` parses ``sys.argv`` with oslo.config
  when it is imported, so gunicorn's own command line would make every
  worker exit with status 2 (and gunicorn respawn it forever). gunicorn is
  therefore started with no argument at all and reads its settings from
  ``gunicorn.conf.py`` in its working directory (``workdir``).
* The WSGI application finds its configuration through the environment
  variable ``OS_KEYSTONE_CONFIG_FILES`` (``;``-separated paths).
* ``keystone-manage bootstrap`` creates the roles reader, member, manager,
  admin and service (admin implies manager, which implies member, which
  implies reader). Under the default policy, ``identity:validate_token``
  allows ``rule:service_role``: a user with ``service`` on a project may
  validate anyone's token, which is what keystonemiddleware does.
"""

import contextlib
import dataclasses
import fcntl
import grp
import os
import pathlib
import pwd
import secrets
import signal
import socket
import subprocess
import sys
import time

from keystoneauth1.identity import v3
from keystoneauth1 import session as ksa_session

from tests.support import processes

#: The Keystone these tests are written against, from PyPI.
KEYSTONE_PIN = 'keystone==30.0.0'
#: What serves it: the WSGI server is no part of Keystone's requirements.
SERVER_REQUIREMENT = 'gunicorn'
#: Where a caller points ``install()`` without naming a directory.
VENV_ENVIRONMENT_VARIABLE = 'CACHE_MAINT_KEYSTONE_VENV'
#: The checkout's own default place for Keystone's virtualenv.
DEFAULT_VENV = pathlib.Path(__file__).resolve().parents[2] / '.keystone-venv'
#: Written last by ``install()``: what the virtualenv holds.
MARKER = 'cache-maint-keystone.txt'

#: The region bootstrap creates and the endpoints belong to.
REGION = 'RegionOne'
#: How long the server gets to answer after a start, in seconds. A
#: generous deadline for polling, never a measurement.
START_DEADLINE = 60
#: How long a stop waits for gunicorn before it kills it.
STOP_DEADLINE = 30
#: How long one ``keystone-manage`` command may take.
MANAGE_DEADLINE = 300
#: How long pip may take to create and fill the virtualenv.
INSTALL_DEADLINE = 1800
#: The timeout of one HTTP request of the client side.
REQUEST_TIMEOUT = 30
#: gunicorn serves one request at a time: one sync worker. Keystone's
#: database is sqlite, and two writers at once (tempest's workers deleting
#: their users) make one of them fail with "database is locked", a 500.
#: Password checks are cheap here (see ``_write_config``), so one at a
#: time is quick enough; the sync worker closes every connection after its
#: answer, so an idle client never holds it.
WORKERS = 1
WORKER_CLASS = 'sync'

INTERFACES = ('public', 'internal', 'admin')


class KeystoneError(RuntimeError):
    """Keystone could not be installed, set up, started or asked."""


def default_venv():
    """``$CACHE_MAINT_KEYSTONE_VENV``, else ``<checkout>/.keystone-venv``."""
    return pathlib.Path(os.environ.get(VENV_ENVIRONMENT_VARIABLE)
                        or DEFAULT_VENV)


def install(venv_path=None):
    """A virtualenv holding ``KEYSTONE_PIN`` and gunicorn; return its path.

    Made once: a virtualenv whose marker file names the same requirements
    is reused as it is, so a test session pays for pip only the first time.
    Two callers at once (parallel sessions) take turns on a lock inside
    the virtualenv's directory. Raises KeystoneError with pip's output when
    the virtualenv cannot be made or filled (no network, no ensurepip).
    """
    venv_path = pathlib.Path(venv_path or default_venv()).absolute()
    try:
        return _install(venv_path)
    except OSError as e:
        raise KeystoneError('could not install Keystone into %s: %s'
                            % (venv_path, e))


def _install(venv_path):
    wanted = _marker_text()
    venv_path.mkdir(parents=True, exist_ok=True)
    with _locked(venv_path / '.install.lock'):
        marker = venv_path / MARKER
        if _installed(venv_path, marker, wanted):
            return venv_path
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()     # half-done work must not look finished
        python = venv_path / 'bin' / 'python'
        if not os.access(python, os.X_OK):
            _run_install([sys.executable, '-m', 'venv', str(venv_path)],
                         'create the virtualenv %s' % venv_path)
        _run_install([str(python), '-m', 'pip', 'install', '--quiet',
                      '--disable-pip-version-check', KEYSTONE_PIN,
                      SERVER_REQUIREMENT],
                     'pip install %s %s into %s'
                     % (KEYSTONE_PIN, SERVER_REQUIREMENT, venv_path))
        missing = _missing_executables(venv_path)
        if missing:
            raise KeystoneError('pip installed %s into %s but %s is missing'
                                % (KEYSTONE_PIN, venv_path,
                                   ', '.join(missing)))
        tmp = marker.with_suffix('.tmp')
        tmp.write_text(wanted)
        os.replace(tmp, marker)
    return venv_path


def _marker_text():
    return '%s\n%s\n' % (KEYSTONE_PIN, SERVER_REQUIREMENT)


def _installed(venv_path, marker, wanted):
    try:
        text = marker.read_text()
    except FileNotFoundError:
        return False
    return text == wanted and not _missing_executables(venv_path)


def _missing_executables(venv_path):
    return [str(path) for path in (venv_path / 'bin' / 'keystone-manage',
                                   venv_path / 'bin' / 'gunicorn')
            if not os.access(path, os.X_OK)]


@contextlib.contextmanager
def _locked(path):
    """An exclusive flock on ``path`` for the block."""
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run_install(argv, what):
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True,
                                env=_clean_environment(),
                                timeout=INSTALL_DEADLINE)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KeystoneError('could not %s: %s' % (what, e))
    if result.returncode != 0:
        raise KeystoneError('could not %s (exit status %d):\n%s%s'
                            % (what, result.returncode, result.stdout[-3000:],
                               result.stderr[-3000:]))


def _clean_environment(**extra):
    """The caller's environment without what would steer another Python.

    PYTHONPATH or PYTHONHOME of the caller's virtualenv would make
    Keystone's interpreter import the caller's packages, and
    GUNICORN_CMD_ARGS would add to gunicorn's settings.
    """
    environment = {name: value for name, value in os.environ.items()
                   if name not in ('PYTHONPATH', 'PYTHONHOME',
                                   'GUNICORN_CMD_ARGS', 'VIRTUAL_ENV',
                                   '__PYVENV_LAUNCHER__')}
    environment.update(extra)
    return environment


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A user's password credentials, scoped to a project."""

    username: str
    password: str = dataclasses.field(repr=False)
    project_name: str
    user_domain_name: str = 'Default'
    project_domain_name: str = 'Default'

    def options(self):
        """keystoneauth's password options, ``auth_url`` excluded.

        The names are those of the ``password`` and ``v3password``
        plugins, so the dict fits ``v3.Password(auth_url=..., **it)`` and a
        ``[keystone_authtoken]`` section alike.
        """
        return dataclasses.asdict(self)

    def env(self, auth_url, region_name=None):
        """The OS_* environment variables a CLI reads, as a dict."""
        environment = {
            'OS_AUTH_URL': auth_url,
            'OS_AUTH_TYPE': 'password',
            'OS_IDENTITY_API_VERSION': '3',
            'OS_USERNAME': self.username,
            'OS_PASSWORD': self.password,
            'OS_PROJECT_NAME': self.project_name,
            'OS_USER_DOMAIN_NAME': self.user_domain_name,
            'OS_PROJECT_DOMAIN_NAME': self.project_domain_name,
        }
        if region_name:
            environment['OS_REGION_NAME'] = region_name
        return environment


def free_port(host='127.0.0.1'):
    """A TCP port of ``host`` that nothing listened on a moment ago."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _tails(*paths):
    """The end of each log, under its path."""
    return '\n'.join('--- %s ---\n%s' % (path, processes.read_tail(path, 4000))
                     for path in paths)


def _group_members(pgid):
    """Pids of the live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                # After the command's closing parenthesis: state, ppid, pgrp.
                fields = f.read().rpartition(')')[2].split()
        except OSError:
            continue    # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != 'Z':
            members.append(int(entry))
    return members


def _wait_gone(pgid, timeout):
    """Return once process group ``pgid`` has no live process left.

    A SIGKILLed orphan dies a moment after the signal, holding the port
    until then.
    """
    deadline = time.monotonic() + timeout
    while True:
        members = _group_members(pgid)
        if not members:
            return
        if time.monotonic() > deadline:
            raise KeystoneError('processes %s of Keystone\'s gunicorn still '
                                'run %s s after SIGKILL' % (members, timeout))
        time.sleep(0.05)


def _password():
    # Short of bcrypt's 72 bytes, URL-safe for any config file or shell.
    return secrets.token_urlsafe(24)


class Keystone:
    """One real Keystone in ``workdir``, run from the virtualenv ``venv``.

    ``auth_url`` is ``http://HOST:PORT/v3``, the versioned URL Keystone's
    installation guide registers in the catalog: explicit v3 plugins,
    tempest's ``uri_v3`` and the generic ``password`` plugin (which
    discovers the version) all accept it. The catalog's three identity
    endpoints are that URL too. ``url`` is the unversioned root.

    ``admin`` (user ``admin``, admin of project ``admin`` and of the
    system), ``member`` (user ``demo``, member of project ``demo``) and
    ``service`` (user ``cache-maint``, service on project ``service``) are
    the users ``setup()`` makes, each with a random password.

    ``setup()`` once, then ``start()`` and ``stop()`` as often as a test
    needs; the tokens, keys and users survive a restart. As a context
    manager it sets up (if this object has not yet) and starts on entry and
    stops on exit.
    """

    def __init__(self, workdir, venv, host='127.0.0.1', port=None):
        self.workdir = pathlib.Path(workdir).absolute()
        self.venv = pathlib.Path(venv).absolute()
        self.host = host
        self.port = port or free_port(host)
        netloc = ('[%s]:%d' if ':' in host else '%s:%d') % (host, self.port)
        self.url = 'http://%s' % netloc
        self.auth_url = self.url + '/v3'
        self.region = REGION
        self.admin = Credentials('admin', _password(), 'admin')
        self.member = Credentials('demo', _password(), 'demo')
        self.service = Credentials('cache-maint', _password(), 'service')
        self.config_path = self.workdir / 'keystone.conf'
        self.log_path = self.workdir / 'keystone.log'
        self.server_log_path = self.workdir / 'gunicorn.log'
        self.access_log_path = self.workdir / 'access.log'
        self.manage_log_path = self.workdir / 'keystone-manage.log'
        self.process = None
        self._admin_session = None
        self._set_up = False
        self._bind = netloc

    # -- life cycle ----------------------------------------------------

    def setup(self):
        """Configure, create the database and keys, bootstrap, add users.

        The users and projects are made through the REST API, so the
        server runs for that; it is left as it was found (stopped, unless
        it was running). Running it again converges: same users, and the
        passwords of this object.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._manage('db_sync')
        owner = self._owner()
        self._manage('fernet_setup', *owner)
        self._manage('credential_setup', *owner)
        self._manage('bootstrap',
                     '--bootstrap-username', self.admin.username,
                     '--bootstrap-password', self.admin.password,
                     '--bootstrap-project-name', self.admin.project_name,
                     '--bootstrap-role-name', 'admin',
                     '--bootstrap-region-id', self.region,
                     '--bootstrap-public-url', self.auth_url,
                     '--bootstrap-internal-url', self.auth_url,
                     '--bootstrap-admin-url', self.auth_url)
        self._admin_session = None    # bootstrap may have reset passwords
        was_running = self.running
        self.start()
        try:
            self._populate()
        finally:
            if not was_running:
                self.stop()
        self._set_up = True
        return self

    def start(self, timeout=START_DEADLINE):
        """Serve Keystone with gunicorn; return once GET /v3 answers 200.

        A no-op if this object's server is running. Raises KeystoneError
        (with the logs' tails) if something else answers on the port, if
        gunicorn exits, or if Keystone does not answer within ``timeout``.
        """
        if self.running:
            return self
        if not self.config_path.exists():
            raise KeystoneError('%s does not exist: setup() first'
                                % self.config_path)
        if self.accepts_connections():
            raise KeystoneError('something already listens on %s: the port '
                                'is taken' % self._bind)
        self._write_server_config()
        with open(self.workdir / 'gunicorn.out', 'ab') as out:
            self.process = subprocess.Popen(
                [str(self.venv / 'bin' / 'gunicorn')],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                env=_clean_environment(
                    OS_KEYSTONE_CONFIG_FILES=str(self.config_path)))
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout=STOP_DEADLINE):
        """SIGTERM gunicorn, SIGKILL its whole session after ``timeout``.

        Idempotent. gunicorn stops its workers before it exits; a worker
        left behind by a master that died some other way (a fault test's
        SIGKILL) is killed with the rest of the session, which is ours
        alone: Linux reuses no pid while it names a live process group.
        """
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)
        _wait_gone(process.pid, timeout)

    def restart(self):
        """``stop()`` then ``start()``: same port, keys, users and tokens."""
        self.stop()
        return self.start()

    def accepts_connections(self):
        """True if anything accepts a TCP connection on host:port."""
        try:
            with socket.create_connection((self.host, self.port), timeout=5):
                return True
        except OSError:
            return False

    @property
    def running(self):
        """True while this object's gunicorn master is alive."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self):
        if not self._set_up:
            self.setup()
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def diagnostics(self):
        """The tails of gunicorn's and Keystone's logs, for an error."""
        return _tails(self.server_log_path, self.log_path)

    # -- clients -------------------------------------------------------

    def session(self, credentials):
        """A keystoneauth1 Session authenticated as ``credentials``.

        The v3 password plugin goes straight to ``auth_url``: no catalog
        or discovery is involved, so it still works when a fault test has
        broken the catalog.
        """
        auth = v3.Password(auth_url=self.auth_url, **credentials.options())
        return ksa_session.Session(auth=auth, timeout=REQUEST_TIMEOUT)

    def token(self, credentials):
        """A new project-scoped token of ``credentials``."""
        return self.session(credentials).get_token()

    def env(self, credentials):
        """``credentials.env()`` for this Keystone, region included."""
        return credentials.env(self.auth_url, region_name=self.region)

    def authtoken_section(self, credentials=None, **overrides):
        """``[keystone_authtoken]`` for a service validating tokens here.

        The service user (``credentials``, by default ``service``) holds
        the ``service`` role, which Keystone's default policy lets validate
        tokens. ``interface`` is left at keystonemiddleware's default
        (internal) unless ``overrides`` say otherwise; every interface has
        an endpoint.
        """
        section = {'auth_type': 'password',
                   'auth_url': self.auth_url,
                   'www_authenticate_uri': self.auth_url,
                   'region_name': self.region}
        section.update((credentials or self.service).options())
        section.update(overrides)
        return section

    def add_user(self, username, project_name='service', role='service'):
        """Credentials of a user with ``role`` on ``project_name``.

        Made if new (the project too), given a new random password if not;
        the server must be running.
        """
        credentials = Credentials(username, _password(), project_name)
        self._grant(credentials, role)
        return credentials

    # -- the catalog, for fault tests ------------------------------------

    def endpoints(self, service_type='identity'):
        """The catalog's endpoints of ``service_type``, every interface.

        Dicts with ``id``, ``interface``, ``url``, ``region_id``.
        """
        found = []
        for service_id in self._service_ids(service_type):
            response = self._admin_request(
                'GET', '/endpoints?service_id=%s' % service_id)
            found += [{key: endpoint[key] for key in
                       ('id', 'interface', 'url', 'region_id')}
                      for endpoint in response.json()['endpoints']]
        return found

    def delete_endpoint(self, endpoint_id):
        """Remove an endpoint from the catalog."""
        self._admin_request('DELETE', '/endpoints/%s' % endpoint_id)

    def create_endpoint(self, service_type, interface, url):
        """Add an endpoint of this region to the catalog; return its id.

        The service of ``service_type`` must exist (``create_service``).
        """
        service_ids = self._service_ids(service_type)
        if len(service_ids) != 1:
            raise KeystoneError('%d services of type %s: create_endpoint '
                                'needs exactly one'
                                % (len(service_ids), service_type))
        response = self._admin_request('POST', '/endpoints', json={
            'endpoint': {'service_id': service_ids[0],
                         'interface': interface, 'url': url,
                         'region_id': self.region, 'enabled': True}})
        return response.json()['endpoint']['id']

    def create_service(self, service_type, name):
        """The id of the service ``name`` of ``service_type``, made if new."""
        for service in self._services(service_type):
            if service['name'] == name:
                return service['id']
        response = self._admin_request('POST', '/services', json={
            'service': {'type': service_type, 'name': name,
                        'enabled': True}})
        return response.json()['service']['id']

    # -- internals -----------------------------------------------------

    def _write_config(self):
        """keystone.conf: sqlite, fernet, keys and logs in ``workdir``.

        bcrypt's default of 12 rounds costs a quarter of a second per
        password check, and every token issued checks one: 4, bcrypt's
        least, keeps tests quick and changes nothing they look at.
        """
        sections = {
            'DEFAULT': {'debug': 'false', 'use_stderr': 'false',
                        'log_file': self.log_path},
            'database': {'connection': 'sqlite:///%s'
                         % (self.workdir / 'keystone.db')},
            'token': {'provider': 'fernet'},
            'fernet_tokens': {'key_repository':
                              self.workdir / 'fernet-keys'},
            # Receipts (multi-factor auth) default to the tokens' keys.
            'fernet_receipts': {'key_repository':
                                self.workdir / 'fernet-keys'},
            'credential': {'key_repository':
                           self.workdir / 'credential-keys'},
            'identity': {'password_hash_rounds': 4},
        }
        lines = []
        for section, options in sections.items():
            lines.append('[%s]' % section)
            lines += ['%s = %s' % item for item in options.items()]
            lines.append('')
        self.config_path.write_text('\n'.join(lines))

    def _write_server_config(self):
        """gunicorn.conf.py: everything gunicorn must know, no argv.

        Keystone parses ``sys.argv`` as its own command line, so gunicorn
        is started bare and reads this file from its working directory.
        A gunicorn without a control socket ignores that setting.
        """
        settings = {
            'wsgi_app': 'keystone.wsgi.api:application',
            'bind': [self._bind],
            'workers': WORKERS,
            'worker_class': WORKER_CLASS,
            'errorlog': str(self.server_log_path),
            'accesslog': str(self.access_log_path),
            'capture_output': True,
            'graceful_timeout': 10,
            'proc_name': 'keystone-%d' % self.port,
            # gunicorn 27 opens a control socket under ~/.gunicorn, one
            # path for every gunicorn of the user: not for ours.
            'control_socket_disable': True,
        }
        (self.workdir / 'gunicorn.conf.py').write_text(''.join(
            '%s = %r\n' % item for item in settings.items()))

    def _owner(self):
        """--keystone-user/--keystone-group: the current user and group.

        The key repositories are made for whoever runs gunicorn; as root,
        keystone-manage insists on being told.
        """
        return ['--keystone-user', _name(pwd.getpwuid, os.geteuid()),
                '--keystone-group', _name(grp.getgrgid, os.getegid())]

    def _manage(self, *args):
        argv = [str(self.venv / 'bin' / 'keystone-manage'), '--config-file',
                str(self.config_path)] + list(args)
        with open(self.manage_log_path, 'ab') as out:
            out.write(('$ keystone-manage %s\n' % args[0]).encode())
            out.flush()
            try:
                result = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, env=_clean_environment(),
                    timeout=MANAGE_DEADLINE)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise KeystoneError('keystone-manage %s failed: %s\n%s'
                                    % (args[0], e, self._manage_tail()))
        if result.returncode != 0:
            raise KeystoneError('keystone-manage %s exited with status %d\n%s'
                                % (args[0], result.returncode,
                                   self._manage_tail()))

    def _manage_tail(self):
        return _tails(self.manage_log_path, self.log_path)

    def _wait_ready(self, timeout):
        url = self.auth_url
        processes.wait_for(
            lambda: processes.answers(self.process, url, 'Keystone',
                                      self.diagnostics),
            'Keystone to answer GET %s' % url,
            timeout=timeout, diagnostics=self.diagnostics)

    def _admin_request(self, method, path, **kwargs):
        """One request to the identity API as ``admin``; errors raise.

        The URL is built from ``auth_url``, not taken from the catalog,
        which fault tests change. One session, so one token, serves them
        all; keystoneauth gets a new token if Keystone refuses the old.
        """
        if self._admin_session is None:
            self._admin_session = self.session(self.admin)
        return self._admin_session.request(
            self.auth_url + path, method, raise_exc=True, **kwargs)

    def _services(self, service_type):
        response = self._admin_request('GET', '/services?type=%s'
                                       % service_type)
        return response.json()['services']

    def _service_ids(self, service_type):
        return [service['id'] for service in self._services(service_type)]

    def _populate(self):
        """Project ``demo`` with member ``demo``; ``service`` with ours.

        Bootstrap made the roles; any that a future bootstrap would not
        make is made here.
        """
        self._ensure_roles(('reader', 'member', 'admin', 'service'))
        for credentials, role in ((self.member, 'member'),
                                  (self.service, 'service')):
            self._grant(credentials, role)

    def _grant(self, credentials, role):
        """Give ``credentials``' user ``role`` on its project (both made)."""
        roles = self._ensure_roles((role,))
        project_id = self._ensure_project(credentials.project_name)
        user_id = self._ensure_user(credentials, project_id)
        self._admin_request('PUT', '/projects/%s/users/%s/roles/%s'
                            % (project_id, user_id, roles[role]))

    def _ensure_roles(self, names):
        existing = {role['name']: role['id'] for role in
                    self._admin_request('GET', '/roles').json()['roles']}
        for name in names:
            if name not in existing:
                response = self._admin_request(
                    'POST', '/roles', json={'role': {'name': name}})
                existing[name] = response.json()['role']['id']
        return existing

    def _ensure_project(self, name):
        found = self._admin_request(
            'GET', '/projects?name=%s&domain_id=default' % name
        ).json()['projects']
        if found:
            return found[0]['id']
        response = self._admin_request('POST', '/projects', json={
            'project': {'name': name, 'domain_id': 'default',
                        'enabled': True}})
        return response.json()['project']['id']

    def _ensure_user(self, credentials, project_id):
        """The user's id, made if new, given this object's password."""
        found = self._admin_request(
            'GET', '/users?name=%s&domain_id=default' % credentials.username
        ).json()['users']
        user = {'password': credentials.password,
                'default_project_id': project_id, 'enabled': True}
        if found:
            self._admin_request('PATCH', '/users/%s' % found[0]['id'],
                                json={'user': user})
            return found[0]['id']
        user.update(name=credentials.username, domain_id='default')
        response = self._admin_request('POST', '/users', json={'user': user})
        return response.json()['user']['id']


def _name(lookup, number):
    """The name of a uid or gid, or the number where it has none."""
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)
