"""Thumbnails in dupwatch's own cache folder (never beside the photos), one JPEG per content and size.

Keyed by the file's content hash, so a renamed or moved photo keeps its thumbnails and a changed
one gets new ones. A thumbnail is made only from a file that is still what the index holds (its
size and mtime unchanged): the page never shows an image the notice was not about.

The folder is kept in bounds (`prune`): thumbnails of contents no longer indexed go, and past
`review.thumbnails_max_mb` the least recently shown go too (each is touched when shown: access
times are often off on the disks of home servers).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dupwatch.decode import decode
from dupwatch.errors import SkipFile
from dupwatch.store.base import FileView

SIZES = {"small": 320, "large": 1600}  # the list's thumbnails, the detail view's images
QUALITY = 82


class Thumbnails:
    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, file: FileView, size: int) -> Path | None:
        """The thumbnail of an indexed file, made on first use; None when the file is gone,
        changed since it was indexed, or cannot be decoded."""
        if file.content_hash is None:
            return None
        name = f"{file.content_hash.hex()}-{size}.jpg"
        target = self.root / name[:2] / name
        try:
            os.utime(target)  # shown now: the last to go when the folder is pruned
            return target
        except FileNotFoundError:
            pass
        except OSError:
            return target if target.exists() else None
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


@dataclass(frozen=True)
class Pruned:
    removed: int
    freed: int  # bytes
    kept: int  # bytes


def prune(root: Path, indexed: set[bytes], max_bytes: int) -> Pruned:
    """Remove the thumbnails of contents not in `indexed`, then the least recently shown until
    the rest fit in `max_bytes`, and any half-written file older than an hour."""
    now = time.time()
    kept: list[tuple[float, int, Path]] = []
    removed = freed = 0
    for path in root.glob("??/*"):
        try:
            st = path.stat()
        except OSError:
            continue  # removed meanwhile
        name = path.name
        if name.startswith("."):
            stale = name.endswith(".tmp") and now - st.st_mtime > 3600
        else:
            try:
                stale = bytes.fromhex(name.split("-", 1)[0]) not in indexed
            except ValueError:
                continue  # not dupwatch's: left alone
        if not stale:
            kept.append((st.st_mtime, st.st_size, path))
        elif _remove(path):
            removed, freed = removed + 1, freed + st.st_size
    total = sum(size for _, size, _ in kept)
    for _, size, path in sorted(kept):  # oldest first
        if total <= max_bytes:
            break
        if _remove(path):
            removed, freed, total = removed + 1, freed + size, total - size
    return Pruned(removed, freed, total)


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:  # gone meanwhile, or not ours to remove
        return False
    return True
