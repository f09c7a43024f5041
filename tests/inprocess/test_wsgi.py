"""The module-level application for uWSGI and gunicorn deployments."""

import importlib
import sys

import webob

from tests.support import caches


def test_application_serves_the_api(tmp_path, monkeypatch):
    cache = caches.SqliteCache(tmp_path / 'cache')
    for i in range(3):
        cache.add_image(last_accessed=100.0 + i)
    conf = tmp_path / 'cache-maint.conf'
    conf.write_text('[DEFAULT]\nimage_cache_dir = %s\n'
                    'image_cache_driver = sqlite\nimage_cache_max_size = 0\n'
                    '[api]\nauth_strategy = noauth2\n' % cache.path)
    monkeypatch.setenv('CACHE_MAINT_CONFIG_FILES', str(conf))
    sys.modules.pop('cache_maint.wsgi.api', None)
    module = importlib.import_module('cache_maint.wsgi.api')
    req = webob.Request.blank('/v2/cache/prune', method='POST',
                              headers={'X-Auth-Token': 'admin'})
    response = req.get_response(module.application)
    assert response.status_int == 200
    assert response.json['total_files_pruned'] == 3
    assert cache.images() == set()
