"""The tempest plugin: tests, options and the cache-maint service client."""

import os

from tempest import config
from tempest.test_discover import plugins

from cache_maint_tempest_plugin import config as project_config


class CacheMaintTempestPlugin(plugins.TempestPlugin):

    def load_tests(self):
        base_path = os.path.split(os.path.dirname(
            os.path.abspath(__file__)))[0]
        test_dir = 'cache_maint_tempest_plugin/tests'
        full_test_dir = os.path.join(base_path, test_dir)
        return full_test_dir, base_path

    def register_opts(self, conf):
        conf.register_opt(project_config.service_option,
                          group='service_available')
        conf.register_group(project_config.cache_maint_group)
        conf.register_opts(project_config.CacheMaintGroup,
                           group=project_config.cache_maint_group)

    def get_opt_lists(self):
        return [
            ('service_available', [project_config.service_option]),
            (project_config.cache_maint_group.name,
             project_config.CacheMaintGroup),
        ]

    def get_service_clients(self):
        # service_client_config() gives the catalog filters (catalog_type,
        # endpoint_type, region) and the settings every client takes;
        # the configured endpoint, when there is one, overrides the
        # catalog (services/cache_maint_client.py).
        params = config.service_client_config('cache_maint')
        params.update(
            name='cache_maint',
            service_version='cache_maint.v2',
            module_path='cache_maint_tempest_plugin.services',
            client_names=['CacheMaintClient'],
            endpoint=config.CONF.cache_maint.endpoint)
        return [params]
