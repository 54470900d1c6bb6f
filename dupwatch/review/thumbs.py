"""Thumbnails in dupwatch's own cache folder (never beside the photos), one JPEG per content and size.

Keyed by the file's content hash, so a renamed or moved photo keeps its thumbnails and a changed
one gets new ones. A thumbnail is made only from a file that is still what the index holds (its
size and mtime unchanged): the page never shows an image the notice was not about.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from dupwatch.decode import decode
from dupwatch.errors import SkipFile
from dupwatch.store.base import FileView

SIZES = {"small": 320, "large": 1600}  # the list's thumbnails, the detail view's images
QUALITY = 82


class Thumbnails:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._made = threading.local()

    def get(self, file: FileView, size: int) -> Path | None:
        """The thumbnail of an indexed file, made on first use; None when the file is gone,
        changed since it was indexed, or cannot be decoded."""
        if file.content_hash is None:
            return None
        name = f"{file.content_hash.hex()}-{size}.jpg"
        target = self.root / name[:2] / name
        if target.exists():
            return target
        try:
            st = os.stat(file.path)
            if (st.st_size, st.st_mtime_ns) != (file.size, file.mtime_ns):
                return None
            with open(file.path, "rb") as f:
                data = f.read()
            # The long side is made `size`: a short side of half that is enough for any photo
            # up to 2:1, and lets libjpeg's draft mode skip most of the decoding.
            image = decode(file.path, data, size // 2).image
        except (OSError, SkipFile):
            return None
        image.thumbnail((size, size))
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            image.save(temporary, "JPEG", quality=QUALITY, optimize=True)
            temporary.replace(target)  # two requests for one thumbnail: the last rename wins
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        return target
