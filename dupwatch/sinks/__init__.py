"""Where notices go: the notice log, sidecars, XMP tags, Apprise alerts and an exec hook."""
