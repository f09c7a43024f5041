"""GET /v2/cache's body: json's own bytes, written at two thirds the cost.

The listing is the service's one large answer (20,000 images make 2.8 MB)
and json's encoder was half of the request: a dict made per image, then
its five keys encoded again for each. Here each record fills one template
instead. The text is byte for byte what ``util.encode_json`` writes for
the same document (the unit tests hold it to that), and where the
template cannot vouch for it, json writes it:

* an id that json would escape (a quote, a backslash, a control or
  non-ASCII character: only an odd record holds one);
* a number that is no JSON number (``inf``, ``nan``: the drivers never
  hand one out, and json refuses it, as every other answer does).
"""

from cache_maint.api import util

# The keys in ImageRecord's order, as json writes ImageRecord.to_dict(). A
# number's repr() is json's text for it; the drivers hand out only ints and
# floats (ImageRecord.mended, from_rows).
_RECORD = ('{"image_id": "%s", "last_accessed": %r, "last_modified": %r, '
           '"size": %r, "hits": %r}')


def encode(records, queued):
    """The JSON text of ``{"cached_images": [...], "queued_images": [...]}``.

    ``records`` are ImageRecords, ``queued`` image ids.
    """
    ids = ''.join([record.image_id for record in records])
    if ids.isascii() and ids.isprintable() and '"' not in ids \
            and '\\' not in ids:
        cached = ', '.join([_RECORD % record for record in records])
        # Outside the ids (checked above) letters appear only in a number
        # json would refuse; an id holding "inf" just takes the slow road.
        if 'inf' not in cached and 'nan' not in cached:
            return '{"cached_images": [%s], "queued_images": %s}' % (
                cached, util.encode_json(queued))
    return util.encode_json({'cached_images': [r.to_dict() for r in records],
                             'queued_images': queued})
