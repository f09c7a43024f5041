"""Configurations: parsed in-process, or written as a file for a process."""

import configparser
import os

from oslo_config import cfg

import cache_maint.cmd  # noqa: F401  (selects oslo.service's backend first)
from cache_maint import conf as cm_conf


def make_conf(cache_dir, args=(), **overrides):
    """A parsed ConfigOpts for ``cache_dir`` with the sqlite driver.

    ``group__name=value`` overrides an option of a group, ``name=value``
    one of [DEFAULT].
    """
    conf = cfg.ConfigOpts()
    cm_conf.register_opts(conf)
    conf(list(args), project='cache-maint', default_config_files=[])
    conf.set_override('image_cache_dir', str(cache_dir))
    conf.set_override('image_cache_driver', 'sqlite')
    for key, value in overrides.items():
        group, _, name = key.rpartition('__')
        conf.set_override(name, value, group=group or None)
    return conf


def write_config(path, sections):
    """Write ``{section: {option: value}}`` as an ini file, atomically."""
    parser = configparser.ConfigParser(interpolation=None)
    for section, options in sections.items():
        if section != 'DEFAULT':
            parser.add_section(section)
        for name, value in options.items():
            parser.set(section, name, str(value))
    tmp = '%s.tmp' % path
    with open(tmp, 'w') as f:
        parser.write(f)
    os.replace(tmp, path)
    return str(path)


def cache_sections(cache, **options):
    """The sections naming ``cache`` and its driver, plus ``options``.

    ``options`` go to [DEFAULT]; a centralized_db cache adds its node's URL
    and a [database] section.
    """
    default = {'image_cache_dir': cache.path,
               'image_cache_driver': cache.driver}
    sections = {'DEFAULT': default}
    if cache.driver == 'centralized_db':
        default['worker_self_reference_url'] = cache.node_url
        sections['database'] = {'connection': cache.url}
    default.update(options)
    return sections
