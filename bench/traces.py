"""Synthetic request traces for the image cache of ONE glance-api node.

    python -m bench.traces --regime stable --seed 1 [--days N] [--per-day N]
                           [--out FILE]

Used to compare cache eviction policies by byte miss ratio. Each request is
a ``GET /v2/images/{id}/file`` that reaches this node because a VM boot
needs the image. The output is a CSV with the header
``timestamp,image_id,size``: epoch seconds (3 decimals), a UUID-shaped id
and the image size in bytes, sorted by timestamp. An id always has the same
size. The trace depends only on (parameters, seed): every draw comes from
one ``random.Random(seed)``.

Regimes (``REGIMES``, presets of ``Params``): ``stable`` (stationary
popularity, little churn, few one-offs), ``churn`` (families get a new
version every few days), ``oneoff`` (40 % of requests boot private images
seen once) and ``mixed`` (moderate everything; the ``Params`` defaults).

Modelling assumptions
---------------------
Everything below is an ASSUMPTION chosen to be plausible, not a measurement
of any real deployment. Sources are given where a number leans on one;
where none is given, the number is our guess.

Requests and the node

A1. Only requests that reach this glance-api node are modelled. Nova's own
    per-compute-node image cache is not: we assume the stream is already
    what is left after it (a boot on a compute node that lacks the image).
    Real traces would therefore show fewer back-to-back repeats of the
    most popular images than a raw boot log.
A2. One request per instance boot; no retries, partial or ranged
    downloads, and no requests from anything but boots (no image uploads,
    no ``glance-cache-prefetcher``).
A3. The node's clock is UTC, and the trace starts at ``Params.start``
    (2026-01-01 00:00 UTC, a Thursday); the diurnal and weekly cycles are
    in UTC.

Catalogue and popularity

A4. Images are grouped in families: one family is one logical image
    ("ubuntu-24.04", "customer X's golden image"), of which one version is
    current at a time. Popularity belongs to the family, not to the id.
A5. Shared families are "facility" images (operator-published) or "user"
    images (uploaded by tenants, booted repeatedly). Among requests that
    are not one-offs, 55.6 % go to facility and 44.4 % to user families,
    the split of the Emulab trace (Atkinson, Wong, Ricci, NSDI'14: four
    years, 279,972 requests, 714 unique images). Emulab reports the split
    over all requests; applying it to the non-one-off part is our choice.
A6. Facility popularity decays exponentially with rank (weight
    ``exp(-rank / facility_scale)``) and user popularity is Zipf-like
    (weight ``(rank + 1) ** -user_zipf``), following Emulab's description
    of facility popularity as "exponential" and user images as
    "heavy-tailed". The defaults (scale 5 over 30 facility families, Zipf
    1.0 over 200 user families) keep the most popular id under 13 % of
    requests, as Emulab observed; the family counts are our guess for one
    node over a few weeks (Emulab saw 714 images in four years).
A7. Family popularity itself is stationary over the trace: no family is
    born or dies except through versions (A8) and one-offs (A10).

Version churn

A8. Each shared family publishes a new version (a new id) every
    ``period`` seconds, where ``period`` is the regime's mean for its kind
    times a per-family factor uniform in [0.5, 1.5), with a uniformly
    random phase. This models monthly/weekly distro refreshes and
    security-patched images replacing old ones; the strict periodicity per
    family is a simplification. A period of ``math.inf`` means the family
    never changes during the trace.
A9. A new version's size is the previous one's times a factor uniform in
    [0.9, 1.1] (a patched image is about as big as the one it replaces).
    Requests go to the newest version, except a share
    ``prev_share * exp(-age / prev_decay)`` that still boots the previous
    version (pinned templates, Heat stacks, cached references), ``age``
    being the time since the new version appeared. Versions older than
    the previous one get no requests.

One-off images

A10. A share ``oneoff_share`` of requests boots a private one-off image
     (a snapshot or user upload booted once): a brand-new id requested
     once, and with probability ``oneoff_repeat`` a second time, between
     ``oneoff_repeat_hours`` later (uniform), e.g. a rebuild after a
     failed boot. The shares per regime are guesses; the brief's "common"
     is the only source.

Sizes

A11. Sizes are a mixture of lognormals (``size_mix``: weight, median in
     GB of 10**9 bytes, sigma): small cloud images around 0.7 GB
     (~0.5-1 GB), medium around 5.5 GB (~3-10 GB) and large Windows-like
     images around 24.5 GB (~15-40 GB), clamped to [50 MB, 80 GB]. The
     large mode leans on Azure's community images (Razavi et al.,
     Squirrel, HPDC'14: 600+ images, 16.4 TB, ~27 GB each on average,
     Windows-heavy); the weights (55/30/15 %) are our guess for a private
     cloud, where small Linux cloud images dominate. Every kind of image
     (facility, user, one-off) draws from the same mixture.

Arrivals

A12. Deployments arrive as a non-homogeneous Poisson process. The rate
     follows a daily cosine (peak at ``peak_hour`` UTC, amplitude
     ``diurnal_amplitude``: by default 1.6x the mean at the peak and 0.4x
     at night) times a weekly factor (weekend days at ``weekend_factor``
     of a weekday), normalised so that the mean over a week is
     ``per_day`` requests a day.
A13. A deployment of a shared image boots ``k`` instances on this node,
     ``P(k) ~ k ** -burst_alpha`` for ``k`` in 1..``burst_max`` (mean
     ~2.1 with the defaults): deployments come in bursts of several VMs
     of one deployment within seconds or minutes (Azure Public Dataset
     V2), but the number of instances from one image at a given time is
     relatively small (Peng et al., VDN, INFOCOM'12), and only part of a
     deployment lands on this node. The instances after the first follow
     exponential gaps of mean ``burst_gap_seconds``, all within
     ``burst_span_seconds`` of the first. One-off images are not burst.
A14. Requests falling after the end of the trace (late burst members,
     late one-off repeats) are dropped.
"""

import argparse
import bisect
import csv
import dataclasses
import math
import random
import sys
import uuid

DAY = 86400.0
HOUR = 3600.0
GB = 10 ** 9
GIB = 2 ** 30

#: Bounds of every image size, bytes (A11).
MIN_SIZE = 50 * 10 ** 6
MAX_SIZE = 80 * GB

HEADER = ('timestamp', 'image_id', 'size')

#: 1970-01-01 was a Thursday: weekday 3 with Monday as 0.
_EPOCH_WEEKDAY = 3


@dataclasses.dataclass(frozen=True)
class Params:
    """Everything a trace depends on besides the seed (see A1-A14).

    The defaults are the ``mixed`` regime.
    """

    #: Length of the trace, days, and mean requests per day (A12).
    days: float = 28.0
    per_day: float = 1500.0
    #: Epoch seconds of the first possible request (A3).
    start: float = 1767225600.0

    #: Shared families and their popularity (A5, A6).
    facility_families: int = 30
    facility_scale: float = 5.0
    user_families: int = 200
    user_zipf: float = 1.0
    facility_share: float = 0.556

    #: Mean days between versions of a family; math.inf: never (A8).
    facility_period_days: float = 14.0
    user_period_days: float = 30.0
    #: Share still booting the previous version, and its decay (A9).
    prev_share: float = 0.2
    prev_decay_days: float = 1.5

    #: One-off private images (A10).
    oneoff_share: float = 0.15
    oneoff_repeat: float = 0.1
    oneoff_repeat_hours: tuple = (0.1, 6.0)

    #: (weight, median GB, sigma) of each lognormal size mode (A11).
    size_mix: tuple = ((0.55, 0.7, 0.2), (0.30, 5.5, 0.3),
                       (0.15, 24.5, 0.25))

    #: Deployment bursts (A13).
    burst_alpha: float = 2.0
    burst_max: int = 16
    burst_gap_seconds: float = 15.0
    burst_span_seconds: float = 150.0

    #: Diurnal and weekly cycle (A12).
    diurnal_amplitude: float = 0.6
    peak_hour: float = 14.0
    weekend_factor: float = 0.5

    def __post_init__(self):
        checks = (
            (self.days > 0, 'days must be positive'),
            (self.per_day > 0, 'per_day must be positive'),
            (self.facility_families >= 1 and self.user_families >= 1,
             'there must be at least one family of each kind'),
            (self.facility_scale > 0, 'facility_scale must be positive'),
            (self.facility_period_days > 0 and self.user_period_days > 0,
             'periods must be positive (math.inf: no churn)'),
            (self.prev_decay_days > 0, 'prev_decay_days must be positive'),
            (all(0 <= share <= 1 for share in (
                self.facility_share, self.prev_share, self.oneoff_share,
                self.oneoff_repeat)), 'shares must be within [0, 1]'),
            (self.oneoff_share < 1, 'oneoff_share must be below 1'),
            (self.burst_max >= 1, 'burst_max must be at least 1'),
            (0 <= self.diurnal_amplitude <= 1,
             'diurnal_amplitude must be within [0, 1]'),
            (self.weekend_factor > 0, 'weekend_factor must be positive'),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


REGIMES = {
    # Stationary popularity: facility images refreshed about quarterly (so
    # at most once in a 4-week trace), user images never, 3 % one-offs.
    'stable': Params(facility_period_days=90.0, user_period_days=math.inf,
                     oneoff_share=0.03),
    # Heavy churn: nightly-to-weekly rebuilt images, popularity keeps
    # moving to new ids.
    'churn': Params(facility_period_days=3.0, user_period_days=7.0,
                    oneoff_share=0.05),
    # Many private one-offs; shared families churn as in ``mixed``.
    'oneoff': Params(oneoff_share=0.4),
    # Moderate everything: the Params defaults.
    'mixed': Params(),
}


def regime(name, **overrides):
    """The preset ``Params`` of regime ``name``, with ``overrides``."""
    try:
        base = REGIMES[name]
    except KeyError:
        raise ValueError('unknown regime %r (known: %s)'
                         % (name, ', '.join(sorted(REGIMES))))
    return dataclasses.replace(base, **overrides)


def _new_id(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _clamp_size(size):
    return int(min(MAX_SIZE, max(MIN_SIZE, size)))


def _cumulative(weights):
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative


def _pick(rng, cumulative):
    """An index drawn with the weights ``cumulative`` sums up."""
    index = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
    # random() * total can round to exactly the total.
    return min(index, len(cumulative) - 1)


class _Sizes:
    """Draws sizes from the lognormal mixture (A11)."""

    def __init__(self, size_mix):
        self.modes = [(median * GB, sigma) for _, median, sigma in size_mix]
        self.cumulative = _cumulative(weight for weight, _, _ in size_mix)

    def draw(self, rng):
        median, sigma = self.modes[_pick(rng, self.cumulative)]
        return _clamp_size(rng.lognormvariate(math.log(median), sigma))


class _Family:
    """One logical image and its versions over the trace (A4, A8, A9).

    Version ``j`` appears at ``phase + j * period`` seconds into the trace;
    ``versions`` holds ``(id, size)`` from version ``first`` on.
    """

    def __init__(self, rng, sizes, mean_period_days, duration):
        size = sizes.draw(rng)
        if math.isinf(mean_period_days):
            self.period, self.phase, self.first = math.inf, 0.0, 0
            self.versions = [(_new_id(rng), size)]
            return
        self.period = mean_period_days * DAY * rng.uniform(0.5, 1.5)
        self.phase = rng.uniform(0.0, self.period)
        # At time 0 the current version is -1; -2 is its predecessor,
        # which may still get requests early on.
        self.first = -2
        last = math.floor((duration - self.phase) / self.period)
        self.versions = []
        for _ in range(self.first, last + 1):
            self.versions.append((_new_id(rng), size))
            size = _clamp_size(size * rng.uniform(0.9, 1.1))

    def image_at(self, rng, t, params):
        """The ``(id, size)`` a deployment at ``t`` seconds boots."""
        if math.isinf(self.period):
            return self.versions[0]
        current = math.floor((t - self.phase) / self.period)
        age = t - (self.phase + current * self.period)
        still_old = params.prev_share * math.exp(
            -age / (params.prev_decay_days * DAY))
        if rng.random() < still_old:
            current -= 1
        index = current - self.first
        # Guard against float rounding at the edges of the version range.
        return self.versions[max(0, min(index, len(self.versions) - 1))]


class _Catalogue:
    """The shared families and their popularity (A5, A6)."""

    def __init__(self, rng, params, sizes):
        duration = params.days * DAY
        self.params = params
        self.facility = [
            _Family(rng, sizes, params.facility_period_days, duration)
            for _ in range(params.facility_families)]
        self.user = [_Family(rng, sizes, params.user_period_days, duration)
                     for _ in range(params.user_families)]
        self.facility_cumulative = _cumulative(
            math.exp(-rank / params.facility_scale)
            for rank in range(params.facility_families))
        self.user_cumulative = _cumulative(
            (rank + 1) ** -params.user_zipf
            for rank in range(params.user_families))

    def image_at(self, rng, t):
        if rng.random() < self.params.facility_share:
            families, cumulative = self.facility, self.facility_cumulative
        else:
            families, cumulative = self.user, self.user_cumulative
        return families[_pick(rng, cumulative)].image_at(rng, t, self.params)


class _Bursts:
    """Instances per deployment of a shared image, truncated power law."""

    def __init__(self, params):
        weights = [k ** -params.burst_alpha
                   for k in range(1, params.burst_max + 1)]
        self.cumulative = _cumulative(weights)
        self.mean = (sum(k * w for k, w in enumerate(weights, 1))
                     / self.cumulative[-1])
        self.gap = params.burst_gap_seconds
        self.span = params.burst_span_seconds

    def offsets(self, rng):
        """Seconds after the deployment's start of each instance's boot."""
        count = _pick(rng, self.cumulative) + 1
        offsets = [0.0]
        offset = 0.0
        for _ in range(count - 1):
            if self.gap > 0:
                offset = min(self.span, offset + rng.expovariate(
                    1.0 / self.gap))
            offsets.append(offset)
        return offsets


def _oneoff_probability(params, burst_mean):
    """Share of deployments that are one-offs.

    Chosen so that ``oneoff_share`` of requests are: a one-off yields
    ``1 + oneoff_repeat`` requests on average, a shared deployment
    ``burst_mean``.
    """
    share, per_oneoff = params.oneoff_share, 1.0 + params.oneoff_repeat
    return share * burst_mean / (
        per_oneoff * (1.0 - share) + share * burst_mean)


def _rate_factor(params, t):
    """Relative deployment rate at ``t`` seconds into the trace (A12)."""
    now = params.start + t
    weekday = (int(now // DAY) + _EPOCH_WEEKDAY) % 7
    weekly = params.weekend_factor if weekday >= 5 else 1.0
    hour = (now % DAY) / HOUR
    daily = 1.0 + params.diurnal_amplitude * math.cos(
        2 * math.pi * (hour - params.peak_hour) / 24.0)
    return weekly * daily


def _deployment_times(rng, params, per_day):
    """Seconds into the trace of each deployment.

    A Poisson process of mean ``per_day`` a day modulated by
    ``_rate_factor``, drawn by thinning a homogeneous one at the peak rate.
    """
    # Normalise so the weekly mean of _rate_factor is 1; the daily cosine
    # averages to 1 over every day.
    norm = (5.0 + 2.0 * params.weekend_factor) / 7.0
    peak = max(1.0, params.weekend_factor) * (1.0 + params.diurnal_amplitude)
    candidate_rate = per_day / DAY * peak / norm
    duration = params.days * DAY
    t = rng.expovariate(candidate_rate)
    while t < duration:
        if rng.random() * peak < _rate_factor(params, t):
            yield t
        t += rng.expovariate(candidate_rate)


def generate(params, seed):
    """The trace: ``(timestamp, image_id, size)`` sorted by timestamp."""
    rng = random.Random(seed)
    sizes = _Sizes(params.size_mix)
    catalogue = _Catalogue(rng, params, sizes)
    bursts = _Bursts(params)
    p_oneoff = _oneoff_probability(params, bursts.mean)
    per_deployment = (p_oneoff * (1.0 + params.oneoff_repeat)
                      + (1.0 - p_oneoff) * bursts.mean)
    duration = params.days * DAY
    low, high = (hours * HOUR for hours in params.oneoff_repeat_hours)

    events = []
    for t in _deployment_times(rng, params, params.per_day / per_deployment):
        if rng.random() < p_oneoff:
            image = (_new_id(rng), sizes.draw(rng))
            times = [t]
            if rng.random() < params.oneoff_repeat:
                times.append(t + rng.uniform(low, high))
        else:
            image = catalogue.image_at(rng, t)
            times = [t + offset for offset in bursts.offsets(rng)]
        events.extend((round(params.start + when, 3),) + image
                      for when in times if when < duration)
    events.sort(key=_timestamp)
    return events


def _timestamp(request):
    return request[0]


def unique_bytes(requests):
    """Total size of the distinct images ``requests`` asks for."""
    return sum({image_id: size for _, image_id, size in requests}.values())


def write_csv(requests, path_or_file):
    """Write ``requests`` as CSV (header first) to a path or open file."""
    if hasattr(path_or_file, 'write'):
        _write_rows(requests, path_or_file)
        return
    with open(path_or_file, 'w', newline='') as out:
        _write_rows(requests, out)


def _write_rows(requests, out):
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(HEADER)
    writer.writerows(('%.3f' % timestamp, image_id, size)
                     for timestamp, image_id, size in requests)


def summary(requests):
    """One line: requests, unique images and their total size."""
    return '%d requests, %d unique images, %.1f GiB unique' % (
        len(requests), len({image_id for _, image_id, _ in requests}),
        unique_bytes(requests) / GIB)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.traces',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--regime', choices=sorted(REGIMES),
                        default='mixed')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--days', type=float,
                        help='length of the trace (default: the regime\'s)')
    parser.add_argument('--per-day', type=float,
                        help='mean requests a day (default: the regime\'s)')
    parser.add_argument('--out', default='-',
                        help='CSV file to write, "-" for stdout (default)')
    args = parser.parse_args(argv)

    overrides = {name: value for name, value in (
        ('days', args.days), ('per_day', args.per_day)) if value is not None}
    try:
        params = regime(args.regime, **overrides)
    except ValueError as error:
        parser.error(str(error))
    requests = generate(params, args.seed)
    write_csv(requests, sys.stdout if args.out == '-' else args.out)
    print('%s seed %d: %s' % (args.regime, args.seed, summary(requests)),
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
