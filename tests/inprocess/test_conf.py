"""Option registration, bounds, and the start-up check."""

import pytest

from cache_maint import conf as cm_conf
from cache_maint.conf import opts
from cache_maint import drivers
from cache_maint import exception

from tests.support import settings


def write_conf(tmp_path, text):
    path = tmp_path / 'cache-maint.conf'
    path.write_text(text)
    return ['--config-file', str(path)]


def load(tmp_path, text):
    conf = settings.make_conf(tmp_path, args=write_conf(tmp_path, text))
    conf.clear_override('image_cache_dir')
    conf.clear_override('image_cache_driver')
    return conf


def test_defaults_are_glances(tmp_path):
    conf = load(tmp_path, '[DEFAULT]\nimage_cache_dir = %s\n' % tmp_path)
    cm_conf.check(conf)
    assert conf.image_cache_max_size == 10737418240
    assert conf.image_cache_stall_time == 86400
    assert conf.image_cache_driver == 'centralized_db'
    assert conf.image_cache_sqlite_db == 'cache.db'
    assert conf.cache_clean_interval == 86400
    assert conf.cache_prune_interval == 1800
    assert (conf.api.bind_host, conf.api.bind_port) == ('127.0.0.1', 9393)
    assert conf.api.auth_strategy == 'keystone'


def test_missing_cache_dir_names_the_option(tmp_path):
    conf = load(tmp_path, '[DEFAULT]\n')
    with pytest.raises(exception.ConfigError, match='image_cache_dir'):
        cm_conf.check(conf)


@pytest.mark.parametrize('line, option', [
    ('image_cache_max_size = -1', 'image_cache_max_size'),
    ('image_cache_stall_time = -5', 'image_cache_stall_time'),
    ('cache_clean_interval = -1', 'cache_clean_interval'),
    ('cache_prune_interval = soon', 'cache_prune_interval'),
    ('image_cache_driver = memcache', 'image_cache_driver'),
])
def test_bad_values_name_the_option(tmp_path, line, option):
    conf = load(tmp_path, '[DEFAULT]\nimage_cache_dir = %s\n%s\n'
                % (tmp_path, line))
    with pytest.raises(exception.ConfigError, match=option):
        cm_conf.check(conf)


def test_bad_port_names_the_option(tmp_path):
    conf = load(tmp_path, '[DEFAULT]\nimage_cache_dir = %s\n[api]\n'
                          'bind_port = 99999\n' % tmp_path)
    with pytest.raises(exception.ConfigError, match='bind_port'):
        cm_conf.check(conf)


@pytest.mark.parametrize('host, allowed', [
    ('127.0.0.1', True), ('::1', True), ('localhost', True),
    ('0.0.0.0', False), ('192.0.2.10', False)])
def test_noauth2_only_on_loopback(tmp_path, host, allowed):
    conf = load(tmp_path, '[DEFAULT]\nimage_cache_dir = %s\n[api]\n'
                          'auth_strategy = noauth2\nbind_host = %s\n'
                % (tmp_path, host))
    if allowed:
        cm_conf.check(conf)
    else:
        with pytest.raises(exception.ConfigError,
                           match='allow_insecure_noauth'):
            cm_conf.check(conf)
        conf.set_override('allow_insecure_noauth', True, group='api')
        cm_conf.check(conf)


def test_a_real_glance_api_conf_layers_under_ours(tmp_path):
    glance = tmp_path / 'glance-api.conf'
    glance.write_text(
        '[DEFAULT]\nbind_host = 0.0.0.0\nbind_port = 9292\nworkers = 4\n'
        'image_cache_dir = %s\nimage_cache_max_size = 2048\n'
        'image_cache_driver = sqlite\nenabled_backends = fast:file\n'
        '[database]\nconnection = mysql+pymysql://glance:x@db/glance\n'
        '[keystone_authtoken]\nwww_authenticate_uri = http://ks:5000\n'
        '[paste_deploy]\nflavor = keystone+cachemanagement\n'
        '[glance_store]\ndefault_backend = fast\n' % tmp_path)
    ours = tmp_path / 'cache-maint.conf'
    ours.write_text('[DEFAULT]\ncache_prune_interval = 60\n')
    conf = settings.make_conf(tmp_path, args=['--config-file', str(glance),
                                              '--config-file', str(ours)])
    conf.clear_override('image_cache_driver')
    cm_conf.check(conf)
    assert conf.image_cache_max_size == 2048
    assert conf.image_cache_driver == 'sqlite'
    assert conf.cache_prune_interval == 60
    # glance-api's own listener does not become ours.
    assert (conf.api.bind_host, conf.api.bind_port) == ('127.0.0.1', 9393)


def test_generator_lists_every_option():
    listed = {(getattr(group, 'name', group), opt.dest)
              for group, group_opts in opts.list_opts()
              for opt in group_opts}
    assert ('DEFAULT', 'image_cache_dir') in listed
    assert ('DEFAULT', 'cache_prune_interval') in listed
    assert ('api', 'auth_strategy') in listed
    for module in cm_conf.MODULES:
        for group, group_opts in module.list_opts().items():
            for opt in group_opts:
                assert (getattr(group, 'name', group), opt.dest) in listed
                assert opt.help.strip(), opt.name


def test_unavailable_driver_says_which_exist(tmp_path, monkeypatch):
    # An installation whose entry points lost a driver (a broken package).
    monkeypatch.setattr(drivers, 'available', lambda: ['sqlite'])
    conf = settings.make_conf(tmp_path, image_cache_driver='xattr')
    with pytest.raises(exception.ConfigError, match='drivers: sqlite'):
        drivers.load_driver(conf)
