"""The documentation names tests that exist: it cannot drift from them."""

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
#: ``tests/.../test_x.py::test_name`` or ``...::Class::test_name``.
REFERENCE = re.compile(r'(tests/[\w/]+\.py)::([\w:]+)')


def _references(doc):
    with open(os.path.join(ROOT, doc)) as f:
        return sorted(set(REFERENCE.findall(f.read())))


def _defined(path):
    """Every ``name`` and ``Class::name`` a test module defines."""
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names.update('%s::%s' % (node.name, item.name)
                         for item in node.body
                         if isinstance(item, ast.FunctionDef))
    return names


@pytest.mark.parametrize('doc', ['doc/source/contributor/reliability.rst'])
def test_every_test_the_doc_names_exists(doc):
    references = _references(doc)
    assert references, '%s names no test' % doc
    missing = ['%s::%s' % (path, name) for path, name in references
               if not os.path.exists(os.path.join(ROOT, path))
               or name not in _defined(path)]
    assert not missing, '%s names tests that do not exist: %s' % (
        doc, missing)
