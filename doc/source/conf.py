# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

# cache-maint's documentation: "tox -e docs" builds the HTML pages and the
# man pages from this directory, with warnings as errors.

import importlib.metadata
import os
import sys
import warnings

from docutils import nodes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# oslo.service's options, in the references, import eventlet, which warns
# that it is deprecated; cache-maint does not use it.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

# The local extension that renders api-ref/openapi.yaml.
sys.path.insert(0, os.path.join(HERE, '_extensions'))

project = 'cache-maint'
copyright = '2026, cache-maint developers'
author = 'cache-maint developers'
# The installed package's version (tox installs it: the oslo extensions
# below load its options and rules through its entry points).
release = version = importlib.metadata.version('cache-maint')

extensions = [
    'myst_parser',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'oslo_policy.sphinxext',
    'oslo_policy.sphinxpolicygen',
    'openapi_reference',
]

master_doc = 'index'
source_suffix = {'.rst': 'restructuredtext'}
exclude_patterns = []
# Literal blocks (::) are log lines, shell sessions, configuration files:
# no highlighting unless a code-block names its language.
highlight_language = 'none'
# DEVELOPERS.md's headings become the contributor page's sections.
myst_heading_anchors = 3

# The sample configuration and sample policy, generated at each build from
# the generator files the "tox -e genconfig" and "genpolicy" use.
config_generator_config_file = os.path.join(
    ROOT, 'etc', 'oslo-config-generator', 'cache-maint.conf')
sample_config_basename = '_static/cache-maint'
policy_generator_config_file = os.path.join(
    ROOT, 'etc', 'oslo-policy-generator', 'cache-maint.conf')
sample_policy_basename = '_static/cache-maint'

# -- HTML --------------------------------------------------------------------

# Sphinx's own theme: cache-maint is no OpenStack project, and
# openstackdocstheme would put OpenStack's site, links and licence on every
# page.
html_theme = 'alabaster'
html_title = 'cache-maint %s' % release
html_theme_options = {
    'description': 'Clean and prune a Glance image cache',
    'page_width': '1200px',
    'sidebar_width': '260px',
}
html_sidebars = {'**': ['about.html', 'navigation.html', 'searchbox.html']}

# -- Man pages ---------------------------------------------------------------

# (source, name, description, authors, section); "sphinx-build -b man".
man_pages = [
    ('cli/cache-maint', 'cache-maint',
     'clean and prune a Glance image cache, on a schedule and on demand',
     [author], 1),
    ('cli/cache-maint-manage', 'cache-maint-manage',
     "run cache-maint's tasks once, list, pin, show status, replay traces",
     [author], 1),
    ('cli/cache-maint-status', 'cache-maint-status',
     'check a node and its configuration before cache-maint starts',
     [author], 1),
]
man_show_urls = False


def _plain_internal_references(app, doctree, docname):
    """In man pages, a link to another page is its title alone.

    docutils 0.22's man page writer would follow it with the empty address
    of a page that is not in the man page ("title <>"). Links to the web
    keep their address.
    """
    if app.builder.name != 'man':
        return
    for reference in list(doctree.findall(nodes.reference)):
        if not reference.get('refuri', '').startswith(
                ('http:', 'https:', 'mailto:', 'ftp:')):
            reference.replace_self(nodes.inline('', '', *reference.children))


def setup(app):
    app.connect('doctree-resolved', _plain_internal_references)
