"""Kalshi's market-data protocol, shared by ssmd's connector and its exchange simulator.

- :mod:`ssmd.kalshi.protocol`: URLs, paths, header names, channel and message type names, error codes
  with Kalshi's exact messages, market statuses.
- :mod:`ssmd.kalshi.fixedpoint`: fixed-point dollar prices and contract counts (``Decimal`` and exact
  integer units), formatting and parsing.
- :mod:`ssmd.kalshi.auth`: RSA-PSS request signing and verification, key loading and generation.
- :mod:`ssmd.kalshi.messages`: typed shapes (msgspec) of the WebSocket data messages.

Only protocol facts live here, no connection logic: the connector and the simulator each implement
their side against these types, so a misreading of the protocol cannot hide in shared code paths.
"""
