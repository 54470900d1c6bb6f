"""Folders → the photo files under them, in a deterministic order (sorted, depth first).

Symlinks are not followed unless the config says so; when they are, a folder reached twice
(a loop, or two links to one place) is walked once.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dupwatch.errors import DupwatchError, SkipFile


@dataclass(frozen=True)
class Selection:
    """Which names are photos to look at: shared by `scan` and, later, the watcher."""

    extensions: tuple[str, ...]
    ignore: tuple[str, ...]

    def wants(self, name: str) -> bool:
        return os.path.splitext(name)[1].lower() in self.extensions and not self.ignored(name)

    def ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.ignore)


def walk(roots: Iterable[str], selection: Selection, follow_symlinks: bool) -> Iterator[str | SkipFile]:
    seen: set[tuple[int, int]] = set()
    for root in roots:
        path = os.path.abspath(root)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise DupwatchError(f"{path}: {exc.strerror or exc}") from None
        if os.path.isdir(path):
            seen.add((st.st_dev, st.st_ino))
            yield from _walk_dir(path, selection, follow_symlinks, seen)
        else:
            yield path  # a file named on the command line is taken whatever its name


def _walk_dir(
    folder: str, selection: Selection, follow: bool, seen: set[tuple[int, int]]
) -> Iterator[str | SkipFile]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield SkipFile(folder, f"cannot list folder: {exc.strerror or exc}")
        return
    for entry in entries:
        if selection.ignored(entry.name):
            continue
        try:
            if entry.is_symlink():
                if not follow:
                    continue
                st = os.stat(entry.path)  # follows; raises ELOOP for a link cycle
            else:
                st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                yield SkipFile(entry.path, "symlink loop")
            elif exc.errno == errno.ENOENT:
                reason = "broken symlink" if entry.is_symlink() else "vanished during the scan"
                yield SkipFile(entry.path, reason)
            else:
                yield SkipFile(entry.path, exc.strerror or str(exc))
            continue
        if os.path.isdir(entry.path) if follow else entry.is_dir(follow_symlinks=False):
            key = (st.st_dev, st.st_ino)
            if key in seen:
                yield SkipFile(entry.path, "symlink loop: folder already scanned")
                continue
            seen.add(key)
            yield from _walk_dir(entry.path, selection, follow, seen)
        elif selection.wants(entry.name) and os.path.isfile(entry.path):
            yield entry.path
