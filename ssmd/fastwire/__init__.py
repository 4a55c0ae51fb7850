"""A hand-written Cap'n Proto codec for ssmd's messages, behind :mod:`ssmd.codec`.

pycapnp costs about a microsecond per field access from Python; a worker that moves tens of
thousands of frames a second through encode and decode several times cannot afford it. This
package writes and reads the same bytes with :mod:`struct` on precomputed layouts:
:mod:`.layout` (the struct layouts, checked against the schema at load time), :mod:`.encode`
(messages from records), :mod:`.segment` and :mod:`.decode` (records from the canonical messages
both writers produce; everything else is deferred to pycapnp) and :mod:`.split` (a ``Batch`` into
``Record`` messages by copying bytes). Use it through :mod:`ssmd.codec`, not directly.
"""
