"""Safe, reversible actions: a journaled quarantine folder that files are moved into and back from.

Where a file goes: `folder / <its absolute path without the leading "/">`, so
`/srv/photos/2024/a.jpg` goes to `<folder>/srv/photos/2024/a.jpg`. No library root is needed, two
roots can never map two files to one place, and the journal alone says where each file came from.

How a file moves, never overwriting and never copying: the journal gets a "begin" line (fsync'd)
before anything changes, then `os.link(src, dst)` (which fails if dst exists: no rename over an
existing file), then `os.unlink(src)`, then a "done" line. Between link and unlink the file has
two names for one inode, so a kill at any point leaves it where it was, in quarantine, or both
names of the same bytes; `recover()` reads every begun, unconfirmed entry and finishes it (both
names: the source name is dropped) or records it undone (only the source). When the link is
not allowed (fs.protected_hardlinks: a photo the service user neither owns nor may write), the
file is renamed with renameat2's RENAME_NOREPLACE instead: atomic, and never over a file. A file and its
quarantine folder must be on one filesystem (a hard link cannot cross devices): dupwatch refuses
rather than copy and delete.

Each photo takes its sidecars along: `photo.ext.xmp`, `photo.xmp` when no other file shares the
stem (a raw+JPEG pair keeps its shared sidecar, unless both are moved), and dupwatch's own
`.dupwatch/photo.ext.json`. Nothing here ever deletes a file's bytes; emptying the quarantine is
the user's.

The journal is JSON lines, appended, one line a step; names that are not UTF-8 keep their bytes
(lone surrogates, written as `\\udcXX` escapes). A last line cut short (power lost mid-write) is
ignored: its move had not started.

Tests kill the process between steps with `DUPWATCH_FAULT=quarantine:N` (SIGKILL at the N-th
step of this process's journal work, counted from 1; read only in `_fault_point`).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import filecmp
import json
import os
import signal
import stat
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from dupwatch.errors import DupwatchError

SIDECAR_FOLDER = ".dupwatch"  # dupwatch's own sidecars beside a photo (sinks/sidecar.py)

# "link": an exact copy's name replaced by a hard link to its keeper, its bytes kept in
# quarantine; "unlink" puts those bytes back under the copy's name.
Kind = Literal["move", "restore", "link", "unlink"]


class QuarantineError(DupwatchError):
    """A move or restore dupwatch refuses to make; nothing was changed for that file."""


class CrossDevice(QuarantineError):
    pass


class DestinationExists(QuarantineError):
    pass


@dataclass(frozen=True)
class Move:
    """One file going from `src` to `dst`: a photo or one of its sidecars (`photo` names the
    photo it goes with). `kind` is "move" into quarantine or "restore" back to where it was;
    "link" and "unlink" are the same for an exact copy that `keeper` stands in for meanwhile."""

    src: Path
    dst: Path
    photo: Path
    size: int
    mtime_ns: int
    group: str | None = None
    kind: Kind = "move"
    id: str = ""
    of: str = ""  # a restore: the id of the move it undoes
    keeper: Path | None = None  # link: the file whose hard link takes the copy's name
    ino: int = 0  # link, unlink: the inode of the bytes that move
    over: int = 0  # unlink: the inode of the keeper's link that the restored bytes replace


# --- fault injection -----------------------------------------------------------------------------

_steps = 0


def _fault_point() -> None:
    """One step of the journal work; SIGKILLs this process at step N of DUPWATCH_FAULT=quarantine:N."""
    global _steps
    _steps += 1
    spec = os.environ.get("DUPWATCH_FAULT", "")
    if spec.startswith("quarantine:") and spec.split(":", 1)[1] == str(_steps):
        os.kill(os.getpid(), signal.SIGKILL)


# --- the journal ---------------------------------------------------------------------------------

def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(entry: dict[str, Any]) -> bytes:
    # ensure_ascii writes a lone surrogate (an undecodable byte of a name) as \udcXX, and
    # json.loads gives the same surrogate back: names round-trip byte for byte.
    return (json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def _move_entry(move: Move) -> dict[str, Any]:
    return {"op": "begin", "id": move.id, "kind": move.kind, "of": move.of, "src": str(move.src),
            "dst": str(move.dst), "photo": str(move.photo), "size": move.size,
            "mtime_ns": move.mtime_ns, "group": move.group, "ino": move.ino, "over": move.over,
            "keeper": None if move.keeper is None else str(move.keeper)}


def _entry_move(entry: dict[str, Any]) -> Move:
    return Move(src=Path(entry["src"]), dst=Path(entry["dst"]), photo=Path(entry["photo"]),
                size=int(entry["size"]), mtime_ns=int(entry["mtime_ns"]), group=entry.get("group"),
                kind=entry["kind"], id=entry["id"], of=entry.get("of", ""),
                keeper=None if entry.get("keeper") is None else Path(entry["keeper"]),
                ino=int(entry.get("ino", 0)), over=int(entry.get("over", 0)))


@dataclass
class _State:
    begun: dict[str, Move]  # begun and not yet confirmed or undone, in journal order
    quarantined: dict[str, Move]  # moves done and not restored, by id


class Quarantine:
    def __init__(self, folder: Path, journal: Path, hardlink: bool = False) -> None:
        self.folder = Path(os.path.abspath(folder))
        self.journal = Path(os.path.abspath(journal))
        self.hardlink = hardlink  # actions.hardlink: exact copies may become links to the keeper

    # -- reading --

    def _entries(self) -> Iterator[dict[str, Any]]:
        try:
            data = self.journal.read_bytes()
        except FileNotFoundError:
            return
        for line in data.split(b"\n"):
            try:
                entry = json.loads(line)
            except ValueError:
                # A line cut short (power lost mid-write) was never fsync'd, so nothing was done
                # after it: its move never began. `_locked` ends it before appending.
                continue
            if isinstance(entry, dict):
                yield entry

    def _state(self) -> _State:
        begun: dict[str, Move] = {}
        quarantined: dict[str, Move] = {}
        for entry in self._entries():
            op = entry.get("op")
            if op == "begin":
                begun[entry["id"]] = _entry_move(entry)
            elif op == "gone":
                quarantined.pop(entry["id"], None)
            elif op in ("done", "undone"):
                move = begun.pop(entry["id"], None)
                if move is None or op == "undone":
                    continue
                if move.kind in ("move", "link"):
                    quarantined[move.id] = move
                else:
                    quarantined.pop(move.of, None)
        return _State(begun, quarantined)

    def quarantined(self) -> list[Move]:
        """Every file in quarantine now, as the move that put it there."""
        return list(self._state().quarantined.values())

    # -- writing --

    @contextmanager
    def _locked(self) -> Iterator[int]:
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        created = not self.journal.exists()
        fd = os.open(self.journal, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # One writer at a time (a resolve from the review page and one from the command line).
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")  # a torn last line stays a line of its own, never joined to the next
            if created:
                os.fsync(fd)
                _fsync_dir(self.journal.parent)
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _write(fd: int, entry: dict[str, Any]) -> None:
        os.write(fd, _encode(entry))
        os.fsync(fd)

    # -- planning --

    def target(self, path: Path) -> Path:
        """Where `path` (absolute) goes in quarantine."""
        return self.folder / str(path).lstrip("/")

    def _device(self) -> int:
        probe = self.folder
        while not probe.exists():
            probe = probe.parent
        return probe.stat().st_dev

    def plan(self, paths: Iterable[Path], group: str | None = None) -> list[Move]:
        """What moving these photos would move: each photo and its sidecars. Raises before
        anything moves when one cannot go (not a file, another device, its place taken)."""
        photos = [Path(os.path.abspath(p)) for p in paths]
        chosen = set(photos)
        device = self._device()
        moves: list[Move] = []
        seen: set[Path] = set()
        for photo in photos:
            _regular(photo)
            if photo.is_relative_to(self.folder):
                raise QuarantineError(f"{photo}: already in the quarantine folder {self.folder}")
            for src in [photo, *self._sidecars(photo, chosen)]:
                if src in seen:
                    continue
                seen.add(src)
                moves.append(self._planned(src, photo, device, group))
        return moves

    def _planned(self, src: Path, photo: Path, device: int, group: str | None) -> Move:
        info = os.lstat(src)
        if info.st_dev != device:
            raise CrossDevice(f"{src}: on another filesystem than the quarantine folder {self.folder}; "
                              "dupwatch moves files only by renaming, never by copying")
        dst = self.target(src)
        if os.path.lexists(dst):
            raise DestinationExists(f"{dst}: already exists in quarantine; nothing was moved")
        return Move(src=src, dst=dst, photo=photo, size=info.st_size, mtime_ns=info.st_mtime_ns,
                    group=group)

    def plan_link(self, copy: Path, keeper: Path, group: str | None = None) -> Move:
        """An exact copy's name to become a hard link to its keeper, the copy's own bytes (and
        mtime, owner, inode) kept in quarantine. Its sidecars stay: the name still holds the photo."""
        if not self.hardlink:
            raise QuarantineError("replacing copies by hard links is off (actions.hardlink)")
        copy, keeper = Path(os.path.abspath(copy)), Path(os.path.abspath(keeper))
        _regular(copy)
        _regular(keeper)
        move = self._planned(copy, copy, self._device(), group)
        info, kept = os.lstat(copy), os.lstat(keeper)
        if kept.st_dev != info.st_dev:
            raise CrossDevice(f"{copy}: on another filesystem than its keeper {keeper}")
        if kept.st_ino == info.st_ino:
            raise QuarantineError(f"{copy}: already a hard link to {keeper}")
        if os.path.lexists(_link_temporary(copy)):
            raise DestinationExists(f"{_link_temporary(copy)}: already exists; nothing was moved")
        if not filecmp.cmp(copy, keeper, shallow=False):
            raise QuarantineError(f"{copy}: not an exact copy of {keeper}; only exact copies become links")
        return replace(move, kind="link", keeper=keeper, ino=info.st_ino)

    @staticmethod
    def _sidecars(photo: Path, chosen: set[Path]) -> list[Path]:
        found: list[Path] = []
        for name in (photo.name + ".xmp", photo.name + ".XMP"):
            if _is_file(photo.with_name(name)):
                found.append(photo.with_name(name))
        stem = os.path.splitext(photo.name)[0]
        if stem != photo.name:
            for name in (stem + ".xmp", stem + ".XMP"):
                sidecar = photo.with_name(name)
                if _is_file(sidecar) and all(
                        other in chosen for other in _sharing_stem(photo.parent, stem, sidecar)):
                    # Lightroom's IMG_1.xmp belongs to every IMG_1.* photo: it goes only with the
                    # last of them (moved with the first, the others would lose it).
                    found.append(sidecar)
        own = photo.parent / SIDECAR_FOLDER / (photo.name + ".json")
        if _is_file(own):
            found.append(own)
        return found

    # -- moving --

    def resolve(self, moves: list[Move], dry_run: bool = False) -> list[Move]:
        """Moves each planned file into quarantine, journaled; with `dry_run`, changes nothing
        (not even the journal) and returns what would move."""
        if dry_run:
            return list(moves)
        done: list[Move] = []
        with self._locked() as fd:
            self._recover(fd)
            for move in moves:
                move = replace(move, id=uuid.uuid4().hex)
                if move.kind == "link":
                    self._link(fd, move)
                else:
                    self._move(fd, replace(move, kind="move"))
                done.append(move)
        return done

    def restore(self, paths: Iterable[Path] | None = None) -> list[Move]:
        """Puts back every quarantined file (or those of the photos named, sidecars included);
        returns the restores made."""
        wanted = None if paths is None else {Path(os.path.abspath(p)) for p in paths}
        done: list[Move] = []
        refused: list[str] = []
        with self._locked() as fd:
            self._recover(fd)
            for moved in self._state().quarantined.values():
                if wanted is not None and moved.photo not in wanted and moved.src not in wanted:
                    continue
                if not os.path.lexists(moved.dst):
                    # Emptied from quarantine by the user (theirs to do): nothing to put back.
                    self._write(fd, {"op": "gone", "id": moved.id})
                    continue
                back = Move(src=moved.dst, dst=moved.src, photo=moved.photo, size=moved.size,
                            mtime_ns=moved.mtime_ns, group=moved.group, kind="restore",
                            id=uuid.uuid4().hex, of=moved.id)
                try:
                    if moved.kind == "link":
                        self._unlink(fd, back, moved)
                    else:
                        self._move(fd, back)
                except QuarantineError as exc:
                    refused.append(str(exc))  # the others still go back
                    continue
                done.append(back)
        if refused:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise QuarantineError(f"{refused[0]}{more}; {len(done)} file(s) restored")
        return done

    def recover(self) -> list[Move]:
        """At start: finishes or undoes every move the journal shows begun and not confirmed.
        Returns the moves finished."""
        with self._locked() as fd:
            return self._recover(fd)

    def _move(self, fd: int, move: Move) -> None:
        move.dst.parent.mkdir(parents=True, exist_ok=True)
        if move.dst.parent.stat().st_dev != os.lstat(move.src).st_dev:
            raise CrossDevice(f"{move.src}: on another filesystem than {move.dst.parent}")
        self._write(fd, _move_entry(move))
        _fault_point()
        try:
            linked = _new_name(move.src, move.dst)
        except FileExistsError:
            self._write(fd, {"op": "undone", "id": move.id})
            raise DestinationExists(f"{move.dst}: already exists; {move.src} was left where it is") from None
        except OSError as exc:
            self._write(fd, {"op": "undone", "id": move.id})
            if exc.errno == errno.EXDEV:
                raise CrossDevice(f"{move.src}: on another filesystem than {move.dst}") from None
            raise QuarantineError(f"cannot move {move.src} to {move.dst}: {exc.strerror}") from None
        _fsync_dir(move.dst.parent)
        _fault_point()
        if linked:
            os.unlink(move.src)
        _fsync_dir(move.src.parent)
        _fault_point()
        self._write(fd, {"op": "done", "id": move.id})
        _fault_point()

    def _link(self, fd: int, move: Move) -> None:
        assert move.keeper is not None
        copy, kept, temporary = move.src, move.dst, _link_temporary(move.src)
        kept.parent.mkdir(parents=True, exist_ok=True)
        self._write(fd, _move_entry(move))
        _fault_point()
        try:
            os.link(copy, kept, follow_symlinks=False)  # the copy's bytes, also in quarantine
        except OSError as exc:
            self._write(fd, {"op": "undone", "id": move.id})
            raise QuarantineError(f"cannot keep {copy} in quarantine: {exc.strerror}") from None
        _fsync_dir(kept.parent)
        _fault_point()
        try:
            os.link(move.keeper, temporary, follow_symlinks=False)
        except OSError as exc:
            os.unlink(kept)  # a second name of the copy, which is still at its place
            self._write(fd, {"op": "undone", "id": move.id})
            raise QuarantineError(f"cannot link {move.keeper} as {copy}: {exc.strerror}") from None
        _fault_point()
        # A rename over the copy's name is safe here, and only here: its inode is kept in
        # quarantine (checked just before), so the name is all that is replaced.
        if not os.path.samefile(copy, kept):
            os.unlink(temporary)
            self._write(fd, {"op": "undone", "id": move.id})
            raise QuarantineError(f"{copy}: changed while being linked; its bytes are in {kept}")
        os.rename(temporary, copy)
        _fsync_dir(copy.parent)
        _fault_point()
        self._write(fd, {"op": "done", "id": move.id})
        _fault_point()

    def _unlink(self, fd: int, back: Move, moved: Move) -> None:
        """Puts a linked copy's bytes back under its name, in place of the keeper's link."""
        kept, name, temporary = back.src, back.dst, _link_temporary(back.dst)
        now = _lstat(name)
        # The name must still be a link to the keeper's bytes (another name keeps them); a file
        # put there since, or the keeper's last name, is never replaced.
        if now is not None and (now.st_ino == moved.ino or now.st_nlink < 2 or os.path.lexists(temporary)):
            raise DestinationExists(f"{name}: changed since it became a link; {kept} was left in quarantine")
        back = replace(back, kind="unlink", ino=moved.ino, over=0 if now is None else now.st_ino)
        self._write(fd, _move_entry(back))
        _fault_point()
        try:
            name.parent.mkdir(parents=True, exist_ok=True)
            # The name is free: nothing to replace; else a temporary name, renamed over it.
            os.link(kept, name if now is None else temporary, follow_symlinks=False)
        except OSError as exc:
            self._write(fd, {"op": "undone", "id": back.id})
            raise QuarantineError(f"cannot put {kept} back as {name}: {exc.strerror}") from None
        if now is not None:
            _fault_point()
            # Replaces one name of the keeper's inode (it has another: checked above).
            os.rename(temporary, name)
        _fsync_dir(name.parent)
        _fault_point()
        os.unlink(kept)
        _fsync_dir(kept.parent)
        _fault_point()
        self._write(fd, {"op": "done", "id": back.id})
        _fault_point()

    def _recover_link(self, fd: int, move: Move) -> bool:
        copy, kept, temporary = _lstat(move.src), _lstat(move.dst), _lstat(_link_temporary(move.src))
        if kept is not None and kept.st_ino == move.ino and (copy is None or copy.st_ino != move.ino):
            self._write(fd, {"op": "done", "id": move.id})  # the rename was made
            return True
        if temporary is not None and temporary.st_nlink > 1 and temporary.st_ino != move.ino:
            os.unlink(_link_temporary(move.src))  # a second name of the keeper
        if copy is not None and kept is not None and copy.st_ino == kept.st_ino:
            os.unlink(move.dst)  # a second name of the copy, which is still at its place
        self._write(fd, {"op": "undone", "id": move.id})
        return False

    def _recover_unlink(self, fd: int, move: Move) -> bool:
        name, kept = _lstat(move.dst), _lstat(move.src)
        temporary = _lstat(_link_temporary(move.dst))
        if name is not None and name.st_ino == move.ino:
            if kept is not None and kept.st_ino == move.ino:
                os.unlink(move.src)
            self._write(fd, {"op": "done", "id": move.id})
            return True
        if temporary is not None and kept is not None and temporary.st_ino == kept.st_ino == move.ino:
            os.unlink(_link_temporary(move.dst))
        self._write(fd, {"op": "undone", "id": move.id})
        return False

    def _recover(self, fd: int) -> list[Move]:
        finished: list[Move] = []
        for move in self._state().begun.values():
            if move.kind in ("link", "unlink"):
                recover = self._recover_link if move.kind == "link" else self._recover_unlink
                if recover(fd, move):
                    finished.append(move)
                continue
            src, dst = _lstat(move.src), _lstat(move.dst)
            if src is not None and dst is not None and (src.st_dev, src.st_ino) == (dst.st_dev, dst.st_ino):
                # Killed between link and unlink: two names, one file. Drop the source's name.
                os.unlink(move.src)
                _fsync_dir(move.src.parent)
                self._write(fd, {"op": "done", "id": move.id})
                finished.append(move)
            elif src is None and dst is not None:
                self._write(fd, {"op": "done", "id": move.id})  # killed after the unlink
                finished.append(move)
            else:
                # Not started (or dst is another file, or both gone by someone else's hand):
                # the file is where it was, and the journal says so.
                self._write(fd, {"op": "undone", "id": move.id})
        return finished


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


# renameat2(2)'s flag: fail with EEXIST rather than replace the destination.
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _new_name(src: Path, dst: Path) -> bool:
    """Gives src's file the name dst, never replacing a file at dst (FileExistsError). Returns
    True when src is still a name of it (a hard link was made: the caller unlinks src)."""
    try:
        # link, not rename: it fails when dst exists instead of replacing it.
        os.link(src, dst, follow_symlinks=False)
        return True
    except OSError as exc:
        # fs.protected_hardlinks: a service user may not link a file it neither owns nor may
        # write, though it may rename it in a folder it can write (EPERM); some filesystems have
        # no hard links (EPERM, EOPNOTSUPP), or the file has all it may (EMLINK). Renaming
        # without replacing needs renameat2's RENAME_NOREPLACE (glibc 2.28; ext4, xfs, btrfs, tmpfs).
        if exc.errno not in (errno.EPERM, errno.EACCES, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.EPERM, "cannot make a hard link, and renameat2 is missing")
    if renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))  # EEXIST makes a FileExistsError
    return False


def _link_temporary(name: Path) -> Path:
    """Where the keeper's new link is made before it is renamed over a copy's name (one fixed
    name, so that recovery finds it)."""
    return name.with_name(f".{name.name}.dupwatch-link")


def _regular(path: Path) -> None:
    info = _lstat(path)
    if info is None:
        raise QuarantineError(f"{path}: no such file")
    if not stat.S_ISREG(info.st_mode):
        raise QuarantineError(f"{path}: not a regular file")


def _is_file(path: Path) -> bool:
    info = _lstat(path)
    return info is not None and stat.S_ISREG(info.st_mode)


def _sharing_stem(folder: Path, stem: str, sidecar: Path) -> list[Path]:
    """The other files of `folder` named `stem.<ext>` (photos a shared sidecar also belongs to)."""
    out: list[Path] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            base, ext = os.path.splitext(name)
            if base == stem and ext.lower() != ".xmp" and entry.is_file(follow_symlinks=False):
                out.append(folder / name)
    return out
