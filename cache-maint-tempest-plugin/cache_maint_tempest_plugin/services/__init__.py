from cache_maint_tempest_plugin.services.cache_maint_client import \
    CacheMaintClient

__all__ = ['CacheMaintClient']
