# Release notes of cache-maint, built by ``tox -e releasenotes`` from the
# notes in releasenotes/notes (reno).

project = 'cache-maint Release Notes'
copyright = '2026, cache-maint developers'
author = 'cache-maint developers'

extensions = ['reno.sphinxext']

master_doc = 'index'
exclude_patterns = []
html_static_path = []
html_theme = 'alabaster'
