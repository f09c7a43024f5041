"""GET /v2/cache's body and the records it is made of.

``listing.encode`` writes the text itself; it must be exactly what json
writes for the same document, whatever the records hold, or json's own
refusal where json refuses. ``ImageRecord.from_rows`` decides which rows
go out as stored and which are mended.
"""

import json
import math
import random
import uuid

import pytest

from cache_maint.api import listing
from cache_maint.api import util
from cache_maint.drivers import base as drivers_base

Record = drivers_base.ImageRecord


def json_encoding(records, queued):
    """The oracle: json's encoder on the document of dicts."""
    return util.encode_json({'cached_images': [r.to_dict() for r in records],
                             'queued_images': queued})


def assert_as_json(records, queued=()):
    queued = list(queued)
    try:
        expected = json_encoding(records, queued)
    except ValueError:
        with pytest.raises(ValueError):
            listing.encode(records, queued)
        return
    assert listing.encode(records, queued) == expected
    json.loads(expected)


def some_records(count, seed):
    rnd = random.Random(seed)
    return [Record(str(uuid.UUID(int=rnd.getrandbits(128))),
                   rnd.uniform(0, 2e9), rnd.choice([0.0, rnd.random() * 1e9]),
                   rnd.randrange(2 ** 63), rnd.randrange(10 ** rnd.randrange(
                       1, 19)))
            for _ in range(count)]


@pytest.mark.parametrize('seed', range(5))
def test_canonical_records_are_written_as_json_writes_them(seed):
    assert_as_json(some_records(200, seed),
                   [str(uuid.UUID(int=seed))] * seed)


def test_an_empty_cache_and_queue():
    assert_as_json([])
    assert listing.encode([], []) == (
        '{"cached_images": [], "queued_images": []}')


ODD_IDS = ['', 'x"y', 'back\\slash', 'new\nline', 'del\x7f', 'caf\xe9',
           '\u2028', 'snow\u2603man', 'surrogate\ud800', 'info', 'nano',
           '</script>', 'a' * 1000]


@pytest.mark.parametrize('odd_id', ODD_IDS)
def test_an_id_json_would_escape_is_escaped(odd_id):
    records = some_records(3, 7) + [Record(odd_id, 1.5, 2.5, 3, 4)]
    assert_as_json(sorted(records))


ODD_NUMBERS = [0, 0.0, -0.0, 1e-300, 1e300, 2 ** 63 - 1, 2 ** 64, 5e-324,
               1.7976931348623157e308, 0.1 + 0.2]


@pytest.mark.parametrize('number', ODD_NUMBERS)
def test_any_number_is_written_as_json_writes_it(number):
    assert_as_json([Record('a', number, number, number, number)])


@pytest.mark.parametrize('number', [math.inf, -math.inf, math.nan])
def test_what_json_refuses_is_refused(number):
    for at in range(1, 5):
        values = ['a', 1.0, 2.0, 3, 4]
        values[at] = number
        assert_as_json(some_records(2, at) + [Record(*values)])


def test_queued_ids_are_json_encoded():
    assert_as_json(some_records(2, 1), ['q"1', 'caf\xe9'])


def test_sound_rows_become_records_as_they_are():
    rows = [('a', 1.5, 2.5, 3, 4), ('b', 0.0, 253402300799.0, 0, 2 ** 63 - 1)]
    records, odd = Record.from_rows(rows)
    assert records == [Record(*row) for row in rows]
    assert odd == []


@pytest.mark.parametrize('values, mended', [
    ((None, None, None, None), (0.0, 0.0, 0, 0)),
    (('1', b'2', 3.5, -4), (0.0, 0.0, 0, 0)),
    ((math.inf, math.nan, 3.0, 2 ** 63 + 1.0), (0.0, 0.0, 3, 0)),
    ((-1.0, 253402300800.0, 1, 1), (0.0, 0.0, 1, 1)),
])
def test_odd_rows_are_mended_and_returned_as_stored(values, mended):
    row = ('a',) + values
    records, odd = Record.from_rows([row])
    assert records == [Record('a', *mended)]
    assert odd == [row]


def test_a_row_whose_id_is_no_text_is_left_out_but_returned():
    row = (b'a', 1.0, 2.0, 3, 4)
    records, odd = Record.from_rows([row, ('b', 1.0, 2.0, 3, 4)])
    assert [r.image_id for r in records] == ['b']
    assert odd == [row]
