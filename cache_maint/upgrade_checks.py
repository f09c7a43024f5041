"""``cache-maint-status upgrade check``: what an operator gets wrong.

Each check reads the configuration, the disk and the database as they are
and changes nothing: no directory, lock file, table or row is created, the
sqlite database is opened read-only. They reuse the checks a start makes
(``conf.check``, ``CacheDir.check_usable``, the drivers' own checks), but
report what they find as a Result, each check on its own, instead of
refusing a start. The titles are part of the documentation: keep them.
"""

import os
import re
import sys
import traceback

from oslo_config import cfg
from oslo_policy import policy as oslo_policy
from oslo_upgradecheck import common_checks
from oslo_upgradecheck import upgradecheck

from cache_maint.api import auth
from cache_maint.api import health
from cache_maint.api import identity
from cache_maint import cachedir
from cache_maint import conf as cm_conf
from cache_maint.conf import sources
from cache_maint.conf import values
from cache_maint import drivers
from cache_maint import exception
from cache_maint import locks
from cache_maint import policies
from cache_maint import policy
from cache_maint import shared_db
from cache_maint import state as cm_state

Code = upgradecheck.Code
Result = upgradecheck.Result

#: glance-api's configuration, compared with ours when it is not read.
GLANCE_API_CONF = '/etc/glance/glance-api.conf'

#: oslo.upgradecheck's status when the checks could not run (its ``run``).
ERROR = 255

#: keystoneauth plugins and the credentials each needs: every tuple names
#: options of which at least one must be set.
CREDENTIALS = {
    'password': (('username', 'user_id'), ('password',)),
    'v2password': (('username', 'user_id'), ('password',)),
    'v3password': (('username', 'user_id'), ('password',)),
    'token': (('token',),),
    'v3token': (('token',),),
    'v3applicationcredential': (
        ('application_credential_id', 'application_credential_name'),
        ('application_credential_secret',)),
}

# The password of a database URL, wherever a message quotes one.
_URL_PASSWORD = re.compile(r'(://[^:/@\s]*:)[^@\s]*@')


class CheckCrashed(Exception):
    """A check raised what no check should: a bug, not a finding."""

    def __init__(self, title, error):
        super().__init__('the "%s" check failed unexpectedly: %s: %s' % (
            title, type(error).__name__, _one_line(error)))
        self.title = title


def _one_line(error):
    return ' '.join(str(error).split()) or type(error).__name__


def _guarded(title, method):
    """``method``, with an unexpected exception made a CheckCrashed."""
    def check(self):
        try:
            self.prepare()
            result = method(self)
        except cfg.Error as e:
            # An option the check reads has a value that cannot work.
            result = Result(Code.FAILURE, 'not checked: %s'
                            % _invalid_value(self.conf, e))
        except Exception as e:
            raise CheckCrashed(title, e) from e
        self.codes.append(result.code)
        return result
    check.__name__ = method.__name__
    check.__doc__ = method.__doc__
    return check


def _invalid_value(conf, error):
    """What is wrong with the option of ``error``, as conf.check says it."""
    if isinstance(error, cfg.ConfigFileValueError):
        for group, opt in values.registered(conf):
            if 'option %s ' % opt.dest not in str(error):
                continue
            section = conf if group == 'DEFAULT' else conf[group]
            try:
                getattr(section, opt.dest)
            except (cfg.ConfigFileValueError, ValueError) as e:
                return str(values.invalid(conf, group, opt, e))
    return _one_line(error)


def _verdict(findings, success):
    """One Result of ``findings``, (Code, text) each: the worst wins."""
    if not findings:
        return Result(Code.SUCCESS, success)
    code = max(code for code, _text in findings)
    return Result(code, '; '.join(text for _code, text in findings))


def _named(message, name):
    """``message``, starting with the option's group if with its name."""
    if message.startswith(name):
        return '[DEFAULT] %s' % message
    return message


def _masked(text, connection):
    """``text`` with the password of any database URL in it hidden."""
    if connection:
        text = text.replace(connection, _URL_PASSWORD.sub(r'\1***@',
                                                          connection))
    return _URL_PASSWORD.sub(r'\1***@', text)


def _same_path(one, other):
    return os.path.realpath(one) == os.path.realpath(other)


class Checks(upgradecheck.UpgradeCommands):
    """The checks of ``cache-maint-status upgrade check``."""

    def __init__(self, conf):
        super().__init__()
        self.conf = conf
        #: The code of each check run so far.
        self.codes = []
        self._prepared = False
        self._database = None   # (driver, error) once asked

    def prepare(self):
        """What the checks need of a parsed configuration; once."""
        if not self._prepared:
            # The options of the auth plugin, now that auth_type is known.
            auth.register_opts(self.conf)
            self._prepared = True

    def check(self):
        """Run every check and print the table; ERROR if one crashed.

        oslo.upgradecheck would print the traceback of a check that raised
        (and return 255 too); here it is one line on stderr, the whole
        traceback only with ``--debug``.
        """
        self.codes = []
        try:
            return super().check()
        except CheckCrashed as e:
            self._report(e)
            return ERROR
        except BrokenPipeError:
            # A reader that had enough (| head): what is left to print goes
            # nowhere, and the status is still the checks'.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return max(self.codes, default=Code.SUCCESS)
        except OSError as e:
            # The results could not be written (a full disk): nobody saw
            # them, so the status cannot be theirs.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.stderr.write('%s: error: cannot write the results: %s\n' % (
                os.path.basename(sys.argv[0]) or 'cache-maint-status',
                e.strerror or e))
            return ERROR
        finally:
            self.close()

    def _report(self, error):
        try:
            debug = self.conf.debug
        except cfg.Error:
            debug = False
        if debug:
            traceback.print_exception(error.__cause__ or error)
        sys.stderr.write('%s: error: %s\n' % (
            os.path.basename(sys.argv[0]) or 'cache-maint-status', error))

    def close(self):
        """Release the database connections a check opened."""
        if self._database is not None:
            driver = self._database[0]
            self._database = None
            if driver is not None:
                driver.close()

    # -- Configuration -------------------------------------------------

    def check_configuration(self):
        """Option values that cannot work, and options nothing reads."""
        try:
            cm_conf.check(self.conf)
            health.check(self.conf)
        except (exception.ConfigError, cfg.Error) as e:
            return Result(Code.FAILURE, _one_line(e))
        unknown = cm_conf.unknown_options(self.conf)
        if unknown:
            return Result(Code.WARNING, '; '.join(unknown))
        return Result(Code.SUCCESS, 'every option value is valid, and every '
                                    'option set is one cache-maint reads')

    # -- Cache directory -----------------------------------------------

    def check_cache_directory(self):
        """The cache directory, the state, the locks; glance-api's too."""
        conf = self.conf
        path = conf.image_cache_dir
        if not path:
            return Result(Code.FAILURE, '[DEFAULT] image_cache_dir is not '
                          'set; set it to the image cache directory of '
                          'glance-api')
        findings = []
        try:
            cachedir.CacheDir(path).check_usable()
        except exception.ConfigError as e:
            findings.append((Code.FAILURE, _named(str(e), 'image_cache_dir')))
        else:
            findings += _subdirectories(path)
            findings += _state(conf)
        lock_findings, where = _lock_path(conf)
        findings += lock_findings
        glance, compared = _glance_api(conf)
        findings += glance
        return _verdict(findings, '[DEFAULT] image_cache_dir %s is usable; '
                        '%s; %s' % (path, where, compared))

    # -- Metadata driver -----------------------------------------------

    def check_metadata_driver(self):
        """The configured driver's metadata, reachable, read only."""
        name = self.conf.image_cache_driver.lower()
        if name == 'centralized_db':
            driver, error = self._centralized_db()
            if error is None:
                try:
                    driver.check_writable()
                except exception.MetadataError as e:
                    error = str(e)
            if error is not None:
                return Result(Code.FAILURE, self._mask(error))
            return Result(Code.SUCCESS, 'centralized_db: the database of '
                          '[database] connection (%s) has Glance\'s '
                          'node_reference and cached_images tables, which '
                          'this database user may read and write'
                          % self._safe_connection())
        if not self.conf.image_cache_dir:
            return Result(Code.FAILURE, 'the %s driver keeps its metadata in '
                          'the cache directory, and [DEFAULT] image_cache_dir '
                          'is not set' % name)
        try:
            driver = drivers.load_driver(self.conf)
        except exception.ConfigError as e:
            return Result(Code.FAILURE, str(e))
        try:
            if name == 'sqlite':
                return _sqlite(driver)
            if name == 'xattr':
                return _xattr(driver)
        finally:
            driver.close()
        return Result(Code.SUCCESS, 'the %s driver has nothing to check'
                      % name)

    def _centralized_db(self):
        """(driver, None) if Glance's tables answer, else (driver, why).

        Asked once: the node reference check needs the same connection,
        and a server that does not answer is waited for only once.
        """
        if self._database is None:
            driver, error = None, None
            try:
                driver = drivers.load_driver(self.conf)
                _refuse_creating_sqlite(driver)
                driver.check_tables()
            except (exception.ConfigError, exception.MetadataError) as e:
                error = self._mask(str(e))
            self._database = driver, error
        return self._database

    def _safe_connection(self):
        return self._mask(self.conf.database.connection or '')

    def _mask(self, text):
        return _masked(text, self.conf.database.connection)

    # -- Node reference ------------------------------------------------

    def check_node_reference(self):
        """This node's row in node_reference (centralized_db only)."""
        conf = self.conf
        name = conf.image_cache_driver.lower()
        if name != 'centralized_db':
            return Result(Code.SUCCESS, 'not used by the %s driver' % name)
        url = conf.worker_self_reference_url
        if not url:
            return Result(Code.FAILURE, '[DEFAULT] worker_self_reference_url '
                          'is not set; set it to the URL glance-api has for '
                          'this node (its worker_self_reference_url)')
        driver, error = self._centralized_db()
        if error is not None:
            return Result(Code.FAILURE, 'node_reference cannot be read, as '
                          'the Metadata driver check says: the database of '
                          '[database] connection is not usable')
        try:
            driver.check()      # a URL spelt otherwise than glance-api's
            urls = driver.node_urls()
        except (exception.ConfigError, exception.MetadataError) as e:
            return Result(Code.FAILURE, self._mask(str(e)))
        if url not in urls:
            return Result(Code.WARNING, '[DEFAULT] worker_self_reference_url '
                          '= %s has no node_reference row: glance-api adds it '
                          'at its first start with this URL, and until then '
                          'cache-maint finds no record of this node\'s '
                          'images; if glance-api has run here already, it '
                          'knows this node by another URL: set the one '
                          'glance-api uses'
                          % url)
        return Result(Code.SUCCESS, '[DEFAULT] worker_self_reference_url = %s '
                      'is registered in node_reference' % url)

    # -- Node index ----------------------------------------------------

    def check_node_index(self):
        """The recommended index, where many nodes share cached_images."""
        name = self.conf.image_cache_driver.lower()
        if name != 'centralized_db':
            return Result(Code.SUCCESS, 'not used by the %s driver' % name)
        driver, error = self._centralized_db()
        if error is not None:
            return Result(Code.FAILURE, 'cached_images cannot be read, as '
                          'the Metadata driver check says: the database of '
                          '[database] connection is not usable')
        database = shared_db.SharedDatabase(driver)
        try:
            state = database.index_state()
            nodes, rows = database.size_estimate()
        except exception.MetadataError as e:
            return Result(Code.FAILURE, self._mask(str(e)))
        create = ('create it, online, with "cache-maint-manage %sdb-index '
                  '--create"' % sources.as_arguments(self.conf))
        described = shared_db.describe_index()
        if state.present:
            return Result(Code.SUCCESS, 'the index %s exists' % (
                described if state.named else '%s on %s starts with the '
                'columns of %s' % (' and '.join(state.equivalents),
                                   shared_db.TABLE, described)))
        size = '%d node(s)%s' % (nodes, '' if rows is None
                                 else ' and about %d row(s)' % rows)
        if state.conflicting:
            return Result(Code.WARNING, 'an index named %s exists on %s (%s), '
                          'not on the recommended columns: drop or rename '
                          'it, then %s' % (shared_db.INDEX_NAME,
                                           shared_db.TABLE,
                                           ', '.join(state.columns), create))
        if state.named:
            return Result(Code.WARNING, 'the index %s exists but is not '
                          'valid (a build that did not finish): it costs '
                          'glance-api writes and speeds up nothing; %s'
                          % (described, create))
        many = nodes > shared_db.MANY_NODES or (
            (rows or 0) > shared_db.MANY_ROWS)
        if many and state.by_node:
            # MariaDB's InnoDB indexes the foreign key: a node's rows are
            # found without reading the others', only not in LRU order.
            return Result(Code.SUCCESS, 'cached_images holds %s; the index '
                          '%s finds each node\'s rows (the recommended index '
                          '%s would also keep them in LRU order, for '
                          'glance-api\'s own prune: optional)'
                          % (size, ' and '.join(state.by_node), described))
        if many:
            return Result(Code.WARNING, 'cached_images holds %s, and the '
                          'recommended index %s does not exist: reading one '
                          'node\'s rows (clean\'s full reconciliation, '
                          'glance-api\'s own cache listing and prune) reads '
                          'every node\'s; %s' % (size, described, create))
        return Result(Code.SUCCESS, 'cached_images holds %s: the recommended '
                      'index %s is not needed up to %d nodes and %d rows'
                      % (size, described, shared_db.MANY_NODES,
                         shared_db.MANY_ROWS))

    # -- Keystone authentication ---------------------------------------

    def check_keystone_authentication(self):
        """[keystone_authtoken] complete, and Keystone answering to it."""
        conf = self.conf
        strategy = conf.api.auth_strategy
        if strategy != 'keystone':
            return Result(Code.SUCCESS, '[api] auth_strategy is %s: '
                          '[keystone_authtoken] is not used' % strategy)
        group = auth.auth_group(conf)
        plugin = conf[group].auth_type
        if not plugin:
            return Result(Code.FAILURE, _no_auth_type(conf, group))
        try:
            auth.check(conf)
        except exception.ConfigError as e:
            return Result(Code.FAILURE, '[api] auth_strategy = keystone, but '
                          '%s' % e)
        missing = [' or '.join(names)
                   for names in CREDENTIALS.get(plugin, ())
                   if not any(_option(conf, group, name)
                              for name in names)]
        if missing:
            return Result(Code.FAILURE, '[api] auth_strategy = keystone, but '
                          '[%s] auth_type = %s sets no %s: keystonemiddleware '
                          'could not validate a token; set %s as glance-api '
                          'has %s' % ((group, plugin, ', '.join(missing))
                                      + (('it',) * 2 if len(missing) == 1
                                         else ('them',) * 2)))
        problem = identity.probe(conf)
        if problem is not None and problem.certain:
            return Result(Code.FAILURE, 'Keystone cannot validate tokens '
                          'now, so every authenticated request would be '
                          'answered 503: %s' % problem)
        if problem is not None:
            return Result(Code.WARNING, 'Keystone may refuse to validate '
                          'tokens (unless its policy was changed), and '
                          'every authenticated request would then be '
                          'answered 503: %s' % problem)
        return Result(Code.SUCCESS, 'auth_strategy is keystone; [%s] '
                      'auth_type = %s, auth_url = %s: Keystone validates '
                      'tokens through the identity endpoint for interface %s'
                      % (group, plugin, _option(conf, group, 'auth_url'),
                         conf[auth.AUTHTOKEN_GROUP].interface))

    # -- Policy file ---------------------------------------------------

    def check_policy_file(self):
        """The operator's policy file parses and names cache-maint's rules."""
        conf = self.conf
        name = conf.oslo_policy.policy_file
        path = conf.find_file(name)
        findings = []
        if path is None:
            success = 'no policy file (%s): the default rules apply' % name
            if os.path.isabs(name):
                findings.append((Code.WARNING, '[oslo_policy] policy_file = '
                                 '%s does not exist, so the default rules '
                                 'apply' % name))
            elif sources.find(conf, 'oslo_policy', 'policy_file'):
                findings.append((Code.WARNING, '[oslo_policy] policy_file = '
                                 '%s is in none of the configuration '
                                 'directories, so the default rules apply; '
                                 'give its absolute path' % name))
        else:
            success = ('the policy file %s parses, and every rule in it is '
                       'one of cache-maint\'s' % path)
            findings = _policy_rules(path)
        in_dirs = [found for option, found in policy.files(conf)
                   if option == 'policy_dirs']
        for found in in_dirs:
            findings += _policy_rules(found, 'policy_dirs')
        if in_dirs:
            success += '; so do those in [oslo_policy] policy_dirs: %s' % (
                ', '.join(in_dirs))
        if not any(code == Code.FAILURE for code, _text in findings):
            # The references between rules, and [oslo_policy] policy_dirs.
            try:
                policy.check(conf)
            except exception.ConfigError as e:
                findings.append((Code.FAILURE, str(e)))
        if path is not None and not findings:
            json_format = common_checks.check_policy_json(self, conf)
            if json_format.code != Code.SUCCESS:
                findings.append((Code.WARNING, '%s: %s'
                                 % (path, json_format.details)))
        return _verdict(findings, success)

    _upgrade_checks = (
        ('Configuration', _guarded('Configuration', check_configuration)),
        ('Cache directory', _guarded('Cache directory',
                                     check_cache_directory)),
        ('Metadata driver', _guarded('Metadata driver',
                                     check_metadata_driver)),
        ('Node reference', _guarded('Node reference', check_node_reference)),
        ('Node index', _guarded('Node index', check_node_index)),
        ('Keystone authentication', _guarded('Keystone authentication',
                                             check_keystone_authentication)),
        ('Policy file', _guarded('Policy file', check_policy_file)),
    )


def _subdirectories(path):
    """Findings on Glance's incomplete/, invalid/ and queue/ in ``path``."""
    missing, findings = [], []
    for name in cachedir.SUBDIRS:
        sub = os.path.join(path, name)
        if not os.path.lexists(sub):
            missing.append(name)
        elif os.path.islink(sub) or not os.path.isdir(sub):
            findings.append((Code.FAILURE, '%s is not a directory (a symlink '
                             'is never followed): glance-api cannot cache '
                             'there; move it aside' % sub))
    if missing:
        findings.append((Code.WARNING, '[DEFAULT] image_cache_dir %s has no '
                         '%s: glance-api has not run there yet, or it is not '
                         'glance-api\'s cache directory'
                         % (path, ', '.join(n + '/' for n in missing))))
    return findings


def _state(conf):
    """Findings on cache-maint's state, ``[maintenance] state_dir``."""
    state = cm_state.from_conf(conf)
    if os.path.lexists(state.path) and not os.path.isfile(state.path):
        # Opening a FIFO would wait for a writer forever.
        return [(Code.FAILURE, 'the state database %s ([maintenance] '
                 'state_dir) is not a regular file; move it aside'
                 % state.path)]
    try:
        state.check_usable()
    except exception.StateError as e:
        return [(Code.FAILURE, str(e))]
    return []


def _lock_path(conf):
    """(findings, where the locks are) for ``[oslo_concurrency] lock_path``.

    Where locks.lock_path() puts them, as cache-maint and glance-api both
    would; nothing is created.
    """
    findings = []
    driver = conf.image_cache_driver.lower()
    path = locks.lock_path(conf)
    if not path:
        if conf.image_cache_dir:
            problem = ('[oslo_concurrency] lock_path is set but empty: '
                       'remove the line, or set glance-api\'s lock directory')
        else:
            problem = ('[oslo_concurrency] lock_path is not set and neither '
                       'is image_cache_dir: there is no place for the locks')
        return [(Code.FAILURE, problem)], 'no lock path'
    if driver == 'xattr' and _same_path(
            path, os.path.join(conf.image_cache_dir or '',
                               locks.XATTR_LOCK_DIR)):
        findings.append((Code.WARNING, '[oslo_concurrency] lock_path is not '
                         'set: with the xattr driver, glance-api\'s own clean '
                         'and prune fail without it, and cache-maint takes '
                         'its locks in %s, which glance-api does not share; '
                         'set lock_path to glance-api\'s' % path))
        where = 'locks in %s' % path
    elif (conf.oslo_concurrency.lock_path != path
          and path == conf.image_cache_dir):
        # The cache directory, as glance-api has it: checked above.
        return [], ('[oslo_concurrency] lock_path is not set: the locks are '
                    'in image_cache_dir, as glance-api\'s')
    else:
        where = '[oslo_concurrency] lock_path %s is usable' % path
    option = '[oslo_concurrency] lock_path %s' % path
    if not os.path.lexists(path):
        parent = os.path.dirname(os.path.abspath(path))
        while parent != os.path.dirname(parent) and not os.path.lexists(
                parent):
            parent = os.path.dirname(parent)
        if os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK):
            findings.append((Code.WARNING, '%s does not exist: glance-api '
                             'has taken no lock there yet (it and cache-maint '
                             'create it at their first lock); is it '
                             'glance-api\'s lock_path?' % option))
        else:
            findings.append((Code.FAILURE, '%s does not exist and cannot be '
                             'created: %s is not a writable directory'
                             % (option, parent)))
    elif not os.path.isdir(path):
        findings.append((Code.FAILURE, '%s is not a directory; set '
                         'lock_path to glance-api\'s lock directory' % option))
    elif not os.access(path, os.W_OK | os.X_OK):
        findings.append((Code.FAILURE, '%s is not writable by this user (uid '
                         '%d): no lock could be taken; run cache-maint as the '
                         'user glance-api runs as' % (option, os.getuid())))
    return findings, where


def _glance_api(conf):
    """(findings, what was compared) against glance-api.conf.

    Read alone, as glance-api reads it, glance-api.conf's cache directory,
    driver and lock path must be ours. That holds when it is one of our
    files too: a later file of ours may override what it says.
    """
    path = GLANCE_API_CONF
    if not os.path.isfile(path):
        return [], 'no %s to compare with' % path
    if not os.access(path, os.R_OK):
        return [], ('%s is not readable by this user, so it is not compared'
                    % path)
    glance = cfg.ConfigOpts()
    cm_conf.register_opts(glance)
    config_dir = path + '.d'
    try:
        glance([], project='glance', prog='glance-api',
               default_config_files=[path],
               default_config_dirs=[config_dir]
               if os.path.isdir(config_dir) else [])
        theirs = _cache_settings(glance)
    except (cfg.Error, ValueError, OSError) as e:
        return [(Code.WARNING, '%s cannot be read to compare it with: %s'
                 % (path, _one_line(e)))], 'glance-api.conf not compared'
    finally:
        glance.clear()
    ours = _cache_settings(conf)
    findings = []
    for option, mine in ours.items():
        other = theirs[option]
        if option == 'image_cache_driver':
            same = mine == other
        else:
            same = (mine is None) == (other is None) and (
                mine is None or _same_path(mine, other))
        if not same:
            findings.append((Code.FAILURE, '%s is %s here but %s in %s: '
                             'glance-api and cache-maint must share it; set '
                             'the value glance-api uses'
                             % (option, mine or '(not set)',
                                other or '(not set)', path)))
    return findings, 'the same as glance-api\'s in %s' % path


def _cache_settings(conf):
    """{option named with its group: value} glance-api and we must share."""
    settings = {
        '[DEFAULT] image_cache_dir': conf.image_cache_dir,
        '[DEFAULT] image_cache_driver': conf.image_cache_driver.lower(),
    }
    if conf.image_cache_dir:
        settings['[oslo_concurrency] lock_path'] = locks.lock_path(conf)
    else:
        settings['[oslo_concurrency] lock_path'] = (
            conf.oslo_concurrency.lock_path)
    return settings


def _sqlite(driver):
    """The sqlite driver's database, opened read-only."""
    try:
        driver.check()      # never a database created outside the cache
    except exception.ConfigError as e:
        return Result(Code.FAILURE, str(e))
    option = ('the cache database %s ([DEFAULT] image_cache_sqlite_db)'
              % driver.db_path)
    if not os.path.lexists(driver.db_path):
        return Result(Code.WARNING, '%s does not exist yet: glance-api '
                      'creates it at its start; if it has run already, it '
                      'is not using this cache directory or this driver'
                      % option)
    if not os.path.isfile(driver.db_path):
        # Opening a FIFO would wait for a writer forever.
        return Result(Code.FAILURE, '%s is not a regular file; move it '
                      'aside' % option)
    try:
        has_table = driver.has_table()
    except exception.MetadataError as e:
        return Result(Code.FAILURE, _one_line(e))
    if not has_table:
        return Result(Code.WARNING, '%s has no cached_images table yet: '
                      'glance-api creates it at its start' % option)
    directory = os.path.dirname(os.path.abspath(driver.db_path))
    if not (os.access(driver.db_path, os.R_OK | os.W_OK)
            and os.access(directory, os.W_OK | os.X_OK)):
        # SQLite writes its journal beside the database.
        return Result(Code.FAILURE, '%s, or its directory for the journal, '
                      'cannot be written by this user (uid %d): prune and '
                      'clean could not delete a record; run cache-maint as '
                      'the user glance-api runs as' % (option, os.getuid()))
    return Result(Code.SUCCESS, 'sqlite: %s has Glance\'s cached_images '
                  'table' % driver.db_path)


def _xattr(driver):
    """The xattr driver's filesystem: user xattrs, and access times."""
    path = driver.conf.image_cache_dir
    try:
        driver.check_support()
    except (exception.ConfigError, exception.CacheDirError) as e:
        return Result(Code.FAILURE, str(e))
    try:
        noatime = os.statvfs(path).f_flag & os.ST_NOATIME
    except OSError:
        noatime = False
    if noatime:
        return Result(Code.WARNING, 'the filesystem of image_cache_dir %s is '
                      'mounted noatime: the xattr driver reads the last '
                      'access of an image from its atime, so prune would '
                      'evict by caching order; mount it relatime' % path)
    return Result(Code.SUCCESS, 'xattr: the filesystem of image_cache_dir '
                  '%s supports user extended attributes' % path)


def _refuse_creating_sqlite(driver):
    """Refuse to connect to a sqlite URL whose file is not there.

    Connecting would create it; the check creates nothing.
    """
    url = driver.engine.url
    if url.get_backend_name() != 'sqlite':
        return
    database = url.database
    if not database or database == ':memory:' or not os.path.isfile(
            database):
        raise exception.MetadataError(
            'the database of [database] connection is a sqlite file, %s, '
            'that does not exist' % (database or '(in memory)'))


def _no_auth_type(conf, group):
    """What a keystone strategy lacks when no auth_type is set."""
    sections = set()
    for path in sources.paths(conf):
        sections.update(sources.parse(path))
    if group not in sections:
        lacks = 'there is no [%s] section in the configuration files' % group
    else:
        missing = ['auth_type'] + [
            name for name in ('auth_url', 'username', 'password')
            if sources.find(conf, group, name) is None]
        lacks = '[%s] sets no %s' % (group, ', '.join(missing))
    return ('[api] auth_strategy = keystone, but %s, so no token could be '
            'validated: read glance-api.conf (which has a [%s] section) '
            'before cache-maint.conf, or set [api] auth_strategy = noauth2 '
            'for development' % (lacks, auth.AUTHTOKEN_GROUP))


def _option(conf, group, name):
    """``[group] name``, or None if no such option is registered."""
    try:
        return conf[group][name]
    except cfg.NoSuchOptError:
        return None


def _policy_rules(path, option='policy_file'):
    """Findings on the rules of the policy file at ``path``."""
    named = 'the policy file %s ([oslo_policy] %s)' % (path, option)
    if not os.path.isfile(path):
        # A directory cannot be read, and a FIFO or /dev/zero never ends.
        return [(Code.FAILURE, '%s is not a regular file' % named)]
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        return [(Code.FAILURE, '%s cannot be read: %s'
                 % (named, e.strerror or e))]
    try:
        rules = oslo_policy.parse_file_contents(data)
    except ValueError as e:
        return [(Code.FAILURE, '%s is neither YAML nor JSON: %s'
                 % (named, _one_line(e)))]
    if not isinstance(rules, dict):
        return [(Code.FAILURE, '%s is no mapping of rule names to check '
                 'strings' % named)]
    findings = []
    for name, check_str in rules.items():
        why = None
        if not isinstance(name, str) or not isinstance(check_str,
                                                       (str, list)):
            why = 'it is no rule name with a check string'
        else:
            try:
                why = policy.unparsable(check_str)
            except (TypeError, ValueError) as e:
                why = _one_line(e)
        if why:
            findings.append((Code.FAILURE, 'the policy file %s has rule %r = '
                             '%r, which oslo.policy cannot parse (%s); the '
                             'rule would refuse every request'
                             % (path, name, check_str, why)))
    if findings:
        return findings
    known = {rule.name for rule in policies.list_rules()}
    referred = _referred(rules)
    unknown = sorted(name for name in rules
                     if name not in known and name not in referred)
    if unknown:
        findings.append((Code.WARNING, 'the policy file %s has rules '
                         'cache-maint does not have, which are ignored: %s; '
                         'check their spelling against "oslopolicy-sample-'
                         'generator --namespace cache_maint"'
                         % (path, ', '.join(unknown))))
    return findings


def _referred(rules):
    """The names the rules refer to with ``rule:NAME``: aliases in use."""
    referred = set()
    for check_str in rules.values():
        text = check_str if isinstance(check_str, str) else repr(check_str)
        referred.update(re.findall(r'rule:([\w.\-]+)', text))
    return referred
