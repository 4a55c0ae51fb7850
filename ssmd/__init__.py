"""ssmd: lossless, auditable market-data capture for the Kalshi exchange."""

__version__ = "0.1.0"
