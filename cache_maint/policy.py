"""The policy enforcer: built from a ConfigOpts, one per application."""

import contextlib
import logging as std_logging
import os

from oslo_config import cfg
from oslo_log import log as logging
from oslo_policy import _parser
from oslo_policy import policy

from cache_maint import conf as cm_conf
from cache_maint import exception
from cache_maint import policies

LOG = logging.getLogger(__name__)


def make_enforcer(conf):
    """An enforcer with cache-maint's defaults and the operator's file.

    A policy file that cannot be read leaves every guarded request refused
    (503) until it is mended; oslo.policy reads it again once it changes.
    """
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(policies.list_rules())
    try:
        enforcer.load_rules()
    except Exception as e:
        LOG.error('Cannot load the policy rules: %s', _explain(e))
    return enforcer


def check(conf):
    """Raise ConfigError unless the operator's policy files are usable.

    Usable means: they parse, every rule in them is valid, and no rule
    refers to one that does not exist or to itself.
    """
    sources = files(conf)
    for option, path in sources:
        if not os.path.isfile(path):
            # oslo.policy would read a FIFO for ever, /dev/zero until
            # memory runs out.
            raise exception.ConfigError(
                'the policy file %s ([oslo_policy] %s) is not a regular file'
                % (path, option))
    subject, plural = _subject(conf, sources)
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(policies.list_rules())
    with _unparsable_rules() as unparsable:
        try:
            enforcer.load_rules()
            enforcer.check_rules(raise_on_violation=True)
        except Exception as e:
            raise exception.ConfigError('%s %s not usable: %s' % (
                subject, 'are' if plural else 'is', _explain(e)))
    if unparsable:
        raise exception.ConfigError('%s %s a rule that cannot be parsed: %s'
                                    % (subject, 'have' if plural else 'has',
                                       unparsable[0]))


def files(conf):
    """(option, path) of each policy file oslo.policy reads, in its order.

    ``[oslo_policy] policy_file``, then the files in each of
    ``policy_dirs``, every name found as oslo.policy finds it: absolute, or
    in the configuration directories.
    """
    found = []
    path = conf.find_file(conf.oslo_policy.policy_file)
    if path is not None:
        found.append(('policy_file', path))
    for name in conf.oslo_policy.policy_dirs:
        directory = conf.find_file(name)
        if directory is None or not os.path.isdir(directory):
            continue
        # Its files, not its subdirectories', hidden ones left out.
        _root, _dirs, names = next(os.walk(directory))
        found += [('policy_dirs', os.path.join(directory, file_name))
                  for file_name in sorted(names)
                  if not file_name.startswith('.')]
    return found


def _subject(conf, sources):
    """(the policy files, named for a message; whether they are several)."""
    if len(sources) > 1:
        return ('the policy files %s ([oslo_policy] policy_file and '
                'policy_dirs)' % ', '.join(path for _option, path in sources),
                True)
    if sources and sources[0][0] == 'policy_dirs':
        return ('the policy file %s (in [oslo_policy] policy_dirs)'
                % sources[0][1], False)
    return ('the policy file of [oslo_policy] policy_file = %s'
            % conf.oslo_policy.policy_file, False)


def unparsable(check_str):
    """Why oslo.policy cannot parse a rule's check string, or None."""
    with _unparsable_rules() as found:
        _parser.parse_rule(check_str)
    return found[0] if found else None


@contextlib.contextmanager
def _unparsable_rules():
    """Collect, instead of logging, the rules oslo.policy cannot parse.

    oslo.policy logs a traceback for such a rule and then denies it; the
    check turns them into one line.
    """
    found = []

    class Collect(std_logging.Filter):
        def filter(self, record):
            found.append(record.getMessage())
            return False

    collect = Collect()
    parser_log = std_logging.getLogger('oslo_policy._parser')
    parser_log.addFilter(collect)
    try:
        yield found
    finally:
        parser_log.removeFilter(collect)


def _explain(error):
    """A policy file error in one line."""
    return ' '.join(str(error).split()) or type(error).__name__


def get_enforcer():
    """Entry point for oslopolicy-policy-generator and -validator."""
    conf = cfg.ConfigOpts()
    cm_conf.register_opts(conf)
    conf([], project='cache-maint')
    return make_enforcer(conf)


def authorize(enforcer, context, action, target=None):
    """Raise PolicyNotAuthorized unless ``context`` may do ``action``.

    oslo.policy reads the policy file again when it changes. If the new one
    cannot be read, the rules loaded before stay in force; if none were
    ever loaded, the request is refused with PolicyUnavailable.
    """
    target = target or {'project_id': context.project_id,
                        'user_id': context.user_id}
    # A file that failed to load is not read again until it changes, so
    # the second attempt uses the rules oslo.policy kept, if any.
    for _attempt in range(2):
        try:
            enforcer.authorize(action, target, context, do_raise=True)
            return
        except (policy.PolicyNotAuthorized, policy.InvalidScope):
            LOG.debug('Policy %s refused user %s of project %s', action,
                      context.user_id, context.project_id)
            raise exception.PolicyNotAuthorized(
                'policy %s refused the request' % action, action=action)
        except Exception as e:
            LOG.error('Cannot load the policy rules: %s', _explain(e))
    raise exception.PolicyUnavailable(
        'policy %s could not be checked: the policy rules cannot be loaded'
        % action)
