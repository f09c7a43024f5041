"""Options for oslo-config-generator (namespace ``cache_maint``)."""

from cache_maint import conf


def list_opts():
    """Every option cache-maint defines, grouped, as the generator wants."""
    merged = {}
    for module in conf.MODULES:
        for group, opts in module.list_opts().items():
            merged.setdefault(group, []).extend(opts)
    return list(merged.items())
