"""The one owner of the index: the catalog of files and every in-memory search, kept in step.

Whatever changes what dupwatch knows goes through a `Library`: a photo indexed (and the pair it
was found in), a file forgotten, a move seen or a move nobody saw, a file that killed a decoder.
Each of those changes the catalog and every search together, so that no search ever offers a
file the catalog has forgotten, or misses one it holds. Everything else only reads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace

from dupwatch.candidates.base import Search
from dupwatch.record import Match, Photo
from dupwatch.store.base import Catalog, Known, Trouble

# More files than this all gone from one root at once: suspect an unmounted disk, not deletions.
MASS_FORGET = 20

log = logging.getLogger("dupwatch")


class Library:
    def __init__(self, catalog: Catalog, searches: Sequence[Search]) -> None:
        self.catalog = catalog
        self.searches = list(searches)

    # -- reading --------------------------------------------------------------------------------

    def known(self, path: str) -> Known | None:
        return self.catalog.get(path)

    def trouble(self, path: str) -> Trouble | None:
        return self.catalog.trouble(path)

    @staticmethod
    def present(path: str) -> bool:
        """Whether a file the catalog names is still there to be told as a match (it may be gone
        and not yet forgotten): a file of this machine is looked for; another host's, named
        `host:path`, is taken on trust, as that host forgets its files when they go."""
        return not path.startswith("/") or os.path.exists(path)

    # -- changing -------------------------------------------------------------------------------

    def replacing(self, path: str) -> None:
        """A file is about to be indexed anew: its old content leaves every search before the
        new one is matched, so that it is not found as a candidate of itself."""
        known = self.catalog.get(path)
        if known is not None:
            self._unsearch(known.id)

    def add(self, photo: Photo, plan: str, found: tuple[Match, int] | None) -> bool:
        """Index `photo` (its fingerprints `plan`) and the pair it was found in, if any; True when
        that pair is new, and so to be told. `replacing(photo.path)` came first, before the photo
        was matched: its old content is out of every search already.

        The pair goes into the same batch as the file: a kill must not leave a file indexed whose
        duplicate was never recorded (the next run would see it unchanged and never report it).
        A new pair is committed before this returns, so that a kill after it cannot take the pair
        back and the next run never tells it again.
        """
        if photo.exact_only is not None:
            photo = replace(photo, fingerprints={})  # matched by its bytes only: no search finds it
        file_id = self.catalog.put(photo, plan)
        if photo.fingerprints:
            for search in self.searches:
                search.add(file_id, photo)
        new_pair = found is not None and self.catalog.record_pair(file_id, found[1], found[0])
        if new_pair:
            self.catalog.commit()
        else:
            self.catalog.file_done()
        return new_pair

    def forget(self, path: str) -> bool:
        """Drop a file from the catalog and every search; False when it was not known."""
        file_id = self.catalog.remove(path)
        if file_id is None:
            return False
        self._unsearch(file_id)
        return True

    def forget_missing(self, root: str, seen: set[str], whole_root: bool = False) -> int:
        """Drop cached files under `root` that are gone from disk; returns how many.

        With `whole_root` (a scanned or watched root, not one deleted folder), a root whose
        every cached file is gone is left alone: that is far likelier an unmounted disk or
        share than a library deleted, and forgetting it would report every pair again later.
        """
        cached = list(self.catalog.paths_under(root))
        gone = [p for p in cached if p not in seen and not os.path.lexists(p)]
        if whole_root and len(gone) == len(cached) > MASS_FORGET:
            log.warning("%s: all %d cached files are gone; not forgetting them (is a disk or share"
                        " unmounted?). Delete the cache to start afresh.", root, len(gone))
            return 0
        for path in gone:
            self.forget(path)
        self.catalog.commit()
        return len(gone)

    def move(self, old: str, new: str) -> None:
        """A file moved from `old` to `new` (over whatever was there): it keeps its id, its
        fingerprints and its pairs, so it is neither read nor reported again."""
        if self.catalog.get(old) is None:
            return
        self.forget(new)
        self.catalog.rename(old, new)

    def move_folder(self, old: str, new: str) -> None:
        for path in list(self.catalog.paths_under(old)):
            self.move(path, new + path[len(old):])

    def claim(self, path: str, st: os.stat_result) -> bool:
        """A file new to the catalog takes over the entry of a cached file that it is, moved
        while nobody watched: the same device and inode, size and mtime, at a path that is gone.
        True when it did."""
        if self.catalog.get(path) is not None:
            return False
        for old in self.catalog.paths_of_inode(st.st_dev, st.st_ino):
            known = self.catalog.get(old)
            if (known is not None and (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns)
                    and not os.path.lexists(old)):
                self.catalog.rename(old, path)
                return True
        return False

    def remember_trouble(self, path: str, st: os.stat_result, reason: str) -> None:
        """The file at `path`, as it is now, killed a decoding process: not tried again until it
        changes. Committed at once: the next file may kill this process too."""
        self.catalog.put_trouble(path, st.st_size, st.st_mtime_ns, reason)
        self.catalog.commit()

    def commit(self) -> None:
        self.catalog.commit()

    def close(self) -> None:
        """Before the catalog closes: a search may keep its index for the next run."""
        for search in self.searches:
            search.close()

    def _unsearch(self, file_id: int) -> None:
        for search in self.searches:
            search.remove(file_id)
