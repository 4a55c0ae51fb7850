"""Capture-side logic between the connector and the raw stream: sequence checks, markers, batching.

The connector sees each exchange connection's frames complete and in order, so exchange sequence gaps
are detected here (:mod:`~ssmd.capture.sequencer`), before frames are spread over partitions by ticker;
what was detected travels on the raw stream as marker frames (:mod:`~ssmd.capture.markers`).
"""
