"""Broker operations: the NATS server evfabric runs (:mod:`.server`: :class:`BrokerServer`, with
its config in :mod:`.config`), local clusters (:mod:`.cluster`); leaf nodes for edge sites are settings of a server
(``leaf_remotes``, ``domain``; a hub and leaf pair for tests is
:class:`evfabric.testing.HubAndLeaf`). The fabric client (:mod:`evfabric.fabric`) never imports
this package."""
