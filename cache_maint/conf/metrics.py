"""The Prometheus metrics listener, in its own ``[metrics]`` group.

The metrics are served on a listener of their own, without authentication,
so that a scraper needs no token and never reaches the admin API: bind it
to an address only the monitoring network can reach.
"""

from oslo_config import cfg

metrics_group = cfg.OptGroup(
    'metrics',
    title='Prometheus metrics',
    help='The metrics of the image cache and of its maintenance, for '
         'Prometheus, on a listener of their own.')

metrics_opts = [
    cfg.BoolOpt(
        'enabled',
        default=True,
        help="""
Serve metrics for Prometheus at ``/metrics`` on ``bind_host``:``bind_port``.
"""),
    cfg.HostAddressOpt(
        'bind_host',
        default='127.0.0.1',
        help="""
Address the metrics listener binds. It serves without authentication: keep
it on loopback or on the monitoring network.
"""),
    cfg.PortOpt(
        'bind_port',
        default=9394,
        help="""
Port of the metrics listener. 0 picks a free port and logs it.
"""),
    cfg.IntOpt(
        'refresh_interval',
        default=10,
        min=1,
        max=3600,
        help="""
Seconds between two looks at the cache for the metrics. A look scans the
cache directory only if it changed since the previous one (or every ten
minutes); a scrape never scans it, it is served the last look's values.
"""),
]


def register_opts(conf):
    conf.register_opts(metrics_opts, group=metrics_group.name)


def list_opts():
    return {metrics_group: metrics_opts}
