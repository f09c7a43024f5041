"""What the test suites and the benchmark share (see tests/README.rst).

Glance-format caches built on real disks and real databases (``caches``,
``plans``, ``glance_schema``, ``databases``), the real processes run and
watched (``processes``, ``running``, ``settings``), Glance 33's own cache
code driven in-process (``glance``), and the load generator (``load``).
Nothing here asserts what cache-maint should do: the oracles live with the
tests. ``bench/`` imports this package; nothing here imports ``bench``.
"""
