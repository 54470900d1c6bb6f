"""The one owner of the index: the catalog of files and every in-memory search, kept in step.

Whatever changes what dupwatch knows goes through a `Library`: a photo indexed (and the pair it
was found in), a file forgotten, a move seen or a move nobody saw, a file that killed a decoder.
Each of those changes the catalog and every search together, so that no search ever offers a
file the catalog has forgotten, or misses one it holds. Everything else only reads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from dupwatch import keeper
from dupwatch.candidates.base import Search
from dupwatch.ondemand import OnDemand
from dupwatch.record import Match, Photo
from dupwatch.store.base import Catalog, Group, Known, Member, Trouble

# More files than this all gone from one root at once: suspect an unmounted disk, not deletions.
MASS_FORGET = 20

log = logging.getLogger("dupwatch")


@dataclass(frozen=True)
class Found:
    """What matching found for a new photo: the pair to tell (`match`, with the indexed file's
    id) and every indexed file it was confirmed to duplicate, whose groups it joins."""

    match: Match
    file_id: int
    linked: tuple[int, ...] = ()


@dataclass(frozen=True)
class Keeping:
    """A group as the user sees it: its members best first, and why the first is the keeper."""

    id: int
    members: list[Member]  # the keeper first
    why: str


class Library:
    def __init__(self, catalog: Catalog, searches: Sequence[Search], reference: Sequence[str] = (),
                 order: Sequence[str] = keeper.DEFAULT_ORDER, on_demand: OnDemand | None = None) -> None:
        self.catalog = catalog
        self.searches = list(searches)
        # Fingerprints made from files on demand while a photo was matched: stored with it here.
        self.on_demand = on_demand or OnDemand(catalog)
        # Folders whose files are only ever keepers and matches: never told, never tagged.
        self.reference = tuple(r.rstrip("/") + "/" for r in reference)
        self.order = tuple(order)

    # -- reading --------------------------------------------------------------------------------

    def known(self, path: str) -> Known | None:
        return self.catalog.get(path)

    def trouble(self, path: str) -> Trouble | None:
        return self.catalog.trouble(path)

    def in_reference(self, path: str) -> bool:
        return path.startswith(self.reference) if self.reference else False

    def keeper_of(self, file_id: int) -> int:
        """The keeper of a file's group; the file itself when it belongs to none."""
        keeper_id = self.catalog.keeper_of(file_id)
        return file_id if keeper_id is None else keeper_id

    def keeping(self, group_id: int) -> Keeping | None:
        group = self.catalog.group(group_id)
        return None if group is None else self._keeping(group)

    def keepings(self) -> Iterator[Keeping]:
        """Every group, its copy to keep first and why, oldest group first."""
        for group in self.catalog.all_groups():
            if (found := self._keeping(group)) is not None:
                yield found

    def _keeping(self, group: Group) -> Keeping | None:
        """None for a group of one: a copy left, no duplicate."""
        group_id = group.id
        if len(group.members) < 2:
            return None
        members = self._ranked(group)
        if members[0].file_id == group.chosen_id:
            why = keeper.WHY["chosen"]
        else:
            why = keeper.why(members, self.order)
        return Keeping(group_id, members, why)

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

    def add(self, photo: Photo, plan: str, found: Found | None) -> Match | None:
        """Index `photo` (its fingerprints `plan`) and the pair it was found in, if any: the
        photo joins the group of every file it duplicates, and the pair is told against the
        group's keeper. Returns the pair's record when it is new and to be told. `replacing(photo.path)`
        came first, before the photo was matched: its old content is out of every search already.

        The pair goes into the same batch as the file: a kill must not leave a file indexed whose
        duplicate was never recorded (the next run would see it unchanged and never report it).
        A new pair is committed before this returns, so that a kill after it cannot take the pair
        back and the next run never tells it again.
        """
        photo = self.on_demand.with_made(photo)
        if photo.exact_only is not None:
            photo = replace(photo, fingerprints={})  # matched by its bytes only: no search finds it
        known = self.catalog.get(photo.path)
        left = None
        if known is not None and self.catalog.content_hash(known.id) != photo.content_hash:
            left = self.catalog.group_of(known.id)  # new content: no longer a copy of that photo
        file_id = self.catalog.put(photo, plan)
        # Its header now, on the host that has the file: on a shared cache, the host that later
        # ranks it in a group may be another, which cannot read it.
        self.catalog.put_header(file_id, photo.header or keeper.read_header(photo.path))
        if photo.fingerprints:
            for search in self.searches:
                search.add(file_id, photo.fingerprints)
        if left is not None:
            self._regroup(left, leaving=file_id)
        told: Match | None = None
        if found is not None:
            match = self._join(file_id, found)
            tell = not self.in_reference(photo.path)
            if self.catalog.record_pair(file_id, found.file_id, match, tell) and tell:
                told = match
        if told is not None:
            self.catalog.commit()
        else:
            self.catalog.file_done()
        return told

    def choose(self, file_id: int) -> tuple[str, str] | None:
        """The user's choice: keep this file of its group instead (remembered, and kept as the
        group grows). The old and the new keeper's paths; None when the file is in no group."""
        group_id = self.catalog.group_of(file_id)
        group = None if group_id is None else self.catalog.group(group_id)
        if group is None or len(group.members) < 2:
            return None
        paths = {m.file_id: m.path for m in group.members}
        old = paths.get(group.keeper_id or -1, paths[file_id])
        self.catalog.save_group(group.id, list(paths), file_id, file_id)
        self.catalog.commit()
        return old, paths[file_id]

    def _join(self, file_id: int, found: Found) -> Match:
        """Put the new file in one group with every file it duplicates (merging their groups: the
        oldest id stays), choose the keeper, and name both in the pair's record."""
        linked = {found.file_id, *found.linked, file_id}
        ids = {g for i in linked if (g := self.catalog.group_of(i)) is not None}
        members = set(linked)
        old_keeper = found.file_id
        chosen = None
        for group_id in sorted(ids):
            group = self.catalog.group(group_id)
            if group is None:
                continue
            members |= {m.file_id for m in group.members}
            if group_id == min(ids):
                old_keeper = group.keeper_id or old_keeper
                chosen = group.chosen_id
            else:
                self.catalog.drop_group(group_id)
        target = self.catalog.save_group(min(ids) if ids else None, sorted(members), None, chosen)
        keeper_id = self._choose_keeper(target)
        keep = self.catalog.path_of(keeper_id)
        match = found.match
        if keeper_id == file_id and old_keeper != file_id:
            # A better version of the photo than every copy before it: told against the old keeper.
            old = self.catalog.path_of(old_keeper)
            if old is not None and old_keeper in linked:
                match = replace(match, match=old)
        return replace(match, group=target, keep=keep)

    def _choose_keeper(self, group_id: int) -> int:
        group = self.catalog.group(group_id)
        assert group is not None
        members = self._ranked(group)
        keeper_id = members[0].file_id
        self.catalog.save_group(group_id, [m.file_id for m in members], keeper_id, group.chosen_id)
        return keeper_id

    def _ranked(self, group: Group) -> list[Member]:
        """The group's members best first (the user's choice first), their headers read once."""
        members = []
        for m in group.members:
            if m.file_id in group.unread and m.path.startswith("/"):  # not another host's
                header = keeper.read_header(m.path)
                self.catalog.put_header(m.file_id, header)
                m = m._replace(format=header.format, meta=header.meta)
            if self.in_reference(m.path):
                m = m._replace(reference=True)
            members.append(m)
        ranked = keeper.ranked(members, self.order)
        chosen = [m for m in ranked if m.file_id == group.chosen_id]
        return chosen + [m for m in ranked if m.file_id != group.chosen_id]

    def _regroup(self, group_id: int, leaving: int | None = None) -> None:
        """A member left the group (forgotten, or its content changed): a group of one is no
        group; otherwise the keeper is chosen again among those left."""
        group = self.catalog.group(group_id)
        if group is None:
            return
        rest = [m.file_id for m in group.members if m.file_id != leaving]
        if not rest:
            self.catalog.drop_group(group_id)
            return
        # A group of one is no group to show (`keeping`), but its last file keeps the id: a copy
        # that comes back (restored from the quarantine, forgotten and found again) rejoins it,
        # and what its notices told is not told again.
        chosen = group.chosen_id if group.chosen_id in rest else None
        self.catalog.save_group(group_id, rest, None, chosen)
        self._choose_keeper(group_id)

    def forget(self, path: str) -> bool:
        """Drop a file from the catalog, every search and its group; False when it was not known."""
        known = self.catalog.get(path)
        group_id = None if known is None else self.catalog.group_of(known.id)
        file_id = self.catalog.remove(path)
        if file_id is None:
            return False
        self._unsearch(file_id)
        if group_id is not None:
            self._regroup(group_id)
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

    def remember_broken(self, path: str, size: int, mtime_ns: int, reason: str) -> None:
        """The file's bytes, as they were read, are no photo dupwatch can read: not read again
        (nor said again) until the file changes. In the batch: lost to a kill, it is only said twice."""
        self.catalog.put_trouble(path, size, mtime_ns, reason)
        self.catalog.file_done()

    def commit(self) -> None:
        self.catalog.commit()

    def follow(self) -> int:
        """Files that other processes (another host's watcher, a scan) indexed since the last
        call join every search, so that a photo landing here is matched against them too, and
        files they forgot (the review page moving copies away) leave them. Returns how many
        changed. Cheap when there are none: no read of the catalog."""
        ids = self.catalog.changed_elsewhere()
        if not ids:
            return 0
        keys = {key for search in self.searches for key in search.keys}
        stored = {key: self.catalog.fingerprints_of(ids, key) for key in keys}
        followed = 0
        for file_id in dict.fromkeys(ids):
            if not any(file_id in found for found in stored.values()):
                self._unsearch(file_id)  # forgotten since: in no answer, and out of every search
                followed += 1
                continue
            fingerprints = {key: data for key, found in stored.items()
                            if (data := found.get(file_id, ("", None))[1]) is not None}
            searches = [s for s in self.searches if all(key in fingerprints for key in s.keys)]
            for search in searches:
                search.add(file_id, fingerprints)
            followed += bool(searches)
        return followed

    def close(self) -> None:
        """Before the catalog closes: a search may keep its index for the next run."""
        for search in self.searches:
            search.close()

    def _unsearch(self, file_id: int) -> None:
        for search in self.searches:
            search.remove(file_id)
