"""Similarity methods: one small class a file, found by name through `registry`."""
