"""The decisions, shared by the page and the command line.

"Not a duplicate" is about two contents (SHA-256 of the bytes): the pipeline never reports that
pair again, whatever the files are called or wherever they move. Where dupwatch tagged the
duplicate's XMP sidecar, its own tag is taken off (and put back on undo); nothing else is touched.
"Keep this one instead" makes a copy its group's keeper: its tag goes, and the keeper it replaces
is tagged a duplicate of it, so that the copy to keep is never the one tagged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from dupwatch.record import Match, Notice
from dupwatch.sinks.base import DeliveryError
from dupwatch.store.base import Reviewed, Store

if TYPE_CHECKING:
    from dupwatch.library import Library

log = logging.getLogger("dupwatch")


def not_duplicate(store: Store, a: bytes, b: bytes, sidecars: list[tuple[str, str]], decided: bool = True,
                  retag: Reviewed | None = None, xmp_enabled: bool = False) -> bool:
    """Decide (or undo) that contents `a` and `b` are not duplicates; True if that changed.

    `sidecars`: (photo, the path of the photo it was said to duplicate) whose dupwatch tag goes
    when the pair is decided. On undo, `retag`'s notice is tagged again if XMP is enabled.
    """
    changed = store.set_not_duplicate(a, b, decided)
    if decided:
        for photo, other in dict.fromkeys(sidecars):
            untag(photo, other)
    elif retag is not None and xmp_enabled:
        from dupwatch.sinks.xmp import XmpTag

        try:
            now = replace(retag.notice.match, path=retag.duplicate.path, match=retag.original.path)
            XmpTag().send(Notice(retag.notice.id, retag.notice.found_at, now))
        except DeliveryError as exc:
            log.warning("notices.xmp: %s", exc)
    return changed


def untag(photo: str, duplicate_of: str) -> bool:
    """Take dupwatch's tag off `photo`'s sidecar if it says `photo` duplicates `duplicate_of`."""
    from dupwatch.sinks.xmp import XmpTag, sidecar_of

    if not sidecar_of(photo).exists():
        return False
    try:
        done = XmpTag().untag(photo, duplicate_of)
    except DeliveryError as exc:
        log.warning("notices.xmp: %s", exc)
        return False
    if done:
        log.info("took dupwatch's tag off %s", sidecar_of(photo))
    return done


def sidecars_of(item: Reviewed) -> list[tuple[str, str]]:
    """Where the XMP sink tagged this notice's copy and the path it named: as told, and where the
    two files are now (either may have moved since)."""
    match = item.notice.match
    # A better version is never tagged: the file it replaced as the copy to keep is.
    if match.better():
        tagged, named = (match.match, item.original.path), (match.path, item.duplicate.path)
    else:
        tagged, named = (match.path, item.duplicate.path), (match.match, item.original.path)
    return [(tagged[0], named[0]), (tagged[1], named[0]), (tagged[1], named[1])]


def choose_keeper(library: Library, file_id: int, xmp_enabled: bool) -> tuple[str, str] | None:
    """The user's choice: keep this file of its group (`Library.choose`), and with XMP on move
    dupwatch's tag from it to the keeper it replaces. The old and the new keeper's paths; None
    when the file is in no group."""
    group_id = library.catalog.group_of(file_id)
    changed = library.choose(file_id)
    if changed is None or not xmp_enabled or changed[0] == changed[1]:
        return changed
    from dupwatch.sinks.xmp import XmpTag

    old, new = changed
    group = None if group_id is None else library.catalog.group(group_id)
    # Its tag names whichever copy it was told against, perhaps a keeper replaced since.
    for other in [] if group is None else [m.path for m in group.members]:
        if other != new and untag(new, other):
            break
    chosen = Match(old, new, "near", "chosen", 1.0, 0, group=group_id, keep=new)
    try:
        XmpTag().send(Notice(0, time.time(), chosen))
    except DeliveryError as exc:
        log.warning("notices.xmp: %s", exc)
    return changed
