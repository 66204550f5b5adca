"""``python -m evfabric``: the same as the ``evfabric`` command."""

from evfabric.cli import main

main()
