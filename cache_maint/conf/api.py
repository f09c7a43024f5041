"""The admin HTTP API listener, in its own [api] group.

glance-api.conf has ``bind_host`` and ``bind_port`` in [DEFAULT] for
glance-api itself, so cache-maint's listener options must live elsewhere.
"""

from oslo_config import cfg

AUTH_STRATEGIES = (
    ('keystone', "Validate tokens with keystonemiddleware's auth_token."),
    ('noauth2', 'Development only: the token names the caller.'),
)

api_group = cfg.OptGroup(
    'api',
    title='Admin API options',
    help='The admin HTTP API served inside the cache-maint process.')

api_opts = [
    cfg.HostAddressOpt(
        'bind_host',
        default='127.0.0.1',
        help="""
Address the admin API listens on.
"""),
    cfg.PortOpt(
        'bind_port',
        default=9393,
        help="""
Port the admin API listens on. 0 picks a free port and logs it.
"""),
    cfg.StrOpt(
        'auth_strategy',
        default='keystone',
        choices=AUTH_STRATEGIES,
        help="""
How requests are authenticated. ``keystone`` validates tokens with
keystonemiddleware's auth_token (configured in ``[keystone_authtoken]``).
``noauth2`` is for development: the token ``admin`` is an admin, any other
token a non-admin, and a request without a token is refused.
"""),
    cfg.BoolOpt(
        'allow_insecure_noauth',
        default=False,
        help="""
Let ``noauth2`` listen on an address beyond loopback. Anyone who can reach
the port is then an admin: never enable this in production.
"""),
    cfg.IntOpt(
        'threads',
        default=8,
        min=1,
        help="""
Number of threads serving API requests.
"""),
    cfg.IntOpt(
        'task_wait_timeout',
        default=300,
        min=0,
        help="""
Seconds a clean or prune request waits for a run of the same task that is
already in progress (started by the timer, the CLI or glance-api) before it
answers 409 Conflict. The request runs the task once the other run is over.
"""),
]


def register_opts(conf):
    # By name: an OptGroup object keeps per-ConfigOpts state (overrides), so
    # sharing one between two ConfigOpts would leak values between them.
    conf.register_opts(api_opts, group=api_group.name)


def list_opts():
    return {api_group: api_opts}
