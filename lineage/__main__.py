"""``python -m lineage``: the same as the ``lineage`` command."""

from .cli import main

main()
