"""What every similarity method is: a fingerprint of an image, and a score for two fingerprints.

Scores are in [0, 1], 1 meaning identical, so that one threshold per method reads the same way
everywhere. A method declares the smallest image it needs so that a file is decoded once, at the
largest size any enabled method asks for, and every method works from that one decode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from PIL import Image


class Method(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    default_threshold: ClassVar[float]
    # The decoded image's short side must be at least this many pixels (when the photo has them).
    needs_size: ClassVar[int] = 64
    # False: the method looks at luminance only, so a JPEG may be decoded straight to grey.
    needs_colour: ClassVar[bool] = False
    # Bump when the fingerprint changes meaning: stored fingerprints of an older version are redone.
    version: ClassVar[int] = 1
    dtype: ClassVar[type[np.generic]] = np.uint8
    shape: ClassVar[tuple[int, ...]]

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

    def compare_many(self, a: np.ndarray, others: Sequence[np.ndarray]) -> list[float]:
        """Score `a` against each of `others`; methods that can batch the work override this."""
        return [self.compare(a, b) for b in others]

    def to_bytes(self, fingerprint: np.ndarray) -> bytes:
        return np.ascontiguousarray(fingerprint, dtype=self.dtype).tobytes()

    def from_bytes(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=self.dtype).reshape(self.shape)


def small_gray(image: Image.Image, size: int) -> Image.Image:
    """The image as `size`×`size` luminance; BOX averages every source pixel, so no aliasing."""
    return image.convert("L").resize((size, size), Image.Resampling.BOX)


def small_rgb(image: Image.Image, size: int) -> Image.Image:
    return image.convert("RGB").resize((size, size), Image.Resampling.BOX)
