"""api-ref/openapi.yaml describes exactly the API that router.routes() serves.

The description is what the fault suite fuzzes the daemon with and what
operators read, so it must not drift from the route table: the same paths,
the same methods, the same public routes, and each guarded operation under
the policy that really guards it; and the application's real answers, on a
cache in every state the schemas tell apart, must conform to them.
"""

import json
import pathlib
import re
import shutil

import pytest
import webob
import yaml

from cache_maint.api.handlers import cache as cache_handlers
from cache_maint.api import router
from cache_maint import policies

from tests.support import apps
from tests.support import caches
from tests.support import settings

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


# -- real answers against the description's schemas -----------------------
#
# The fault suite fuzzes the daemon from the description, but on a cache a
# timer keeps pruned: a dry run there plans nothing, and the state never
# fails. Here the application answers, in-process over a real cache, in the
# states that exercise every branch of the new schemas (a plan with an
# untracked file and a pinned image, a clean's planned files, runs with and
# without an id, a status whose cache and state cannot be read), and each
# answer is checked against the schema of its path, method and status.

#: Schema keywords conforms() checks, and those that only annotate.
CHECKED = {'$ref', 'type', 'nullable', 'enum', 'required', 'properties',
           'additionalProperties', 'items', 'minItems', 'maxItems',
           'maxProperties', 'minimum', 'maximum', 'minLength', 'maxLength',
           'pattern', 'oneOf', 'anyOf', 'allOf'}
ANNOTATIONS = {'description', 'example', 'format', 'title'}

TYPES = {'object': dict, 'array': list, 'string': str, 'boolean': bool,
         'integer': int, 'number': (int, float)}


def _resolve(description, ref):
    node = description
    for part in ref.lstrip('#/').split('/'):
        node = node[part]
    return node


def conforms(description, schema, value, where='$'):
    """The ways ``value`` breaks ``schema`` (OpenAPI 3.0), as strings."""
    if '$ref' in schema:
        return conforms(description, _resolve(description, schema['$ref']),
                        value, where)
    if value is None:
        return [] if schema.get('nullable') else ['%s is null' % where]
    wrong = []
    kind = schema.get('type')
    if kind is not None and (not isinstance(value, TYPES[kind]) or (
            kind in ('integer', 'number') and isinstance(value, bool))):
        return ['%s is not of type %s: %r' % (where, kind, value)]
    if 'enum' in schema and value not in schema['enum']:
        wrong.append('%s is not one of %s: %r'
                     % (where, schema['enum'], value))
    if isinstance(value, dict):
        properties = schema.get('properties', {})
        wrong += ['%s lacks %s' % (where, key)
                  for key in schema.get('required', ()) if key not in value]
        if len(value) > schema.get('maxProperties', len(value)):
            wrong.append('%s has too many properties' % where)
        for key, item in value.items():
            if key in properties:
                wrong += conforms(description, properties[key], item,
                                  '%s.%s' % (where, key))
            elif schema.get('additionalProperties') is False:
                wrong.append('%s has %s, which it does not describe'
                             % (where, key))
            elif isinstance(schema.get('additionalProperties'), dict):
                wrong += conforms(description,
                                  schema['additionalProperties'], item,
                                  '%s.%s' % (where, key))
    if isinstance(value, list):
        if not schema.get('minItems', 0) <= len(value) <= schema.get(
                'maxItems', len(value)):
            wrong.append('%s has %d items' % (where, len(value)))
        for i, item in enumerate(value):
            wrong += conforms(description, schema.get('items', {}), item,
                              '%s[%d]' % (where, i))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < schema.get('minimum', value) or \
                value > schema.get('maximum', value):
            wrong.append('%s is out of range: %r' % (where, value))
    if isinstance(value, str):
        if not schema.get('minLength', 0) <= len(value) <= schema.get(
                'maxLength', len(value)):
            wrong.append('%s has a wrong length: %r' % (where, value))
        if 'pattern' in schema and not re.search(schema['pattern'], value):
            wrong.append('%s does not match %s: %r' % (
                where, schema['pattern'], value))
    for sub in schema.get('allOf', ()):
        wrong += conforms(description, sub, value, where)
    if 'anyOf' in schema and not any(
            not conforms(description, sub, value, where)
            for sub in schema['anyOf']):
        wrong.append('%s matches none of anyOf' % where)
    if 'oneOf' in schema:
        matched = sum(not conforms(description, sub, value, where)
                      for sub in schema['oneOf'])
        if matched != 1:
            wrong.append('%s matches %d of oneOf, not 1' % (where, matched))
    return wrong


def _schemas(node):
    """Every schema object of the description, nested ones included."""
    if isinstance(node, dict):
        if 'schema' in node and isinstance(node['schema'], dict):
            yield node['schema']
        for key, value in node.items():
            if key in ('properties', 'patternProperties'):
                for sub in value.values():
                    yield sub
                    yield from _schemas(sub)
            elif key in ('items', 'additionalProperties') and isinstance(
                    value, dict):
                yield value
                yield from _schemas(value)
            elif key in ('oneOf', 'anyOf', 'allOf'):
                for sub in value:
                    yield sub
                    yield from _schemas(sub)
            else:
                yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def test_the_checker_knows_every_keyword_the_schemas_use(description):
    """conforms() ignores no constraint the description states."""
    roots = list(description['components']['schemas'].values())
    used = set()
    for schema in roots + list(_schemas(description)):
        used.update(schema)
    assert used - CHECKED - ANNOTATIONS == set()


def _template(path):
    """The route template (as the description names it) of a path."""
    path = path.split('?', 1)[0]
    for template in ROUTES:     # literal paths first, as the router tries
        if re.fullmatch(re.sub(r'\\{\w+\\}', '[^/]+', re.escape(template)),
                        path):
            return template
    raise AssertionError('no route for %s' % path)


class Described:
    """The application in-process, each answer checked by the description."""

    def __init__(self, description, tmp_path, **overrides):
        self.description = description
        self.cache = caches.SqliteCache(tmp_path / 'cache')
        self.conf = settings.make_conf(self.cache.path,
                                       api__auth_strategy='noauth2',
                                       **overrides)
        self.app = apps.make_app(self.conf)

    def request(self, method, path, status, body=None):
        """The answer's JSON, once checked; None for an empty answer."""
        req = webob.Request.blank(path, method=method)
        req.headers['X-Auth-Token'] = 'admin'
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = 'application/json'
        response = req.get_response(self.app)
        assert response.status_int == status, response.text
        operation = self.description['paths'][_template(path)][
            method.lower()]
        described = operation['responses'][str(status)]
        if '$ref' in described:
            described = _resolve(self.description, described['$ref'])
        if 'content' not in described:
            assert response.body == b''
            return None
        assert response.content_type == 'application/json'
        schema = described['content']['application/json']['schema']
        assert conforms(self.description, schema, response.json) == []
        return response.json


def test_answers_conform_on_a_cache_in_every_state(description, tmp_path):
    described = Described(description, tmp_path,
                          image_cache_max_size=4 * caches.KIB,
                          image_cache_stall_time=60)
    cache = described.cache
    tracked = [cache.add_image(size=2 * caches.KIB, last_accessed=1e9 + i,
                               hits=i) for i in range(3)]
    untracked = cache.add_image(size=caches.KIB, tracked=False)
    cache.add_invalid()
    cache.add_incomplete(age=3600)
    pin_path = '/v2/cache/pins/%s' % tracked[0]

    assert described.request('GET', '/v2/cache/status', 200)['tasks'][
        'prune']['last_run'] is None
    described.request('PUT', pin_path, 201, {'note': 'the golden image'})
    described.request('PUT', pin_path, 200)
    assert [pin['image_id'] for pin in described.request(
        'GET', '/v2/cache/pins', 200)['pins']] == [tracked[0]]

    plan = described.request('POST', '/v2/cache/prune?dry_run=true', 200)
    assert [(image['image_id'], image['reason'])
            for image in plan['images']] == [
        (untracked, 'untracked'), (tracked[0], 'pinned'),
        (tracked[1], 'size')]
    assert plan['images'][0]['hits'] is None
    assert {entry['reason'] for entry in described.request(
        'POST', '/v2/cache/clean?dry_run=Yes', 200)['files']} == {
        'invalid', 'stalled'}
    described.request('POST', '/v2/cache/prune?dry_run=maybe', 400)
    described.request('PUT', pin_path, 400, {'note': 'a\nb'})

    described.request('POST', '/v2/cache/prune', 200)
    described.request('POST', '/v2/cache/clean?dry_run=off', 200)
    runs = described.request('GET', '/v2/cache/runs', 200)['runs']
    assert [(run['task'], run['removed']) for run in runs] == [
        ('prune', [untracked, tracked[1]]), ('clean', runs[1]['removed'])]
    assert described.request('GET', '/v2/cache/runs?task=clean&limit=1',
                             200)['runs'] == runs[1:]
    status = described.request('GET', '/v2/cache/status', 200)
    assert status['tasks']['prune']['last_run']['id'] == runs[0]['id']
    described.request('GET', '/v2/cache', 200)

    assert described.request('DELETE', pin_path, 204) is None
    described.request('DELETE', pin_path, 404)


def test_answers_conform_when_the_cache_and_state_are_gone(description,
                                                           tmp_path):
    blocker = tmp_path / 'not-a-directory'
    blocker.write_text('')
    described = Described(description, tmp_path,
                          maintenance__state_dir=str(blocker / 'state'))
    described.request('POST', '/v2/cache/clean', 200)
    run, = described.request('GET', '/v2/cache/runs', 200)['runs']
    assert 'id' not in run           # kept in memory only
    # Nothing was ever pinned there: reading finds no pins.
    described.request('GET', '/v2/cache/pins', 200)
    described.request('PUT', '/v2/cache/pins/%s' % caches.new_id(), 503)
    described.request('POST', '/v2/cache/prune?dry_run=1', 200)
    shutil.rmtree(described.cache.path)
    part = described.request('GET', '/v2/cache/status', 200)['cache']
    assert part['pins'] is None and 'size_bytes' not in part
    assert part['error'] and part['state_error']
    described.request('POST', '/v2/cache/prune?dry_run=1', 500)
