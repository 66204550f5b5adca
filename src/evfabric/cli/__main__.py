"""``python -m evfabric.cli``: the same as the ``evfabric`` command."""

from evfabric.cli import main

main()
