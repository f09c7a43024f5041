"""Small HTTP helpers shared by the handlers and the middleware."""

import json

import webob
import webob.exc

#: Where the context middleware leaves the request's RequestContext.
CONTEXT_KEY = 'cache_maint.context'
#: The address the connection came from, whatever proxy headers claim.
PEER_KEY = 'cache_maint.peer'


def context(req):
    """The RequestContext of an authenticated request."""
    return req.environ[CONTEXT_KEY]


#: Most bytes of what a client sent that a log line quotes.
LOGGED_BYTES = 200


def loggable(data, limit=LOGGED_BYTES):
    """What a client sent, fit for a log line: printable, short, one line.

    Control characters (a percent-decoded newline in a path would forge a
    log line) are escaped, and anything past ``limit`` bytes is counted,
    not written.
    """
    if isinstance(data, str):
        # A WSGI string holds the request's bytes as latin-1 characters.
        try:
            data = data.encode('latin-1')
        except UnicodeEncodeError:
            data = data.encode('utf-8', 'surrogateescape')
    shown = data[:limit].decode('ascii', 'backslashreplace')
    shown = ''.join(c if c.isprintable() else '\\x%02x' % ord(c)
                    for c in shown)
    if len(data) > limit:
        shown += '...(%d more bytes)' % (len(data) - limit)
    return shown


#: Bodies are plain trees of dicts and lists built per request, never
#: cyclic: skipping the encoder's cycle check saves a tenth of the time of
#: the largest answer, GET /v2/cache. No Infinity or NaN ever goes out:
#: strict JSON parsers refuse them (the drivers read odd values as 0).
encode_json = json.JSONEncoder(check_circular=False, allow_nan=False).encode


def json_response(status, body, headers=None):
    """A JSON response with ``body`` serialized."""
    return json_text_response(status, encode_json(body), headers)


def json_text_response(status, text, headers=None):
    """A JSON response whose body is already serialized as ``text``."""
    response = webob.Response(status=status, content_type='application/json',
                              charset='utf-8')
    response.headers.extend(headers or [])
    response.body = text.encode('utf-8')
    return response


def error_response(status, message, headers=None):
    """A JSON error with the same shape keystonemiddleware uses."""
    response = json_response(status, None, headers)
    response.text = json.dumps({'error': {
        'code': response.status_code,
        'title': response.status.split(' ', 1)[1],
        'message': message}})
    return response


def read_empty_body(req):
    """Accept a request that must not carry data: no body, or ``{}``.

    Clients send these POSTs bodyless, some with ``Content-Type:
    application/octet-stream``; the spec shows an empty JSON object.
    Anything else is refused rather than silently ignored.
    """
    body = req.body
    if not body.strip():
        return
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise webob.exc.HTTPBadRequest(
            'This request takes no body, or an empty JSON object {}.')
    if data != {}:
        raise webob.exc.HTTPBadRequest(
            'This request takes no parameters: send no body, or {}.')


def _param(req, name):
    """The one value of query parameter ``name``, or None; 400 if twice."""
    try:
        values = req.GET.getall(name)
    except UnicodeDecodeError:
        raise webob.exc.HTTPBadRequest(
            'The query string is not valid percent-encoded UTF-8.')
    if len(values) > 1:
        raise webob.exc.HTTPBadRequest(
            'The query parameter %s is given more than once.' % name)
    return values[0] if values else None


_TRUE = ('true', '1', 'yes', 'on')
_FALSE = ('false', '0', 'no', 'off')


def only_params(req, names):
    """Refuse a query parameter not in ``names`` with a 400.

    Where a parameter changes what a request does, a misspelt one must
    not be ignored: ``?dry-run=true`` would be a real prune.
    """
    try:
        unknown = sorted(set(req.GET) - set(names))
    except UnicodeDecodeError:
        raise webob.exc.HTTPBadRequest(
            'The query string is not valid percent-encoded UTF-8.')
    if unknown:
        raise webob.exc.HTTPBadRequest(
            'Unknown query parameter %s; this request takes %s.'
            % (loggable(unknown[0], 40),
               ', '.join(sorted(names)) or 'none'))


def bool_param(req, name):
    """A boolean query parameter (absent: False); 400 if not one.

    The value must be one of the words, exactly (any case): an empty or
    padded one is refused, never read as false.
    """
    value = _param(req, name)
    if value is None:
        return False
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise webob.exc.HTTPBadRequest(
        'The query parameter %s must be true or false, not %s.'
        % (name, loggable(value, 40)))


def choice_param(req, name, choices):
    """A query parameter that is one of ``choices``, or None if absent."""
    value = _param(req, name)
    if value is None or value in choices:
        return value
    raise webob.exc.HTTPBadRequest(
        'The query parameter %s must be one of %s.'
        % (name, ', '.join(choices)))


def int_param(req, name, low, high, default):
    """An integer query parameter within [low, high]; 400 otherwise."""
    value = _param(req, name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 9 \
            or not low <= int(value) <= high:
        raise webob.exc.HTTPBadRequest(
            'The query parameter %s must be an integer from %d to %d.'
            % (name, low, high))
    return int(value)


def read_json_object(req, fields):
    """The request's JSON object body, ``{}`` if there is none.

    ``fields`` maps the names it may hold to their types; any other name,
    or a value of another type, is a 400.
    """
    body = req.body
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise webob.exc.HTTPBadRequest('The request body is not valid JSON.')
    if not isinstance(data, dict):
        raise webob.exc.HTTPBadRequest(
            'The request body must be a JSON object.')
    for key, value in data.items():
        if key not in fields:
            raise webob.exc.HTTPBadRequest(
                'Unknown field %s in the request body; it may hold: %s.'
                % (loggable(key, 40), ', '.join(sorted(fields))))
        if not isinstance(value, fields[key]):
            raise webob.exc.HTTPBadRequest(
                'The field %s must be a %s.' % (key, fields[key].__name__))
    return data
