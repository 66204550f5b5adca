"""``python -m evfabric.sim MODEL ...`` (see :mod:`evfabric.sim.catalog`)."""

import sys

from evfabric.sim.catalog import main

sys.exit(main())
