"""ssmd's Faust transports: ``nats://`` (JetStream) and ``memory://`` (in-process, for tests).

Both are registered in the ``faust.transports`` entry-point group (pyproject.toml), so
``faust.App(..., broker="nats://a:4222;b:4222")`` picks the JetStream driver. Undecodable messages
can be set aside instead of crashing agents with ``faust.App(..., Topic="ssmd.transport.dlq:Topic")``.
"""
