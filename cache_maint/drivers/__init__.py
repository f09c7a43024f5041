"""Load the metadata driver named by ``[DEFAULT] image_cache_driver``."""

from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exception

from cache_maint import exception

NAMESPACE = 'cache_maint.drivers'


def load_driver(conf):
    """Return an instance of the configured driver (not yet set up)."""
    name = conf.image_cache_driver.lower()
    try:
        manager = stevedore_driver.DriverManager(
            NAMESPACE, name, invoke_on_load=True, invoke_args=(conf,))
    except stevedore_exception.NoMatches:
        raise exception.ConfigError(
            '[DEFAULT] image_cache_driver = %s is not supported by this '
            'cache-maint installation' % name)
    return manager.driver
