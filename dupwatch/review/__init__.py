"""The review page: duplicate notices side by side, and the decisions "seen" and "not a duplicate"."""
