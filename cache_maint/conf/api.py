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
Number of threads serving API requests other than clean and prune, which
have threads of their own (``max_task_requests``).
"""),
    cfg.IntOpt(
        'task_wait_timeout',
        default=300,
        min=0,
        help="""
Seconds a clean or prune request waits for a run of the same task that is
already in progress (started by the timer, the CLI or glance-api) before it
answers 409 Conflict. Requests that arrive meanwhile share the next run.
"""),
    cfg.IntOpt(
        'max_task_requests',
        default=16,
        min=1,
        help="""
Threads serving clean and prune requests, which wait for their run (and
share it, see ``task_wait_timeout``). They are apart from ``threads``, so
that waiting requests never hold up the others; when all are taken, more
clean and prune requests queue for them, holding no thread.
"""),
    cfg.IntOpt(
        'max_connections',
        default=1000,
        min=1,
        help="""
Open client connections, idle ones included, beyond which new connections
wait in the listen backlog. The soft limit on open files is raised to fit.
"""),
    cfg.IntOpt(
        'request_timeout',
        default=30,
        min=1,
        help="""
Seconds a client has to send a whole request (request line, headers and
body) once its first byte arrived; a slower client is disconnected. Idle or
slow clients never hold a thread, only a connection.
"""),
    cfg.IntOpt(
        'idle_timeout',
        default=60,
        min=1,
        help="""
Seconds an idle keep-alive connection stays open.
"""),
    cfg.IntOpt(
        'max_request_line',
        default=8192,
        min=256,
        help="""
Longest request line (method, target, version) in bytes; a longer one is
answered 414 URI Too Long.
"""),
    cfg.IntOpt(
        'max_header_size',
        default=65536,
        min=1024,
        help="""
Largest request line and header block together, in bytes; a larger one is
answered 431. Keystone tokens travel in a header: keep room for them. The
largest request body is ``[oslo_middleware] max_request_body_size`` (413).
"""),
    cfg.IntOpt(
        'max_header_fields',
        default=100,
        min=10,
        help="""
Most header fields in one request; more are answered 431.
"""),
]


def register_opts(conf):
    # By name: an OptGroup object keeps per-ConfigOpts state (overrides), so
    # sharing one between two ConfigOpts would leak values between them.
    conf.register_opts(api_opts, group=api_group.name)


def list_opts():
    return {api_group: api_opts}
