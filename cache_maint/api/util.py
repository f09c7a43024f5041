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
