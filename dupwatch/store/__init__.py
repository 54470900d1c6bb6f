"""The cache: what dupwatch knows about every file it has seen, behind one small interface."""

from dupwatch.store.base import Known, Store

__all__ = ["Known", "Store"]
