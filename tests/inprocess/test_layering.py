"""Imports point downward and each framework has one home (design.md 2)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / 'cache_maint'

# Which modules may import a third-party framework.
HOMES = {
    'oslo_service': ('cache_maint.cmd', 'cache_maint.service'),
    'futurist': ('cache_maint.periodic',),
    'watchdog': ('cache_maint.watcher',),
    'webob': ('cache_maint.api',),
    'waitress': ('cache_maint.api.server', 'cache_maint.api.protocol'),
    'keystonemiddleware': ('cache_maint.api.auth',),
    # scratch writes a scratch cache's records as Glance's drivers do.
    'sqlite3': ('cache_maint.drivers.sqlite', 'cache_maint.state',
                'cache_maint.scratch'),
    'prometheus_client': ('cache_maint.metrics',),
    'sqlalchemy': ('cache_maint.drivers.centralized_db',
                   'cache_maint.drivers.node_rows',
                   'cache_maint.drivers.glance_tables', 'cache_maint.scratch',
                   'cache_maint.shared_db'),
    'osc_lib': ('cache_maint.osc',),
    'openstack': ('cache_maint.osc',),
    'oslo_upgradecheck': ('cache_maint.upgrade_checks',
                          'cache_maint.cmd.status'),
}

# Which of our own layers a module must never import.
_SERVICE = ('cache_maint.api', 'cache_maint.service', 'cache_maint.periodic',
            'cache_maint.cmd', 'cache_maint.wsgi')
FORBIDDEN = {
    'cache_maint.exception': ('cache_maint.cachedir', 'cache_maint.conf',
                              'cache_maint.drivers', 'cache_maint.locks',
                              'cache_maint.maintenance', 'cache_maint.runs',
                              'cache_maint.policies', 'cache_maint.policy',
                              'cache_maint.context') + _SERVICE,
    'cache_maint.removal': ('cache_maint.cachedir', 'cache_maint.drivers',
                            'cache_maint.locks', 'cache_maint.maintenance',
                            'cache_maint.runs') + _SERVICE,
    'cache_maint.cachedir': ('cache_maint.drivers', 'cache_maint.locks',
                             'cache_maint.maintenance', 'cache_maint.runs',
                             'cache_maint.policy', 'cache_maint.context')
    + _SERVICE,
    'cache_maint.locks': ('cache_maint.drivers', 'cache_maint.maintenance',
                          'cache_maint.runs') + _SERVICE,
    'cache_maint.periodic': ('cache_maint.api', 'cache_maint.service',
                             'cache_maint.cmd', 'cache_maint.drivers'),
    'cache_maint.policies': ('cache_maint.policy', 'cache_maint.context')
    + _SERVICE,
    'cache_maint.policy': _SERVICE,
    'cache_maint.context': _SERVICE,
    'cache_maint.evictor': ('cache_maint.drivers', 'cache_maint.api',
                            'cache_maint.service', 'cache_maint.periodic',
                            'cache_maint.cmd'),
    'cache_maint.maintenance': ('cache_maint.drivers', 'cache_maint.cache',
                                'cache_maint.api', 'cache_maint.service',
                                'cache_maint.periodic', 'cache_maint.cmd'),
    'cache_maint.cache': ('cache_maint.maintenance', 'cache_maint.runs',
                          'cache_maint.images') + _SERVICE,
    'cache_maint.drivers': ('cache_maint.cache', 'cache_maint.maintenance',
                            'cache_maint.runs',
                            'cache_maint.api', 'cache_maint.service',
                            'cache_maint.cmd'),
    'cache_maint.api': ('cache_maint.service', 'cache_maint.periodic',
                        'cache_maint.cmd', 'cache_maint.drivers'),
    'cache_maint.runs': ('cache_maint.api', 'cache_maint.service',
                         'cache_maint.cmd', 'cache_maint.drivers'),
    'cache_maint.images': ('cache_maint.drivers', 'cache_maint.cache',
                           'cache_maint.runs') + _SERVICE,
    'cache_maint.state': ('cache_maint.cachedir', 'cache_maint.drivers',
                          'cache_maint.cache', 'cache_maint.maintenance',
                          'cache_maint.runs') + _SERVICE,
    'cache_maint.scratch': ('cache_maint.maintenance', 'cache_maint.runs',
                            'cache_maint.images') + _SERVICE,
    # The shared database as a whole: Glance's tables, nothing of a cache.
    'cache_maint.shared_db': ('cache_maint.cache', 'cache_maint.maintenance',
                              'cache_maint.runs', 'cache_maint.images',
                              'cache_maint.drivers.centralized_db')
    + _SERVICE,
    'cache_maint.conf': ('cache_maint.drivers', 'cache_maint.api',
                         'cache_maint.service', 'cache_maint.cmd'),
    # Read-only checks: nothing that acts on the cache or runs the service
    # (the API's auth and health checks are read).
    'cache_maint.upgrade_checks': ('cache_maint.maintenance',
                                   'cache_maint.evictor', 'cache_maint.runs',
                                   'cache_maint.images', 'cache_maint.cache',
                                   'cache_maint.service',
                                   'cache_maint.periodic', 'cache_maint.cmd',
                                   'cache_maint.wsgi'),
}


def modules():
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
        if parts[-1] == '__init__':
            parts = parts[:-1]
        yield '.'.join(parts), path


def imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            for alias in node.names:
                yield '%s.%s' % (node.module, alias.name)


def within(name, prefixes):
    return any(name == p or name.startswith(p + '.') for p in prefixes)


@pytest.mark.parametrize('module, path', list(modules()),
                         ids=lambda value: str(value))
def test_imports_respect_the_layers(module, path):
    for imported in imports(path):
        for framework, homes in HOMES.items():
            if within(imported, (framework,)):
                assert within(module, homes), (
                    '%s imports %s, which lives in %s'
                    % (module, imported, homes))
        for layer, banned in FORBIDDEN.items():
            if within(module, (layer,)):
                assert not within(imported, banned), (
                    '%s imports %s, above its layer' % (module, imported))


def test_no_global_config():
    for module, path in modules():
        assert 'cfg.CONF' not in path.read_text(), module
