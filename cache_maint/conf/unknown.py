"""Options nobody reads: most often a typo, which oslo.config ignores.

``image_cache_max_sise = 1024`` once ran silently with the 10 GiB default.
glance-api.conf is full of options cache-maint rightly ignores, so only
these are looked at:

* every section of cache-maint's own files (a file whose name, or the name
  of its directory, starts with ``cache-maint``), and
* in any file, the groups only cache-maint uses, and ``[DEFAULT]`` options
  named like cache options (``image_cache_*``, ``cache_*``).

Each unknown one is reported with its file and the nearest known name.
"""

import difflib
import os
import re

from cache_maint.conf import sources
from cache_maint.conf import values

#: [DEFAULT] options that look like cache options, in glance-api.conf too.
CACHE_LIKE = re.compile(r'(image_)?cache_')

#: How alike a name must be to a known one to be offered as a correction.
CUTOFF = 0.6


def is_own_file(path):
    """True for cache-maint's own configuration files."""
    directory, name = os.path.split(os.path.abspath(path))
    return (name.startswith('cache-maint')
            or os.path.basename(directory).startswith('cache-maint'))


def known_names(conf):
    """{group: set of option names} registered in ``conf``, old names too."""
    known = {}
    for group, opt in values.registered(conf):
        names = known.setdefault(group, set())
        names.update((opt.dest, sources.normalized(opt.name)))
        for old in opt.deprecated_opts:
            if old.name and (old.group or 'DEFAULT') == group:
                names.add(sources.normalized(old.name))
    return known


def report(conf, own_groups):
    """One message per unknown option; ``own_groups`` are cache-maint's."""
    known = known_names(conf)
    messages = []
    for path in sources.paths(conf):
        own = is_own_file(path)
        for section, options in sources.parse(path).items():
            group = section if section in known else None
            if group is None:
                if own or section in own_groups:
                    messages += _unknown_section(path, section, known)
                continue
            for option in options:
                name = sources.normalized(option)
                if name in known[group]:
                    continue
                if own or group in own_groups or (
                        group == 'DEFAULT' and CACHE_LIKE.match(name)):
                    messages.append(_message(path, group, option,
                                             known[group]))
    return messages


def _unknown_section(path, section, known):
    """A section no option is registered in: a near-miss is reported."""
    nearest = difflib.get_close_matches(section, known, n=1, cutoff=0.8)
    if not nearest:
        return []
    return ['%s: section [%s] is not one cache-maint knows; did you mean '
            '[%s]?' % (path, section, nearest[0])]


def _message(path, group, option, names):
    nearest = difflib.get_close_matches(sources.normalized(option), names,
                                        n=1, cutoff=CUTOFF)
    hint = '; did you mean %s?' % nearest[0] if nearest else ''
    return ('%s: [%s] %s is not an option cache-maint knows, and is ignored'
            '%s' % (path, group, option, hint))
