"""Benchmarks of cache-maint against Glance 33, side by side in one run.

``python -m bench`` (``tox -e bench``) builds identical Glance-format caches
for every driver, runs Glance 33's own ``ImageCache.prune()`` / ``clean()``
and the real ``cache-maint-manage`` on separate copies, checks that both
evicted the same images, and prints the timings as ratios. See
``doc/source/contributor/performance.rst`` for a run and what bounds each
number.
"""
