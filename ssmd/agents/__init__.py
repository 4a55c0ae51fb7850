"""Stream agents: connector, normalizer, raw and normalized archivers, snapshotter (one module each)."""
