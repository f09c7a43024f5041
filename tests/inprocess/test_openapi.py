"""api-ref/openapi.yaml describes exactly the API that router.routes() serves.

The description is what the fault suite fuzzes the daemon with and what
operators read, so it must not drift from the route table: the same paths,
the same methods, the same public routes, and each guarded operation under
the policy that really guards it.
"""

import pathlib

import pytest
import yaml

from cache_maint.api.handlers import cache as cache_handlers
from cache_maint.api import router
from cache_maint import policies

#: The route table, walked: the paths and methods the API serves.
ROUTES = router.routes(cache_handlers.CacheHandlers)

OPENAPI = pathlib.Path(__file__).resolve().parents[2] / 'api-ref' / \
    'openapi.yaml'

METHODS = ('get', 'put', 'post', 'delete', 'patch', 'head', 'options',
           'trace')


@pytest.fixture(scope='module')
def description():
    with open(OPENAPI) as f:
        return yaml.safe_load(f)


def operations(description):
    """{(path, METHOD): operation} of the description."""
    return {(path, method.upper()): operation
            for path, item in description['paths'].items()
            for method, operation in item.items() if method in METHODS}


def test_it_is_openapi_3_with_the_token_header(description):
    assert description['openapi'].startswith('3.')
    token = description['components']['securitySchemes']['token']
    assert (token['type'], token['in'], token['name']) == (
        'apiKey', 'header', 'X-Auth-Token')


def test_same_paths_and_methods_as_the_route_table(description):
    described = {key for key in operations(description)}
    served = {(path, method) for path, methods in ROUTES.items()
              for method in methods}
    assert described == served, (
        'only in api-ref/openapi.yaml: %s; only in router.routes(): %s'
        % (sorted(described - served), sorted(served - described)))


def test_public_routes_need_no_token_and_the_rest_do(description):
    assert description['security'] == [{'token': []}]
    for (path, method), operation in operations(description).items():
        public = operation.get('security', description['security']) == []
        assert public == router.is_public(path), (path, method)


def test_each_guarded_operation_names_its_policy(description):
    guarded = {}
    for rule in policies.list_rules():
        for operation in getattr(rule, 'operations', ()):
            guarded[(operation['path'], operation['method'])] = rule.name
    named = {key: operation.get('x-openstack-policy')
             for key, operation in operations(description).items()
             if not router.is_public(key[0])}
    assert named == guarded


def test_every_error_is_the_error_schema(description):
    responses = description['components']['responses']
    for (path, method), operation in operations(description).items():
        for status, response in operation['responses'].items():
            if int(status) < 400:
                continue
            if '$ref' in response:
                response = responses[response['$ref'].rsplit('/', 1)[1]]
            schema = response['content']['application/json']['schema']
            assert schema == {'$ref': '#/components/schemas/Error'}, (
                path, method, status)
    error = description['components']['schemas']['Error']
    assert error['properties']['error']['required'] == [
        'code', 'title', 'message']


def test_guarded_operations_document_401_and_403(description):
    for (path, method), operation in operations(description).items():
        if not router.is_public(path):
            assert {'401', '403'} <= set(operation['responses']), (
                path, method)
