"""Resolving a group: its copies (never its keeper, never a reference file) into the quarantine.

The one owner of what `dupwatch resolve` and the review page's "move the copies" do: which copies
of a group move, why a copy stays where it is, the journaled move itself (dupwatch/quarantine.py)
and forgetting a moved copy, so that the cache never names a file that is no longer there.
Files are named by the group's members as the cache holds them, never by a path from outside.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dupwatch.errors import DupwatchError

if TYPE_CHECKING:
    from dupwatch.config import Config
    from dupwatch.library import Keeping, Library
    from dupwatch.quarantine import Move, Quarantine
    from dupwatch.store.base import Catalog, Member

OFF = ("actions are off: dupwatch moves no photo unless you set actions.enabled: true"
       " and actions.folder (docs/actions.md)")


@dataclass(frozen=True)
class Outcome:
    """What became of one copy: the moves made (or planned, in a dry run), or why it stays."""

    copy: Member
    moves: tuple[Move, ...] = ()
    stays: str | None = None


def enabled(config: Config) -> bool:
    return config.actions.enabled and config.actions.quarantine_folder() is not None


def quarantine(config: Config) -> Quarantine:
    """The configured quarantine; refused unless actions are enabled."""
    from dupwatch.quarantine import Quarantine

    folder = config.actions.quarantine_folder()
    if not config.actions.enabled or folder is None:
        raise DupwatchError(OFF)
    journal = config.cache.resolved().parent / "quarantine.jsonl"
    return Quarantine(Path(folder), journal, config.actions.hardlink)


def keeping(library: Library, group_id: int) -> Keeping:
    found = library.keeping(group_id)
    if found is None:
        raise DupwatchError(f"no group {group_id} in the cache (`dupwatch groups` lists them)")
    return found


def resolve(library: Library, quarantine: Quarantine, group: Keeping, dry_run: bool = False
            ) -> Iterator[Outcome]:
    """Each copy of `group` in turn, moved (or only planned, with `dry_run`) once it is yielded:
    a refusal (a `QuarantineError`) stops at the copy it is about, the ones before it done."""
    kept, *copies = group.members
    for copy in copies:
        why = unmovable(copy, library)
        if why is not None:
            yield Outcome(copy, stays=why)
            continue
        moves = planned(quarantine, library.catalog, copy, kept, group.id)
        done = moves if dry_run else quarantine.resolve(moves)
        if not dry_run and not any(m.kind == "link" for m in moves):
            library.forget(copy.path)  # gone from where it was: out of the cache
            library.commit()
        yield Outcome(copy, tuple(done))


def unmovable(copy: Member, library: Library) -> str | None:
    """Why a copy stays where it is; None when it may move."""
    if not copy.path.startswith("/"):
        return "on another host: resolve it there"
    if library.in_reference(copy.path):
        return "in a reference folder"
    try:
        st = os.stat(copy.path)
    except OSError as exc:
        return exc.strerror or str(exc)
    if (st.st_size, st.st_mtime_ns) != (copy.size, copy.mtime_ns):
        return "changed since it was indexed (scan it again first)"
    return None


def planned(quarantine: Quarantine, store: Catalog, copy: Member, kept: Member, group_id: int) -> list[Move]:
    """An exact copy becomes a hard link to its keeper when `actions.hardlink` asks; any other
    copy moves, its sidecars with it."""
    if quarantine.hardlink and kept.path.startswith("/") and \
            store.content_hash(copy.file_id) == store.content_hash(kept.file_id):
        return [quarantine.plan_link(Path(copy.path), Path(kept.path), str(group_id))]
    return quarantine.plan([Path(copy.path)], str(group_id))
