# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Render an OpenAPI 3.0 file as the API reference.

``.. openapi-reference:: ../../../api-ref/openapi.yaml`` (a path relative to
the document) writes, for each tag of the file, one section per route and
method: its summary and description, the policy that guards it (the
``x-openstack-policy`` extension) or that it is public, its parameters, its
request body, and its responses with their status codes and body fields;
then one section per schema of ``components``, which the routes link to.

The file is read with PyYAML and turned into reStructuredText, parsed in
place: the descriptions in the file are reStructuredText already.
"""

import http

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils import statemachine
from sphinx.util import nodes as sphinx_nodes
import yaml

METHODS = ('get', 'put', 'post', 'delete', 'patch', 'head', 'options')
SCHEMAS = '#/components/schemas/'
#: The media type of every body, unless a route says otherwise.
JSON = 'application/json'

#: Section adornments below the document's own title and sections.
TAG_LEVEL, ROUTE_LEVEL = '-', '~'


def _label(name):
    return 'api-schema-%s' % name.lower()


def _one_line(text):
    """A description as one paragraph: cells of a table hold one."""
    return ' '.join((text or '').split())


def _title(text, adornment):
    return [text, adornment * len(text), '']


class Spec(object):
    """The parsed file and what its ``$ref`` pointers lead to."""

    def __init__(self, document):
        self.document = document

    def resolve(self, node):
        """``node`` with its ``$ref`` (and the ``$ref``'s own) followed."""
        while isinstance(node, dict) and '$ref' in node:
            node = self.pointer(node['$ref'])
        return node

    def pointer(self, ref):
        if not ref.startswith('#/'):
            raise ValueError('only local $ref pointers are supported: %s'
                             % ref)
        node = self.document
        for part in ref[2:].split('/'):
            part = part.replace('~1', '/').replace('~0', '~')
            node = node[part]
        return node

    def describe(self, schema):
        """A schema's type in a few words, with links to named schemas."""
        if '$ref' in schema:
            ref = schema['$ref']
            name = ref[len(SCHEMAS):] if ref.startswith(SCHEMAS) else ''
            if name and '/' not in name:
                return ':ref:`%s <%s>`%s' % (name, _label(name),
                                             _nullable(schema))
            return self.describe(self.resolve(schema))
        for key in ('oneOf', 'anyOf'):
            if key in schema:
                return ' or '.join(self.describe(s)
                                   for s in schema[key]) + _nullable(schema)
        if 'allOf' in schema:
            return ' and '.join(self.describe(s)
                                for s in schema['allOf']) + _nullable(schema)
        kind = schema.get('type', 'any')
        if kind == 'array':
            words = 'array of %s' % self.describe(schema.get('items', {}))
        else:
            words = kind
            if schema.get('format'):
                words += ' (%s)' % schema['format']
        if 'enum' in schema:
            words += ', one of %s' % ', '.join(
                '``%s``' % (_json(value) or '""') for value in schema['enum'])
        words += _bounds(schema)
        return words + _nullable(schema)

    def fields(self, schema, prefix=''):
        """(name, type, required, description) rows of an object's fields.

        Objects and arrays of objects written in place are opened; a named
        schema is linked to, and has its own section.
        """
        if '$ref' in schema and not self._named(schema):
            schema = self.resolve(schema)
        if '$ref' in schema:
            return []
        if schema.get('type') == 'array':
            items = schema.get('items', {})
            if '$ref' in items and self._named(items):
                return []
            return self.fields(items, prefix + '[]')
        rows = []
        required = set(schema.get('required', ()))
        for name, sub in schema.get('properties', {}).items():
            full = '%s.%s' % (prefix, name) if prefix else name
            shown = sub if self._named(sub) else self.resolve(sub)
            description = shown.get('description') or sub.get('description')
            rows.append((full, self.describe(sub),
                         'yes' if name in required else 'no',
                         _one_line(description)))
            if not self._named(sub):
                rows.extend(self.fields(shown, full))
        return rows

    @staticmethod
    def _named(schema):
        ref = schema.get('$ref', '')
        return ref.startswith(SCHEMAS) and '/' not in ref[len(SCHEMAS):]


def _json(value):
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if value is None:
        return 'null'
    return str(value)


def _nullable(schema):
    return ', or null' if schema.get('nullable') else ''


def _bounds(schema):
    words = []
    if 'minimum' in schema and 'maximum' in schema:
        words.append('%s to %s' % (schema['minimum'], schema['maximum']))
    elif 'minimum' in schema:
        words.append('at least %s' % schema['minimum'])
    elif 'maximum' in schema:
        words.append('at most %s' % schema['maximum'])
    if 'maxLength' in schema:
        words.append('at most %s characters' % schema['maxLength'])
    if 'maxItems' in schema:
        words.append('at most %s items' % schema['maxItems'])
    if 'maxProperties' in schema and schema['maxProperties'] == 0:
        words.append('empty')
    return ''.join(', %s' % word for word in words)


def _table(header, rows, widths):
    """A list-table, one row per tuple."""
    lines = ['.. list-table::', '   :header-rows: 1',
             '   :widths: %s' % ' '.join(str(w) for w in widths), '']
    for row in [header] + list(rows):
        first = True
        for cell in row:
            lead = '   * - ' if first else '     - '
            lines.append(lead + (cell or ''))
            first = False
    return lines + ['']


def _status(code):
    try:
        return '%s %s' % (code, http.HTTPStatus(int(code)).phrase)
    except ValueError:
        return code


class Renderer(object):
    """The reStructuredText of the reference."""

    def __init__(self, spec):
        self.spec = spec
        self.doc = spec.document

    def lines(self):
        out = []
        tags = [tag['name'] for tag in self.doc.get('tags', ())]
        by_tag = dict((name, []) for name in tags)
        for path, item in self.doc.get('paths', {}).items():
            for method in METHODS:
                if method in item:
                    operation = item[method]
                    tag = (operation.get('tags') or ['other'])[0]
                    by_tag.setdefault(tag, []).append((path, method, item))
        descriptions = dict((tag['name'], tag.get('description', ''))
                            for tag in self.doc.get('tags', ()))
        for tag, operations in by_tag.items():
            if not operations:
                continue
            out += _title(tag.capitalize(), TAG_LEVEL)
            if descriptions.get(tag):
                out += descriptions[tag].strip().splitlines() + ['']
            for path, method, item in operations:
                out += self.operation(path, method, item)
        out += self.schemas()
        return out

    def operation(self, path, method, item):
        operation = item[method]
        out = _title('%s %s' % (method.upper(), path), ROUTE_LEVEL)
        if operation.get('summary'):
            out += ['**%s**' % operation['summary'].strip(), '']
        if operation.get('description'):
            out += operation['description'].strip().splitlines() + ['']
        security = operation.get('security', self.doc.get('security'))
        if operation.get('x-openstack-policy'):
            out += ['Policy: ``%s``.' % operation['x-openstack-policy'], '']
        elif security == []:
            out += ['Public: no token needed.', '']
        parameters = [self.spec.resolve(p) for p in
                      item.get('parameters', []) +
                      operation.get('parameters', [])]
        if parameters:
            out += ['Parameters:', '']
            out += _table(
                ('Name', 'In', 'Type', 'Description'),
                [('``%s``' % p['name'],
                  p['in'] + ('' if p.get('required') else ', optional'),
                  self.spec.describe(p.get('schema', {})),
                  _one_line(p.get('description')))
                 for p in parameters],
                (20, 12, 22, 46))
        if operation.get('requestBody'):
            out += self.request_body(operation['requestBody'])
        out += self.responses(operation.get('responses', {}))
        return out

    def request_body(self, body):
        body = self.spec.resolve(body)
        out = ['Request body%s: %s' % (
            '' if body.get('required') else ' (optional)',
            _one_line(body.get('description')) or ''), '']
        for media, content in body.get('content', {}).items():
            schema = content.get('schema', {})
            kind = self.spec.describe(schema)
            out += ['%s%s.' % ('' if media == JSON else '``%s``: ' % media,
                               kind[0].upper() + kind[1:]), '']
            rows = self.spec.fields(schema)
            if rows:
                out += _table(('Field', 'Type', 'Required', 'Description'),
                              rows, (24, 24, 10, 42))
        return out

    def responses(self, responses):
        out = ['Responses:', '']
        rows, bodies = [], []
        for code, response in responses.items():
            shown = self.spec.resolve(response)
            body = ''
            for media, content in shown.get('content', {}).items():
                schema = content.get('schema', {})
                body = self.spec.describe(schema)
                if media != JSON:
                    body = '``%s``: %s' % (media, body)
                fields = self.spec.fields(schema)
                if fields:
                    bodies.append((code, fields))
            rows.append((_status(str(code)), _one_line(
                shown.get('description')), body or 'no body'))
        out += _table(('Status', 'Meaning', 'Body'), rows, (18, 52, 30))
        for code, fields in bodies:
            out += ['Body of the %s response:' % _status(str(code)), '']
            out += _table(('Field', 'Type', 'Required', 'Description'),
                          fields, (24, 24, 10, 42))
        return out

    def schemas(self):
        schemas = self.doc.get('components', {}).get('schemas', {})
        if not schemas:
            return []
        out = _title('Schemas', TAG_LEVEL)
        out += ['The bodies named in the responses above.', '']
        for name, schema in schemas.items():
            out += ['.. _%s:' % _label(name), '']
            out += _title(name, ROUTE_LEVEL)
            if schema.get('description'):
                out += schema['description'].strip().splitlines() + ['']
            kind = self.spec.describe(schema)
            if kind != 'object':
                out += ['%s%s.' % (kind[0].upper(), kind[1:]), '']
            rows = self.spec.fields(schema)
            if rows:
                out += _table(('Field', 'Type', 'Required', 'Description'),
                              rows, (24, 24, 10, 42))
        return out


class OpenAPIReference(Directive):
    """``.. openapi-reference:: PATH``: the reference of an OpenAPI file."""

    required_arguments = 1
    has_content = False

    def run(self):
        env = self.state.document.settings.env
        relative, absolute = env.relfn2path(self.arguments[0])
        env.note_dependency(relative)
        with open(absolute) as f:
            document = yaml.safe_load(f)
        source = '<%s>' % self.arguments[0]
        content = statemachine.StringList()
        for number, line in enumerate(Renderer(Spec(document)).lines()):
            content.append(line, source, number)
        node = nodes.section()
        node.document = self.state.document
        sphinx_nodes.nested_parse_with_titles(self.state, content, node)
        return node.children


def setup(app):
    app.add_directive('openapi-reference', OpenAPIReference)
    return {'version': '1.0', 'parallel_read_safe': True,
            'parallel_write_safe': True}
