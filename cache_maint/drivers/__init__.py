"""Load the metadata driver named by ``[DEFAULT] image_cache_driver``."""

from importlib import metadata

from stevedore import driver as stevedore_driver

from cache_maint import exception

NAMESPACE = 'cache_maint.drivers'


def available():
    """Names of the drivers this installation provides."""
    return sorted({ep.name for ep in metadata.entry_points(group=NAMESPACE)})


def load_driver(conf):
    """Return an instance of the configured driver (not yet set up)."""
    name = conf.image_cache_driver.lower()
    if name not in available():
        raise exception.ConfigError(
            '[DEFAULT] image_cache_driver = %s: this cache-maint cannot '
            'maintain a %s cache; it has the drivers: %s'
            % (name, name, ', '.join(available())))
    return stevedore_driver.DriverManager(
        NAMESPACE, name, invoke_on_load=True, invoke_args=(conf,)).driver
