"""The Prometheus alerting rules shipped in etc/prometheus: their shape, and
that every metric they query is one the service exposes.
"""

import os
import re

import yaml

from cache_maint import cache as cm_cache
from cache_maint.metrics import exposition
from cache_maint.metrics import observer

from tests.support import caches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
RULES = os.path.join(ROOT, 'etc', 'prometheus', 'cache-maint-alerts.yaml')

#: Series Prometheus makes itself, for every target.
BUILTIN_SERIES = {'up', 'scrape_duration_seconds', 'scrape_samples_scraped'}

#: PromQL's keywords and aggregation operators: never metric names.
KEYWORDS = {'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring',
            'group_left', 'group_right', 'bool', 'offset', 'sum', 'min',
            'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk',
            'quantile', 'count_values', 'group', 'inf', 'nan'}

#: The PromQL functions the rules may call.
FUNCTIONS = {'time', 'absent', 'absent_over_time', 'increase', 'rate',
             'irate', 'delta', 'deriv', 'changes', 'resets', 'clamp_min',
             'clamp_max', 'max_over_time', 'min_over_time', 'avg_over_time',
             'predict_linear', 'timestamp', 'vector', 'scalar'}

_DURATION = re.compile(r'^(\d+[smhdwy])+$')
_IDENTIFIER = re.compile(r'[A-Za-z_:][A-Za-z0-9_:]*')


def load_rules():
    with open(RULES) as f:
        return yaml.safe_load(f)


def all_rules():
    return [rule for group in load_rules()['groups']
            for rule in group['rules']]


def referenced(expr):
    """(metric names, function names) an expression refers to."""
    # Label matchers, strings, range and subquery selectors, and the label
    # lists of by/without/on/ignoring/group_*: none names a metric.
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r'\{[^}]*\}', ' ', text)
    text = re.sub(r'\[[^\]]*\]', ' ', text)
    text = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*'
                  r'\([^)]*\)', ' ', text)
    names, functions = set(), set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        if word.lower() in KEYWORDS:
            continue
        if text[match.end():].lstrip().startswith('('):
            functions.add(word)
        else:
            names.add(word)
    return names, functions


def exposed_names(tmp_path):
    """Every sample name the service's registry exposes, as stored."""
    files = caches.SqliteCache(tmp_path / 'cache')
    conf = files.conf()
    cache = cm_cache.Cache.from_conf(conf)
    try:
        registry = exposition.make_registry(
            conf, observer.Observer(conf, cache))
        names = set()
        for family in registry.collect():
            suffixes = {'counter': ('_total',),
                        'histogram': ('_bucket', '_count', '_sum'),
                        'info': ('_info',)}.get(family.type, ('',))
            names.update(family.name + suffix for suffix in suffixes)
            names.update(sample.name for sample in family.samples)
    finally:
        cache.close()
    return names


def test_the_file_is_groups_of_well_formed_alerting_rules():
    document = load_rules()
    assert set(document) == {'groups'}
    assert document['groups']
    for group in document['groups']:
        assert set(group) <= {'name', 'interval', 'rules'}
        assert group['name'] and group['rules']
    names = [rule['alert'] for rule in all_rules()]
    assert len(names) == len(set(names)), names
    for rule in all_rules():
        assert set(rule) <= {'alert', 'expr', 'for', 'labels', 'annotations',
                             'keep_firing_for'}, rule['alert']
        assert re.fullmatch(r'[A-Z][A-Za-z0-9]+', rule['alert'])
        assert isinstance(rule['expr'], str) and rule['expr'].strip()
        assert _DURATION.match(rule['for']), rule['alert']
        assert rule['labels']['severity'] in ('info', 'warning', 'critical')
        assert {'summary', 'description'} <= set(rule['annotations'])
        assert rule['expr'].count('(') == rule['expr'].count(')')


def test_every_metric_the_rules_query_is_exposed(tmp_path):
    exposed = exposed_names(tmp_path)
    used = set()
    for rule in all_rules():
        names, functions = referenced(rule['expr'])
        unknown = names - exposed - BUILTIN_SERIES
        assert not unknown, '%s queries %s, which nothing exposes' % (
            rule['alert'], sorted(unknown))
        assert functions <= FUNCTIONS, (rule['alert'], functions)
        used |= names
    # The alerts the operators were promised, on the metrics they need.
    for needed in ('glance_cache_maint_last_success_timestamp_seconds',
                   'glance_cache_size_bytes', 'glance_cache_max_size_bytes',
                   'glance_cache_refetched_bytes_total',
                   'glance_cache_maint_runs_total', 'up'):
        assert needed in used, needed


def test_the_reference_check_sees_names_and_only_names():
    names, functions = referenced(
        'sum by (task) (increase(foo_total{outcome="failed", a=~"b|c"}[1h]))'
        ' > ignoring(state) 1.2 * bar_bytes unless on(x) time() - baz')
    assert names == {'foo_total', 'bar_bytes', 'baz'}
    assert functions == {'increase', 'time'}


def test_the_stale_task_thresholds_are_three_default_intervals():
    expressions = {rule['alert']: rule['expr'] for rule in all_rules()}
    stale = {task: [expr for expr in expressions.values()
                    if 'task="%s"' % task in expr
                    and 'last_success' in expr]
             for task in ('prune', 'clean')}
    assert stale['prune'] and stale['clean']
    assert '3 * 1800' in stale['prune'][0]
    assert '3 * 86400' in stale['clean'][0]
