"""The test and benchmark dependencies declared are those imported.

Each suite may import what the package requires, what the ``test`` extra
adds, and what its own tox environment installs; a ``test`` extra that
nothing imports is dead weight in every developer's virtualenv. Database
drivers are the exception: SQLAlchemy loads them by URL, never by import.
"""

import ast
import configparser
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: Distributions loaded by SQLAlchemy from a URL, not imported by name.
LOADED_BY_URL = {'psycopg', 'pymysql', 'psycopg2-binary'}

#: Distributions the tests run as a command (``python -m build``).
RUN_AS_COMMANDS = {'build'}

#: Import names that differ from their distribution's name.
DISTRIBUTION_OF = {'yaml': 'pyyaml', 'openstack': 'openstacksdk'}

#: Modules of a library that need a distribution the library does not
#: require: its test fixtures, which import ``fixtures``.
ALSO_NEEDS = {'keystonemiddleware.fixture': ('fixtures',),
              'keystoneauth1.fixture': ('fixtures',)}

#: The Glance harness: shared, but only by the suites that install Glance.
GLANCE_HARNESS = 'tests/support/glance.py'

#: Where each suite lives, and the tox environment that installs its extras
#: (None: the main suite, ``pip install -e .[test]``).
SUITES = {
    'main': (('tests/inprocess', 'tests/processes', 'tests/support'),
             None),
    'compat': (('tests/compat', GLANCE_HARNESS), 'compat'),
    'faults': (('tests/faults', GLANCE_HARNESS), 'faults'),
    'clients': (('tests/clients',), 'clients'),
    'keystone': (('tests/keystone', 'tools'), 'keystone'),
    'bench': (('bench', GLANCE_HARNESS), 'bench'),
}

OURS = {'cache_maint', 'tests', 'bench', 'tools'}


def _canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def _requirement_names(text):
    """Distribution names of requirement lines (specifiers dropped)."""
    names = set()
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            names.add(_canonical(re.split(r'[\[<>=!~; ]', line, 1)[0]))
    return names


def _setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(ROOT / 'setup.cfg')
    return parser


def _declared(suite):
    setup = _setup_cfg()
    names = _requirement_names(setup['options']['install_requires'])
    names |= _requirement_names(setup['options.extras_require']['test'])
    env = SUITES[suite][1]
    if env is not None:
        tox = configparser.ConfigParser(interpolation=None)
        tox.read(ROOT / 'tox.ini')
        names |= _requirement_names(tox['testenv:%s' % env]['deps'])
    return names


def _files(suite):
    for place in SUITES[suite][0]:
        if place.endswith('.py'):
            yield ROOT / place
            continue
        for path in (ROOT / place).rglob('*.py'):
            if suite != 'main' or path != ROOT / GLANCE_HARNESS:
                yield path


def _third_party_imports(paths):
    """{distribution: first file importing it} of the non-stdlib imports."""
    found = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module] + ['%s.%s' % (node.module, alias.name)
                                           for alias in node.names]
            else:
                continue
            for module in modules:
                for needed in ALSO_NEEDS.get(module, ()):
                    found.setdefault(needed, path.relative_to(ROOT))
                top = module.split('.', 1)[0]
                if top in sys.stdlib_module_names or top in OURS:
                    continue
                name = _canonical(DISTRIBUTION_OF.get(top, top))
                found.setdefault(name, path.relative_to(ROOT))
    return found


@pytest.mark.parametrize('suite', sorted(SUITES))
def test_every_import_is_declared(suite):
    imported = _third_party_imports(_files(suite))
    undeclared = {name: str(path) for name, path in imported.items()
                  if name not in _declared(suite)}
    assert not undeclared, (
        '%s imports what neither setup.cfg nor its tox environment '
        'declares: %s' % (suite, undeclared))


def test_every_test_extra_is_used():
    extra = _requirement_names(
        _setup_cfg()['options.extras_require']['test'])
    imported = _third_party_imports(_files('main'))
    unused = extra - set(imported) - LOADED_BY_URL - RUN_AS_COMMANDS
    assert not unused, 'the test extra declares unused %s' % sorted(unused)
