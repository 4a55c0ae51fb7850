"""A hand-written Cap'n Proto codec for ssmd's batched streams, behind :mod:`ssmd.codec`.

pycapnp costs about a microsecond per field access from Python; a worker that moves tens of
thousands of frames a second through encode and decode twice cannot afford it. This package
writes and reads the same bytes with :mod:`struct` on precomputed layouts (:mod:`.layout`, checked
against the schema at load time): :mod:`.encode` builds messages, :mod:`.decode` reads the canonical
ones and defers everything else to pycapnp. Use it through :mod:`ssmd.codec`, not directly.
"""
