"""In-memory indexes over the store's fingerprints, rebuilt at open."""
