"""cache-maint's version, as the installed package's metadata says."""

import importlib.metadata

DISTRIBUTION = 'cache-maint'


def version_string():
    """The installed version, or ``unknown`` when run from a bare tree."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'
