"""WSGI entry points for deployments under uWSGI, gunicorn or mod_wsgi."""
