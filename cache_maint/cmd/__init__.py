"""Command-line entry points.

oslo.service picks its backend when ``oslo_service.service`` is first
imported and defaults to eventlet, so the threading backend is selected here,
before any entry point imports it.
"""

import warnings

from oslo_service import backend

# futurist and oslo.service import eventlet when it is installed (it is an
# oslo.service dependency) even though nothing here uses it; its import-time
# deprecation warning is noise to an operator, and so are those that
# dnspython, which eventlet imports, sets off in cryptography.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
warnings.filterwarnings('ignore', message='DSA is deprecated',
                        module=r'dns\.')

backend.init_backend(backend.BackendType.THREADING)
