"""Folders → the photo files under them, in a deterministic order (sorted, depth first).

Symlinks are not followed unless the config says so; when they are, a folder reached twice
(a loop, or two links to one place) is walked once.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dupwatch.errors import DupwatchError, SkipFile


@dataclass(frozen=True)
class Selection:
    """Which names are photos to look at: shared by `scan` and, later, the watcher."""

    extensions: tuple[str, ...]
    ignore: tuple[str, ...]
    # Folders (absolute) never looked into, whatever their name: the quarantine.
    skip: tuple[str, ...] = ()

    def wants(self, name: str) -> bool:
        return os.path.splitext(name)[1].lower() in self.extensions and not self.ignored(name)

    def ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.ignore)

    def skipped(self, path: str) -> bool:
        """A path in (or the very) folder never looked into."""
        return any(path == s or path.startswith(s.rstrip("/") + "/") for s in self.skip)


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
            yield from _walk_tree(path, selection, follow_symlinks, seen)
        else:
            yield path  # a file named on the command line is taken whatever its name


def _walk_tree(
    top: str, selection: Selection, follow: bool, seen: set[tuple[int, int]]
) -> Iterator[str | SkipFile]:
    """Depth first, in name order, with a stack of its own: a tree can be deeper than Python's
    recursion limit (a folder nested a thousand times is a few lines of shell)."""
    stack: list[Iterator[os.DirEntry[str]]] = []
    listing = _list(top)
    if isinstance(listing, SkipFile):
        yield listing
        return
    stack.append(listing)
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
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
            yield SkipFile(entry.path, _why(exc, entry))
            continue
        if stat.S_ISDIR(st.st_mode):
            if selection.skipped(entry.path):
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                yield SkipFile(entry.path, "symlink loop: folder already scanned")
                continue
            seen.add(key)
            listing = _list(entry.path)
            if isinstance(listing, SkipFile):
                yield listing
            else:
                stack.append(listing)
        elif selection.wants(entry.name):
            yield entry.path if stat.S_ISREG(st.st_mode) else SkipFile(entry.path, not_a_file(st.st_mode))


def _list(folder: str) -> Iterator[os.DirEntry[str]] | SkipFile:
    try:
        with os.scandir(folder) as it:
            return iter(sorted(it, key=lambda e: e.name))
    except OSError as exc:
        return SkipFile(folder, f"cannot list folder: {exc.strerror or exc}")


def _why(exc: OSError, entry: os.DirEntry[str]) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "broken symlink" if entry.is_symlink() else "vanished during the scan"
    return exc.strerror or str(exc)


def not_a_file(mode: int) -> str:
    """Why a name that looks like a photo is not one to open: what it is instead."""
    if stat.S_ISFIFO(mode):
        return "a FIFO, not a photo file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a photo file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a photo file"
    if stat.S_ISDIR(mode):
        return "a folder, not a photo file"
    return "not a regular file"
