"""The always-on watcher: filesystem events → settled files → the pipeline, under systemd."""
