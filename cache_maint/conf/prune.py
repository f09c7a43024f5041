"""What prune aims for beyond ``image_cache_max_size``: the ``[prune]`` group.

glance-api.conf has no ``[prune]`` group, so these names cannot clash with
any of Glance's. With every option at its default, prune evicts exactly
Glance's victims: the least recently used images until the cache is no
larger than ``image_cache_max_size``.
"""

import re

from oslo_config import cfg
from oslo_config import types

GROUP = 'prune'

_SUFFIXES = {'': 1, 'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3,
             'T': 1024 ** 4}
_SIZE = re.compile(r'\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*\Z', re.IGNORECASE)
_PERCENT = re.compile(r'\s*(\d+(?:\.\d+)?)\s*%\s*\Z')


class Bytes(types.ConfigType):
    """A number of bytes, with an optional K, M, G or T suffix (1024s)."""

    def __init__(self, type_name='bytes'):
        super().__init__(type_name=type_name)

    def __call__(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ValueError('must not be negative')
            return value
        found = _SIZE.match(str(value))
        if found is None:
            raise ValueError('%r is not a number of bytes (such as 500M or '
                             '20G)' % (value,))
        return int(found.group(1)) * _SUFFIXES[found.group(2).upper()]

    def _formatter(self, value):
        return str(value)


class BytesOrPercent(Bytes):
    """Bytes as for Bytes, or a percent of the filesystem (``10%``).

    A percent is returned as a float below 1 (``10%`` is 0.1); bytes as an
    int.
    """

    def __init__(self):
        super().__init__(type_name='bytes or percent')

    def __call__(self, value):
        found = _PERCENT.match(str(value))
        if found is None:
            try:
                return super().__call__(value)
            except ValueError:
                raise ValueError('%r is neither a number of bytes (such as '
                                 '20G) nor a percent of the filesystem (such '
                                 'as 10%%)' % (value,))
        percent = float(found.group(1))
        if not 0 <= percent < 100:
            raise ValueError('%s%% is not a percent from 0 to under 100'
                             % found.group(1))
        return percent / 100

    def _formatter(self, value):
        if isinstance(value, float):
            return '%g%%' % (value * 100)
        return str(value)


prune_opts = [
    cfg.BoolOpt(
        'watch',
        default=True,
        help="""
Watch the image cache directory (inotify; where it is unavailable, a
listing every 2 s) and prune within ``react_delay`` seconds of the cache
crossing its high watermark or its image cap, or of free space falling
under ``min_free_space``, rather than only on the periodic timer. The
periodic prune still runs.
"""),
    cfg.FloatOpt(
        'react_delay',
        default=2.0,
        min=0,
        help="""
Seconds between the cache crossing a target and the prune that follows: a
burst of images landing makes one prune.
"""),
    cfg.IntOpt(
        'high_watermark',
        default=100,
        min=1,
        max=100,
        help="""
Percent of ``image_cache_max_size`` above which prune starts evicting. With
the low watermark below it, a cache that was pruned can grow again by the
difference before the next prune (kubelet uses 85 and 80).
"""),
    cfg.IntOpt(
        'low_watermark',
        default=100,
        min=1,
        max=100,
        help="""
Percent of ``image_cache_max_size`` down to which prune evicts once the high
watermark is crossed. It may not exceed ``high_watermark``.
"""),
    cfg.Opt(
        'min_free_space',
        type=BytesOrPercent(),
        default=0,
        help="""
Free space to keep on the filesystem of the image cache: a number of bytes
(suffixes K, M, G and T, powers of 1024) or a percent of the filesystem's
size (``10%``). Below it, prune evicts images, least recently used first,
until it is back, or the cache is empty; it may evict images younger than
``min_age`` to do so. 0 disables it.
"""),
    cfg.IntOpt(
        'max_images',
        default=0,
        min=0,
        help="""
Most images the cache may hold; above it, prune evicts the least recently
used until it does not. 0: no cap.
"""),
    cfg.IntOpt(
        'max_idle_time',
        default=0,
        min=0,
        help="""
Seconds after which an image that was not read is evicted, even under every
limit. Counted from the image's last access, but, in the service, never from
before the service started: a first start does not evict a cache that
nobody maintained. 0 disables it.
"""),
    cfg.Opt(
        'max_delete_rate',
        type=Bytes(),
        default=0,
        help="""
Most bytes a second that prune frees (suffixes K, M, G and T, powers of
1024), so that glance-api's reads from the same disk do not stall behind a
large prune. Prune frees half a second's worth at a time, and releases an
image larger than that in such steps (unlinked first, then truncated from
the end, only if no process has it open). A prune paced this way holds the
prune lock for longer: a prune of 50G at 100M takes over 8 minutes. 0: as
fast as the filesystem allows; otherwise at least 1M.
"""),
    cfg.StrOpt(
        'eviction_policy',
        default='lru',
        choices=[
            ('lru', "Least recently used first: Glance's own order, "
                    'exactly.'),
            ('lfuda', 'Least frequently used first, with dynamic ageing '
                      "(Squid's LFU-DA): images read often stay, whatever "
                      'their size, until the cache ages them out.'),
            ('adaptive', 'Recency weighed against frequency by what each '
                         'has cost: learns from the images glance-api had '
                         'to fetch again after a prune.'),
        ],
        help="""
Which recorded images prune evicts first. Files without a record always go
first, and pins, images in use, ``min_age`` and every target apply whatever
the policy. ``lfuda`` and ``adaptive`` read each image's hits with the
records prune reads anyway (with the xattr driver, one extended attribute
per image) and keep a memory of their own in ``[maintenance] state_dir``.
Replay your node's history with ``cache-maint-manage simulate`` before you
change it.
"""),
    cfg.IntOpt(
        'min_age',
        default=0,
        min=0,
        help="""
Seconds during which a newly cached image is never evicted (by the time its
file was written), except to restore ``min_free_space``. 0 disables it.
"""),
]


def register_opts(conf):
    conf.register_opts(prune_opts, group=GROUP)


def list_opts():
    return {GROUP: prune_opts}
