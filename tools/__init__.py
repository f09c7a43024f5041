"""Scripts run from the top of a checkout (``python -m tools.<name>``).

Like ``bench/``, they may import ``tests.support`` and nothing else of
``tests/``; nothing in ``cache_maint`` or ``tests`` imports them.
"""
