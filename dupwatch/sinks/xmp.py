"""The XMP sidecar tag (opt-in): `IMG_0001.JPG.xmp` gets the tag dupwatch/duplicate and the path
of the photo it duplicates, where digiKam, darktable and Immich read tags.

The sidecar is read, merged and written to a temporary file that is renamed over it, so every
other field (ratings, a darktable history, other tags) is kept and no reader sees half a file.
The photo itself is never opened for writing. `IMG_0001.xmp` (Lightroom's name, for raw files)
is never made: the sidecar dupwatch writes is always the photo's full name plus `.xmp`.

Tags follow each field's own convention: digiKam's TagsList separates levels with `/`,
Lightroom's hierarchicalSubject with `|`, and dc:subject (plain keywords, what PhotoPrism reads)
holds the last level only.

The sidecar belongs to whoever owns the photo: the service runs as its own user under
`UMask=0077`, and the photo manager that reads the sidecar runs as someone else. A new sidecar
takes the photo's permission bits (no execute) and, where dupwatch may, its owner and group; a
merged one keeps its own. A sidecar dupwatch made says so (`dupwatch:Created`), so that
untagging it back to nothing removes it instead of leaving an empty file by every photo.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from dupwatch.config import Config
from dupwatch.record import Notice
from dupwatch.report import shown
from dupwatch.sinks.base import Alert, DeliveryError

NAMESPACE = "https://github.com/dupwatch/dupwatch/xmp/1.0/"
TAGS = {  # XMP key → the tag dupwatch adds
    "Xmp.digiKam.TagsList": "dupwatch/duplicate",
    "Xmp.lr.hierarchicalSubject": "dupwatch|duplicate",
    "Xmp.dc.subject": "duplicate",
}
EMPTY = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
         '<x:xmpmeta xmlns:x="adobe:ns:meta/"/>\n<?xpacket end="w"?>\n')
CREATED = "Xmp.dupwatch.Created"  # this sidecar did not exist before dupwatch tagged it
ATTEMPTS = 3  # another program rewrote the sidecar while dupwatch merged: merge again


def sidecar_of(photo: str) -> Path:
    # str + ".xmp": a name that is not UTF-8 keeps its bytes (os.fsencode), so the sidecar of
    # b'caf\xe9.jpg' is b'caf\xe9.jpg.xmp', where photo managers look for it.
    return Path(photo + ".xmp")


def xmp_name(name: str) -> str:
    """A file name as XMP text: XML holds Unicode only, so a byte that is not UTF-8 is written
    `\\xe9` (the escape `dupwatch scan` shows too); a UTF-8 name is itself."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


class XmpTag:
    key = "xmp"
    alerts = False
    records = False
    label = "notices.xmp"

    def __init__(self) -> None:
        import pyexiv2  # only when XMP is enabled

        pyexiv2.registerNs(NAMESPACE, "dupwatch")
        self._exiv2 = pyexiv2

    @classmethod
    def configured(cls, config: Config) -> list[XmpTag]:
        return [cls()] if config.notices.xmp.enabled else []

    def send(self, item: Alert) -> None:
        assert isinstance(item, Notice)
        # The copy is tagged, never the copy to keep: a better version that landed last leaves
        # its own sidecar alone and tags the file it replaces as the keeper.
        copy = item.match.match if item.match.better() else item.match.path
        target = sidecar_of(copy)
        if not os.path.exists(copy):
            raise DeliveryError(f"{shown(copy)}: gone; no sidecar written", retry=False)
        for _ in range(ATTEMPTS):
            if self._merge(item, target) is not None:
                return
        raise DeliveryError(f"{shown(str(target))}: changed by another program while dupwatch wrote it",
                            retry=False)

    def untag(self, photo: str, duplicate_of: str) -> bool:
        """Take dupwatch's own tag off `photo`'s sidecar if it says `photo` duplicates the file
        `duplicate_of` (a pair marked "not a duplicate"), and nothing else: every other tag and
        field stays. `duplicate_of` is a path, or a bare name as sidecars and callers of
        earlier versions had it. A sidecar dupwatch made that is left with nothing in it is
        removed. False when there was no such tag."""
        target = sidecar_of(photo)
        if not target.exists():
            return False
        for _ in range(ATTEMPTS):
            done = self._merge(duplicate_of, target)
            if done is not None:
                return done
        raise DeliveryError(f"{shown(str(target))}: changed by another program while dupwatch wrote it",
                            retry=False)

    def _merge(self, notice: Notice | str, target: Path) -> bool | None:
        """Tag `target` for a notice (or untag it, given the name it duplicates); None when
        another program wrote it meanwhile, else whether it changed."""
        # In memory: pyexiv2's file functions hold the GIL through their disk I/O (~4 ms a
        # sidecar), which would stall ingestion in the main thread; its ImageData takes 0.1 ms.
        temporary = target.with_name(f".{target.name}.dupwatch-{os.getpid()}.tmp")
        try:
            try:
                before: os.stat_result | None = os.stat(target)
                data = target.read_bytes()
            except FileNotFoundError:
                before, data = None, EMPTY.encode()
            image = self._exiv2.ImageData(data)
            try:
                if isinstance(notice, Notice):
                    changed = self._tag(image, notice, created=before is None)
                    empty = False
                else:
                    made = CREATED in image.read_xmp()
                    changed = self._untag(image, notice)
                    empty = made and changed and not any(image.read_xmp().values())
                merged = image.get_bytes()
            finally:
                image.close()
            if not changed:
                return False
            if empty:
                # Made by dupwatch and now holding nothing: gone, as if never tagged.
                if _changed(before, _stat_or_none(target)):
                    return None
                target.unlink()
                return True
            temporary.write_bytes(merged)
            if before is not None:
                _take_ownership(temporary, before, keep=0o7777)
            else:
                _take_ownership(temporary, os.stat(photo_of(target)), keep=0o666)
            if _changed(before, _stat_or_none(target)):
                return None  # another program wrote it meanwhile: merge with its version
            temporary.replace(target)
            return True
        except (OSError, RuntimeError) as exc:  # pyexiv2 raises RuntimeError for broken XMP
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip()
            raise DeliveryError(f"{shown(str(target))}: {reason}; left as it was", retry=False) from None
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)

    def _tag(self, image: Any, notice: Notice, created: bool) -> bool:
        xmp = image.read_xmp()
        for key, value in TAGS.items():
            items = xmp.get(key, [])
            items = [items] if isinstance(items, str) else list(items)
            if value in items:
                continue
            # pyexiv2 writes a list as an rdf:Seq, also where the spec says Bag (dc:subject,
            # hierarchicalSubject); it can neither delete nor index into an array it read, so a
            # Bag cannot be kept as one. exiftool, exiv2 (digiKam, darktable) and Immich read both.
            image.modify_xmp({key: [*items, value]})
        # The full path: a camera's IMG_0001.JPG is in many folders. The bare name too, for a
        # photo manager's column where a path would not fit.
        # A better version that lands is the copy to keep: the file it replaces is the one tagged,
        # as a duplicate of it.
        duplicate_of = os.path.abspath(notice.match.path if notice.match.better() else notice.match.match)
        image.modify_xmp({
            "Xmp.dupwatch.DuplicateOf": xmp_name(duplicate_of),
            "Xmp.dupwatch.DuplicateOfName": xmp_name(os.path.basename(duplicate_of)),
            "Xmp.dupwatch.Method": notice.match.method,
            "Xmp.dupwatch.Score": f"{notice.match.score:.4f}",
        })
        if created:
            image.modify_xmp({CREATED: "True"})
        return True

    def _untag(self, image: Any, duplicate_of: str) -> bool:
        xmp = image.read_xmp()
        if not _names(xmp.get("Xmp.dupwatch.DuplicateOf"), duplicate_of):
            # Untagged by dupwatch (a "duplicate" keyword is the user's own), or tagged for
            # another pair, which still stands.
            return False
        ours = [key for key in xmp if key.startswith("Xmp.dupwatch.")]
        for key, value in TAGS.items():
            items = xmp.get(key, [])
            items = [items] if isinstance(items, str) else list(items)
            if value in items:
                items.remove(value)
                image.modify_xmp({key: items or None})
                if not items and key in image.read_xmp():
                    image.modify_xmp({key: []})  # pyexiv2 cannot erase dc:subject: leave it empty
        image.modify_xmp(dict.fromkeys(ours))
        return True


def photo_of(sidecar: Path) -> str:
    return str(sidecar)[: -len(".xmp")]


def _names(tagged: object, duplicate_of: str) -> bool:
    """Whether a sidecar's DuplicateOf (a path; a bare name before) names `duplicate_of` (a
    path; a bare name from callers of before)."""
    if not isinstance(tagged, str):
        return False
    if "/" not in duplicate_of:  # a bare name: any folder's file of that name
        return tagged.rpartition("/")[2] == xmp_name(duplicate_of)
    path = xmp_name(os.path.abspath(duplicate_of))
    return tagged == path or ("/" not in tagged and tagged == path.rpartition("/")[2])


def _take_ownership(temporary: Path, owner: os.stat_result, keep: int) -> None:
    """Give the file about to become the sidecar `owner`'s owner, group and the permission
    bits in `keep`: those of the sidecar it replaces, or of the photo (no execute) for a new
    one. Before the rename, so that no reader ever sees the sidecar as dupwatch's own."""
    # The mode first: once the file is given away, only its owner (or CAP_FOWNER) may change it.
    os.chmod(temporary, stat.S_IMODE(owner.st_mode) & keep)
    # Only root (or CAP_CHOWN) may give a file away; another user may still set a group it is
    # in. Neither where the filesystem has no owners (FAT) or maps them (NFS), nor under a
    # system call filter without @chown: the file then stays dupwatch's.
    for uid, gid in ((owner.st_uid, owner.st_gid), (-1, owner.st_gid)):
        try:
            os.chown(temporary, uid, gid)
            break
        except OSError:
            continue


def _changed(before: os.stat_result | None, after: os.stat_result | None) -> bool:
    if before is None or after is None:
        return (before is None) != (after is None)
    return ((before.st_mtime_ns, before.st_size, before.st_ino)
            != (after.st_mtime_ns, after.st_size, after.st_ino))


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
