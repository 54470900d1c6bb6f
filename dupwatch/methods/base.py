"""What every similarity method is: a fingerprint of an image, and a score for two fingerprints.

Scores are in [0, 1], 1 meaning identical, so that one threshold per method reads the same way
everywhere. A method declares the smallest image it needs so that a file is decoded once, at the
largest size any enabled method asks for, and every method works from that one decode.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import ClassVar, Literal

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Options:
    """Settings a method may take from the config (picklable: it travels to worker processes)."""

    cnn_model: Literal["lite0", "b0"] = "lite0"
    cnn_weights: str | None = None
    cnn_batch_size: int = 16
    cnn_threads: int = 0  # torch threads; 0: one per core


class Method(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    default_threshold: ClassVar[float]
    # The named presets' thresholds (`preset:` in the config; `normal` is default_threshold),
    # measured by benchmarks/presets.py on the shared photos and their variants. strict: the
    # lowest score a plain copy got (re-encoded, resized, EXIF-rotated), so nothing less like
    # its original than every such copy is accepted. loose: the first 0.01 step above the best
    # score two different photos got, so every edit scoring above the closest strangers is.
    # Neither passes default_threshold the wrong way; None means the default (not measured).
    strict_threshold: ClassVar[float | None] = None
    loose_threshold: ClassVar[float | None] = None
    # The decoded image's short side must be at least this many pixels (when the photo has them).
    needs_size: ClassVar[int] = 64
    # False: the method looks at luminance only, so a JPEG may be decoded straight to grey.
    needs_colour: ClassVar[bool] = False
    # Bump when the fingerprint changes meaning: stored fingerprints of an older version are redone.
    version: ClassVar[int] = 1
    dtype: ClassVar[type[np.generic]] = np.uint8
    shape: ClassVar[tuple[int, ...]]
    # True: workers only `prepare` an input, and the main process fingerprints many at once.
    batched: ClassVar[bool] = False

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()

    @classmethod
    def preset_threshold(cls, preset: str, normal: float | None = None) -> float:
        """The threshold of a preset, never crossing `normal` (default_threshold unless a search
        uses this method's score with a threshold of its own, as robust mode does) the wrong way."""
        normal = cls.default_threshold if normal is None else normal
        chosen = {"strict": cls.strict_threshold, "loose": cls.loose_threshold}.get(preset)
        if chosen is None:
            return normal
        pick = max if preset == "strict" else min
        return pick(chosen, normal)

    @property
    def key(self) -> str:
        """How the store names this method's fingerprints."""
        return f"{self.name}/{self.version}"

    @abstractmethod
    def fingerprint(self, image: Image.Image) -> np.ndarray:
        """Fingerprint an upright image: RGB, or L when no enabled method needs colour."""

    @abstractmethod
    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        """Score two fingerprints of this method in [0, 1]; 1 = identical."""

    def prepare(self, image: Image.Image) -> np.ndarray:
        """For batched methods: the cheap part, run in worker processes."""
        raise NotImplementedError

    def fingerprint_batch(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        """For batched methods: fingerprint many prepared inputs at once."""
        raise NotImplementedError

    def compare_many(self, a: np.ndarray, others: Sequence[np.ndarray]) -> list[float]:
        """Score `a` against each of `others`; methods that can batch the work override this."""
        return [self.compare(a, b) for b in others]

    def compare_pairs(self, mine: Sequence[np.ndarray], others: Sequence[np.ndarray]) -> list[float]:
        """Score each of `mine` against the same place in `others` (a photo turned several ways,
        each against its own candidates); methods that can batch the work override this."""
        return [self.compare(a, b) for a, b in zip(mine, others, strict=True)]

    def to_bytes(self, fingerprint: np.ndarray) -> bytes:
        return np.ascontiguousarray(fingerprint, dtype=self.dtype).tobytes()

    def from_bytes(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=self.dtype).reshape(self.shape)


def small_gray(image: Image.Image, size: int) -> Image.Image:
    """The image as `size`×`size` luminance; BOX averages every source pixel, so no aliasing.

    The last one made is kept: the cosine, the centred hash and `fingerprint.plain` each ask for
    the same photo at 32×32, and each resize reads every pixel of the decode. Callers only read
    it (`np.asarray` copies).
    """
    last = _last_gray
    if last is not None and last[0]() is image and last[1] == size:
        return last[2]
    small = image.convert("L").resize((size, size), Image.Resampling.BOX)
    _keep_gray(image, size, small)
    return small


_last_gray: tuple[weakref.ref[Image.Image], int, Image.Image] | None = None


def _keep_gray(image: Image.Image, size: int, small: Image.Image) -> None:
    global _last_gray
    # A weak reference: a new image that happens to get a freed one's id is not mistaken for it.
    _last_gray = (weakref.ref(image), size, small)


def small_rgb(image: Image.Image, size: int) -> Image.Image:
    return image.convert("RGB").resize((size, size), Image.Resampling.BOX)


def median(values: np.ndarray) -> float:
    """np.median's value, without np.median: its NaN check imports numpy.ma, a third of a
    `dupwatch query`'s run time spent on an import no method needs."""
    ordered = np.sort(values, axis=None)
    n = ordered.size
    return float((ordered[(n - 1) // 2] + ordered[n // 2]) / 2)


@cache
def unwanted(side: int) -> np.ndarray:
    """An orthonormal basis (side² × 2) of what the pixel scores ignore in a side×side grid: its
    mean, and its radial profile (how much brighter the middle is than the corners: a vignette)."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    middle = (side - 1) / 2
    radius = (((x - middle) / middle) ** 2 + ((y - middle) / middle) ** 2).ravel()
    basis, _ = np.linalg.qr(np.stack([np.ones_like(radius), radius]).T)
    return basis.astype(np.float32)
