"""The metrics as a scraper reads them: one HTTP request, the exposition
parsed with prometheus_client's own parser.
"""

import urllib.error
import urllib.request

from prometheus_client import parser

STATES = ('cached', 'incomplete', 'invalid', 'queued')


def request(url, method='GET', token=None):
    """(status, headers, body) of one request; an error status is an answer."""
    sent = urllib.request.Request(url, method=method)
    if token is not None:
        sent.add_header('X-Auth-Token', token)
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def parse(text):
    """{sample name: {frozenset of label items: value}} of an exposition."""
    if isinstance(text, bytes):
        text = text.decode('utf-8')
    found = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[
                frozenset(sample.labels.items())] = sample.value
    return found


def value(found, name, **labels):
    """One sample's value; None if it is not exposed."""
    return found.get(name, {}).get(frozenset(labels.items()))


def usage(found):
    """{state: (files, bytes)} as exposed: what ``usage_by_state`` counts."""
    return {state: (value(found, 'glance_cache_files', state=state),
                    value(found, 'glance_cache_size_bytes', state=state))
            for state in STATES}
