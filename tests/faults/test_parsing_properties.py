"""Properties of the id and header parsing, for any input (hypothesis).

An image id is accepted only if it is a canonical lower-case UUID: the
test's own oracle says so character by character, independently of the
regular expression in cache_maint.cachedir. Through the real WSGI stack,
any id segment and any ``x-image-cache-clear-target`` value is either
accepted or a JSON 400, never a 5xx, and a refused request changes
nothing. Under noauth2, only the exact token ``admin`` is an admin. The
listing's hand-written JSON is json's own, byte for byte.
"""

import string
import sys
import urllib.parse
import uuid

import hypothesis
from hypothesis import strategies as st
import pytest
import webob

from cache_maint.api import listing
from cache_maint.api import util
from cache_maint import cachedir
from cache_maint.drivers import base as drivers_base
from cache_maint import exception
from tests.faults import hostile
from tests.support import apps
from tests.support import caches
from tests.support import settings

HEX = frozenset('0123456789abcdef')
DASHES = (8, 13, 18, 23)

SETTINGS = hypothesis.settings(max_examples=100, deadline=None)


def canonical(name):
    """The oracle: 36 characters, dashes at 8, 13, 18, 23, the rest hex."""
    return (isinstance(name, str) and len(name) == 36
            and all((c == '-') if i in DASHES else (c in HEX)
                    for i, c in enumerate(name)))


uuids = st.uuids().map(str)


@st.composite
def near_uuids(draw):
    """A canonical id with one edit: the inputs most likely to slip by."""
    text = draw(uuids)
    position = draw(st.integers(0, len(text)))
    char = draw(st.characters() | st.sampled_from(
        '-/.\x00\n ABCDEFG' + string.hexdigits))
    edit = draw(st.sampled_from(['insert', 'replace', 'delete']))
    if edit == 'insert':
        return text[:position] + char + text[position:]
    if edit == 'replace':
        return text[:position] + char + text[position + 1:]
    return text[:position] + text[position + 1:]


candidates = (st.text() | uuids | uuids.map(str.upper) | near_uuids()
              | st.uuids().map(lambda u: u.hex) | st.uuids().map(
                  lambda u: '{%s}' % u))


@SETTINGS
@hypothesis.given(candidates)
def test_only_a_canonical_uuid_is_an_image_id(name):
    assert cachedir.is_image_id(name) == canonical(name)


@SETTINGS
@hypothesis.given(candidates)
def test_check_image_id_returns_it_or_raises_a_400(name):
    if canonical(name):
        assert cachedir.check_image_id(name) is name
    else:
        with pytest.raises(exception.InvalidImageId) as raised:
            cachedir.check_image_id(name)
        assert raised.value.code == 400
        # The answer never echoes the id back.
        assert raised.value.public_message == \
            exception.InvalidImageId.public_fmt


@SETTINGS
@hypothesis.given(uuids)
def test_every_canonical_uuid_is_accepted_and_round_trips(name):
    assert cachedir.is_image_id(name)
    assert str(uuid.UUID(name)) == name


@SETTINGS
@hypothesis.given(st.one_of(st.binary(), st.integers(), st.none(),
                            st.lists(uuids, max_size=1),
                            uuids.map(str.encode)))
def test_what_is_not_text_is_never_an_image_id(value):
    assert not cachedir.is_image_id(value)


# GET /v2/cache writes its own JSON (cache_maint.api.listing): for any
# records, the very bytes json writes, or json's own refusal.

numbers = (st.floats() | st.integers(min_value=-2 ** 70, max_value=2 ** 70))
records = st.builds(drivers_base.ImageRecord, candidates, numbers, numbers,
                    numbers, numbers)


@SETTINGS
@hypothesis.given(st.lists(records, max_size=8), st.lists(candidates,
                                                          max_size=3))
def test_the_listing_is_exactly_what_json_writes(cached, queued):
    document = {'cached_images': [r.to_dict() for r in cached],
                'queued_images': queued}
    try:
        expected = util.encode_json(document)
    except ValueError:
        with pytest.raises(ValueError):
            listing.encode(cached, queued)
    else:
        assert listing.encode(cached, queued) == expected


# Through the real WSGI application, in-process.

class App:
    """deploy.loadapp around a real sqlite cache, noauth2."""

    def __init__(self, path):
        self.cache = caches.SqliteCache(path)
        conf = settings.make_conf(self.cache.path,
                                  api__auth_strategy='noauth2')
        self.app = apps.make_app(conf)

    def request(self, method, path, headers=None):
        req = webob.Request.blank(path, method=method)
        req.headers['X-Auth-Token'] = 'admin'
        req.headers.update(headers or {})
        return req.get_response(self.app)

    def fill(self):
        """One cached and one queued image, unless they are there."""
        if not self.cache.images():
            self.cache.add_image()
        if not self.cache.listdir('queue'):
            self.cache.queue()


@pytest.fixture(scope='module')
def app(tmp_path_factory):
    return App(tmp_path_factory.mktemp('properties') / 'cache')


def assert_json_400(response, app):
    assert response.status_int == 400, response
    assert response.content_type == 'application/json'
    assert response.json['error']['code'] == 400
    assert app.cache.path not in response.text
    assert 'Traceback' not in response.text


def _segment(name):
    """``name`` as one percent-encoded path segment (its UTF-8 bytes)."""
    return urllib.parse.quote(name.encode('utf-8', 'surrogatepass'),
                              safe='')


ID_ROUTES = [('PUT', '/v2/cache/%s'), ('DELETE', '/v2/cache/%s'),
             ('GET', '/v2/cache/nodes/%s'), ('GET', '/v2/images/%s')]


def assert_refused(response, app, name, before):
    """A malformed id is a JSON 400 that changes nothing.

    webob's test requests decode %2F into a slash (cheroot keeps it), so
    an id with a slash is two segments here: no route (404) or another
    route's method (405); still a JSON error that changes nothing.
    """
    if '/' in name or name in ('clean', 'prune', 'runs'):
        assert response.status_int in (400, 404, 405), response
        assert response.json['error']['code'] == response.status_int
    else:
        assert_json_400(response, app)
    assert app.cache.path not in response.text
    assert hostile.snapshot(app.cache) == before


@SETTINGS
@hypothesis.given(name=candidates.filter(lambda n: n != ''),
                  route=st.sampled_from(ID_ROUTES))
def test_any_id_segment_is_accepted_or_a_400(app, name, route):
    """One path segment: a canonical id is served, anything else is a 400.

    A canonical id queued, deleted or looked up is a 2xx, a 404 (not
    cached) or a 409 (no centralized_db), never a 5xx.
    """
    app.fill()
    method, template = route
    before = hostile.snapshot(app.cache)

    response = app.request(method, template % _segment(name))

    if canonical(name):
        assert response.status_int in (200, 202, 204, 404, 409), response
    else:
        assert_refused(response, app, name, before)


@SETTINGS
@hypothesis.given(raw=st.binary(min_size=1, max_size=40),
                  route=st.sampled_from(ID_ROUTES))
def test_any_bytes_in_an_id_segment_are_never_a_5xx(app, raw, route):
    """Percent-encoded bytes, UTF-8 or not: a 400 unless a canonical id."""
    app.fill()
    method, template = route
    before = hostile.snapshot(app.cache)

    response = app.request(method,
                           template % urllib.parse.quote(raw, safe=''))

    name = raw.decode('latin-1')
    if canonical(name):
        assert response.status_int in (200, 202, 204, 404, 409), response
    else:
        assert_refused(response, app, name, before)


ACCEPTED_TARGETS = {'': ('cache', 'queue'), 'both': ('cache', 'queue'),
                    'cache': ('cache',), 'queue': ('queue',)}

NEAR_SPACE = ['', ' ', '\t', '\xa0', '\x85', '\x00', '\x0b', '\x0c',
              '\x1c', 's']


@st.composite
def near_targets(draw):
    """A known target in any case, perhaps padded with near-whitespace."""
    word = draw(st.sampled_from(sorted(ACCEPTED_TARGETS)))
    word = ''.join(c.upper() if draw(st.booleans()) else c for c in word)
    return (draw(st.sampled_from(NEAR_SPACE)) + word
            + draw(st.sampled_from(NEAR_SPACE)))


targets = st.text(st.characters(codec='latin-1'), max_size=12) | \
    near_targets()


@SETTINGS
@hypothesis.given(targets)
def test_the_clear_target_is_parsed_exactly(app, value):
    """Case aside and HTTP whitespace trimmed, it is one of four words.

    Anything else is a 400 and clears nothing; a known target clears
    exactly what it names.
    """
    app.fill()
    images_before = app.cache.images()
    queue_before = app.cache.listdir('queue')
    before = hostile.snapshot(app.cache)

    response = app.request('DELETE', '/v2/cache',
                           {'x-image-cache-clear-target': value})

    cleared = ACCEPTED_TARGETS.get(value.strip(' \t').lower())
    if cleared is None:
        assert_json_400(response, app)
        assert hostile.snapshot(app.cache) == before
        return
    assert response.status_int == 204, response
    assert response.body == b''
    assert app.cache.images() == (set() if 'cache' in cleared
                                  else images_before)
    assert app.cache.listdir('queue') == (set() if 'queue' in cleared
                                          else queue_before)


# noauth2: "admin" next to any whitespace, Unicode's included, is no admin.

WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1)
              if chr(c).isspace() or chr(c) in '\u200b\u2060\ufeff']


@st.composite
def near_admin_tokens(draw):
    """``admin`` with whitespace, or one other character, around it."""
    around = st.sampled_from(WHITESPACE) | st.characters()
    before = draw(st.text(around, max_size=2))
    after = draw(st.text(around, max_size=2))
    hypothesis.assume(before or after)
    return before + 'admin' + after


def _answer_to(app, token):
    req = webob.Request.blank('/v2/cache/runs')
    req.headers['X-Auth-Token'] = token
    return req.get_response(app.app)


def test_every_unicode_whitespace_was_tried():
    assert len(WHITESPACE) > 25 and '\x0b' in WHITESPACE
    assert '\xa0' in WHITESPACE and '\u3000' in WHITESPACE


@pytest.mark.parametrize('space', WHITESPACE,
                         ids=lambda c: 'U+%04X' % ord(c))
def test_admin_next_to_any_whitespace_is_no_admin(app, space):
    for token in ('admin' + space, space + 'admin', 'ad' + space + 'min'):
        response = _answer_to(app, token)
        if space in ' \t' and token.strip(' \t') == 'admin':
            # HTTP's own whitespace around a header value is not the value.
            assert response.status_int == 200, (token, response)
        else:
            assert response.status_int in (401, 403), (token, response)


@SETTINGS
@hypothesis.given(near_admin_tokens())
def test_only_the_exact_token_is_an_admin(app, token):
    response = _answer_to(app, token)
    if token.strip(' \t') == 'admin':
        assert response.status_int == 200
    else:
        assert response.status_int in (401, 403), (repr(token), response)
