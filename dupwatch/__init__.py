"""dupwatch: tells you, within a second, when a photo that lands is a copy of one you already have."""

__version__ = "0.1.0"
