"""Similarity methods by name. Adding one is a new module and a line here, nothing else."""

from __future__ import annotations

from dupwatch.errors import ConfigError
from dupwatch.methods.base import Method, Options
from dupwatch.methods.cnn import Cnn, CnnEuclidean
from dupwatch.methods.cosine import Cosine
from dupwatch.methods.euclidean import Euclidean
from dupwatch.methods.geometry import Geometry
from dupwatch.methods.hashes import (
    AverageHash,
    CentredHash,
    DifferenceHash,
    HashMethod,
    PerceptualHash,
    WaveletHash,
)
from dupwatch.methods.ssim import Ssim

METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (Euclidean, Ssim, AverageHash, PerceptualHash, DifferenceHash, WaveletHash, CentredHash,
                Cosine, Cnn, CnnEuclidean, Geometry)
}
HASHES: dict[str, type[HashMethod]] = {
    name: cls for name, cls in METHODS.items() if issubclass(cls, HashMethod)
}


def get_method(name: str, key: str = "method", options: Options | None = None) -> Method:
    try:
        return METHODS[name](options)
    except KeyError:
        raise ConfigError(key, f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def get_hash(name: str, key: str = "hash") -> HashMethod:
    try:
        return HASHES[name]()
    except KeyError:
        raise ConfigError(key, f"unknown hash {name!r}; known: {', '.join(HASHES)}") from None
