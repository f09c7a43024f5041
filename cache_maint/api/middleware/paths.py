"""Paths served by an application of their own."""

from cache_maint.api import router


class PublicBypass:
    """Serve public routes (version discovery) without authentication."""

    def __init__(self, authenticated, public):
        self._authenticated = authenticated
        self._public = public

    def __call__(self, environ, start_response):
        if router.is_public(environ.get('PATH_INFO', '')):
            return self._public(environ, start_response)
        return self._authenticated(environ, start_response)


class Mount:
    """Serve one path with its own application (``/healthcheck``)."""

    def __init__(self, application, path, mounted):
        self._application = application
        self._path = path
        self._mounted = mounted

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO') == self._path:
            return self._mounted(environ, start_response)
        return self._application(environ, start_response)
