"""CLI subcommands, one module each (see :mod:`ssmd.cli` for the module contract)."""
