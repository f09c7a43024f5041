"""Fuzz the real daemon's HTTP surface from api-ref/openapi.yaml.

schemathesis generates requests for every operation of the description,
valid and invalid ones (ids that are no UUID, bogus clear targets, bodies
where none is taken), and sends them with the admin token to a real
``cache-maint`` on loopback whose timers prune and clean every second.
Every response must be no 5xx and conform to the description (status,
content type, body schema), and nothing outside the cache may change:
links planted under the description's example id point at canaries.
"""

import os
import pathlib

import hypothesis
import jsonschema
import pytest
import schemathesis
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as openapi_checks
from schemathesis.specs.openapi import definitions
import yaml

from tests.faults import hostile
from tests.support import caches
from tests.support import rawhttp
from tests.support import running

OPENAPI = pathlib.Path(__file__).resolve().parents[2] / 'api-ref' / \
    'openapi.yaml'

schema = schemathesis.openapi.from_path(str(OPENAPI))

CHECKS = [
    st_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
]


def _example_id():
    with open(OPENAPI) as f:
        description = yaml.safe_load(f)
    return description['components']['parameters']['ImageId']['example']


class Target:
    """A daemon on a populated cache, with links around canaries."""

    def __init__(self, root):
        root = pathlib.Path(root)
        self.cache = caches.SqliteCache(root / 'cache')
        for i in range(20):
            self.cache.add_image(size=caches.KIB, last_accessed=1000.0 + i)
        for _ in range(3):
            self.cache.add_invalid()
            self.cache.queue()
        self.outside = root / 'outside'
        self.outside.mkdir()
        canary = self.outside / 'canary'
        canary.write_bytes(b'precious\n')
        (self.outside / 'dir').mkdir()
        example = _example_id()
        os.symlink(canary, os.path.join(self.cache.path, example))
        os.symlink(self.outside / 'dir',
                   os.path.join(self.cache.path, 'queue', example))
        os.symlink(self.outside / 'created-if-followed',
                   os.path.join(self.cache.path, 'incomplete', example))
        self.outside_before = hostile.tree(self.outside)
        self.root = root


@pytest.fixture(scope='module')
def target(tmp_path_factory):
    target = Target(tmp_path_factory.mktemp('fuzz'))
    with running.daemon(
            target.root, target.cache.path,
            image_cache_max_size=8 * caches.KIB, cache_prune_interval=1,
            cache_clean_interval=1) as daemon:
        target.daemon = daemon
        yield target
        assert rawhttp.answers(daemon.port)
        log = daemon.log()
    assert 'Traceback' not in log
    assert hostile.tree(target.outside) == target.outside_before


@schema.parametrize()
@hypothesis.settings(max_examples=50, deadline=None)
def test_the_api_keeps_its_description(case, target):
    response = case.call(base_url=target.daemon.url(''),
                         headers={'X-Auth-Token': 'admin'})
    case.validate_response(response, checks=CHECKS)
    assert 'Traceback' not in response.text
    assert str(target.root) not in response.text
    assert hostile.tree(target.outside) == target.outside_before


def test_the_description_is_valid_openapi_3_0():
    """Checked against the OpenAPI 3.0 meta-schema schemathesis ships."""
    with open(OPENAPI) as f:
        description = yaml.safe_load(f)
    validator = jsonschema.Draft4Validator(definitions.OPENAPI_30)
    errors = ['%s at %s' % (e.message, list(e.path))
              for e in validator.iter_errors(description)]
    assert errors == []
