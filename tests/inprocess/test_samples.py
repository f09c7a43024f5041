"""The committed samples say what the code says.

``etc/cache-maint.conf.sample`` and ``etc/policy.yaml.sample`` are
generated (``tox -e genconfig``, ``tox -e genpolicy``) and committed, so
that a wheel can install them. The policy sample holds cache-maint's rules
alone and must match a fresh generation exactly. The configuration sample
also documents the libraries' options (keystonemiddleware, oslo.log...),
whose help text changes with their releases; every one of cache-maint's
own options must appear in it exactly as generated now, in its group.
"""

import os
import re

from oslo_config import generator as config_generator
from oslo_policy import generator as policy_generator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
CONFIG_SAMPLE = os.path.join(ROOT, 'etc', 'cache-maint.conf.sample')
POLICY_SAMPLE = os.path.join(ROOT, 'etc', 'policy.yaml.sample')
REGENERATE = 'stale; regenerate it with "tox -e %s" and commit it'
#: A group's header line in a sample configuration file.
GROUP = re.compile(r'^\[(\w+)\]$', re.MULTILINE)
#: The commented-out option line that ends an option's block.
OPTION = re.compile(r'^#\w+ = ', re.MULTILINE)


def _read(path):
    with open(path) as f:
        return f.read()


def _groups(text):
    """``{group: its text}`` of a sample configuration file."""
    parts = GROUP.split(text)
    return dict(zip(parts[1::2], parts[2::2]))


def _option_blocks(text):
    """Each option's block: its help and its commented-out line."""
    return [block for block in text.split('\n\n') if OPTION.search(block)]


def test_the_policy_sample_is_current(tmp_path):
    fresh = tmp_path / 'policy.yaml.sample'
    policy_generator.generate_sample(
        args=['--namespace', 'cache_maint', '--output-file', str(fresh)])
    assert _read(POLICY_SAMPLE) == fresh.read_text(), (
        'etc/policy.yaml.sample is ' + REGENERATE % 'genpolicy')


def test_the_config_sample_holds_every_option_as_generated(tmp_path):
    fresh = tmp_path / 'cache-maint.conf.sample'
    # The namespace and wrap width of etc/oslo-config-generator's file.
    config_generator.main(args=['--namespace', 'cache_maint',
                                '--wrap-width', '79',
                                '--output-file', str(fresh)])
    committed = _groups(_read(CONFIG_SAMPLE))
    stale = []
    checked = 0
    for group, text in _groups(fresh.read_text()).items():
        for block in _option_blocks(text):
            checked += 1
            if block not in committed.get(group, ''):
                stale.append('[%s] %s' % (
                    group, OPTION.search(block).group(0)[1:-3]))
    assert checked > 30, 'the sample lists too few options to be read right'
    assert not stale, 'etc/cache-maint.conf.sample is %s: %s' % (
        REGENERATE % 'genconfig', ', '.join(stale))
