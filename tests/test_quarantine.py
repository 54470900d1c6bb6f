"""The quarantine: real files moved and put back, real processes killed with SIGKILL mid-journal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dupwatch.quarantine import CrossDevice, DestinationExists, Quarantine, QuarantineError

SHARED = Path("/work/shared/data/photos/kodak")
LATIN1 = os.fsdecode(b"caf\xe9 \xff.png")  # a name that is not UTF-8 (an old Windows share)
MTIME = 1_600_000_000_123_456_789


def _photo(i: int) -> Path:
    return SHARED / f"kodim{i:02d}.png"


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Photos with every kind of sidecar, each file with its own mtime."""
    if not SHARED.is_dir():
        pytest.skip("shared photos missing")
    root = tmp_path / "lib"
    (root / "2024" / ".dupwatch").mkdir(parents=True)
    (root / "raw").mkdir()
    files: dict[Path, Path | bytes] = {
        root / "2024" / "a.png": _photo(1),
        root / "2024" / "a.png.xmp": b"<x:xmpmeta>a</x:xmpmeta>",
        root / "2024" / "a.xmp": b"<x:xmpmeta>lightroom a</x:xmpmeta>",
        root / "2024" / ".dupwatch" / "a.png.json": b'{"event":"duplicate"}\n',
        root / "2024" / LATIN1: _photo(2),
        root / "2024" / (LATIN1 + ".xmp"): b"<x:xmpmeta>latin</x:xmpmeta>",
        root / "raw" / "IMG_1.png": _photo(3),
        root / "raw" / "IMG_1.tif": _photo(4),  # shares the stem: IMG_1.xmp is both files'
        root / "raw" / "IMG_1.xmp": b"<x:xmpmeta>shared</x:xmpmeta>",
    }
    for n, (path, source) in enumerate(files.items()):
        if isinstance(source, Path):
            shutil.copyfile(source, path)
        else:
            path.write_bytes(source)
        os.utime(path, ns=(MTIME + n, MTIME + n))
    return root


def snapshot(root: Path) -> dict[bytes, tuple[bytes, int]]:
    """Every regular file under root: its bytes and mtime, by its path's bytes."""
    out: dict[bytes, tuple[bytes, int]] = {}
    for folder, _dirs, names in os.walk(os.fsencode(root)):
        for name in names:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, os.fsencode(root))] = (Path(os.fsdecode(path)).read_bytes(),
                                                              os.stat(path).st_mtime_ns)
    return out


def quarantine(tmp_path: Path) -> Quarantine:
    return Quarantine(tmp_path / "quarantine", tmp_path / "cache" / "quarantine.jsonl")


def test_plan_takes_sidecars_and_keeps_shared_ones(library: Path, tmp_path: Path) -> None:
    q = quarantine(tmp_path)
    a = library / "2024" / "a.png"
    moves = q.plan([a, library / "2024" / LATIN1, library / "raw" / "IMG_1.png"], group="g1")
    moved = {m.src for m in moves}
    assert moved == {a, a.with_name("a.png.xmp"), a.with_name("a.xmp"),
                     a.parent / ".dupwatch" / "a.png.json", library / "2024" / LATIN1,
                     library / "2024" / (LATIN1 + ".xmp"), library / "raw" / "IMG_1.png"}
    # IMG_1.xmp stays: IMG_1.tif, which stays too, is its photo as well.
    assert all(m.dst == q.folder / str(m.src).lstrip("/") for m in moves)
    assert all(m.group == "g1" for m in moves)
    both = q.plan([library / "raw" / "IMG_1.png", library / "raw" / "IMG_1.tif"])
    assert library / "raw" / "IMG_1.xmp" in {m.src for m in both}


def test_dry_run_changes_nothing(library: Path, tmp_path: Path) -> None:
    q = quarantine(tmp_path)
    before = snapshot(tmp_path)
    moves = q.plan([library / "2024" / "a.png"])
    assert q.resolve(moves, dry_run=True) == moves
    assert snapshot(tmp_path) == before
    assert not q.journal.exists() and not q.folder.exists()


def test_resolve_then_restore_gives_back_every_byte(library: Path, tmp_path: Path) -> None:
    q = quarantine(tmp_path)
    before = snapshot(library)
    photos = [library / "2024" / "a.png", library / "2024" / LATIN1, library / "raw" / "IMG_1.png"]
    done = q.resolve(q.plan(photos, group="g1"))
    assert len(done) == 7
    for move in done:
        assert not os.path.lexists(move.src)
        assert move.dst.read_bytes() == before[os.fsencode(move.src.relative_to(library))][0]
        assert move.dst.stat().st_mtime_ns == move.mtime_ns
    assert sorted(str(m.src) for m in q.quarantined()) == sorted(str(m.src) for m in done)
    # A second Quarantine (a later process) reads the same state from the journal.
    restored = quarantine(tmp_path).restore()
    assert len(restored) == 7
    assert snapshot(library) == before
    assert q.quarantined() == []


def test_restore_one_photo_takes_its_sidecars(library: Path, tmp_path: Path) -> None:
    q = quarantine(tmp_path)
    a = library / "2024" / "a.png"
    q.resolve(q.plan([a, library / "2024" / LATIN1]))
    back = q.restore([library / "2024" / LATIN1])
    assert {m.dst for m in back} == {library / "2024" / LATIN1, library / "2024" / (LATIN1 + ".xmp")}
    assert {m.src for m in q.quarantined()} == {a, a.with_name("a.png.xmp"), a.with_name("a.xmp"),
                                                a.parent / ".dupwatch" / "a.png.json"}


def test_existing_destination_is_never_overwritten(library: Path, tmp_path: Path) -> None:
    q = quarantine(tmp_path)
    a = library / "2024" / "a.png"
    taken = q.target(a)
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"someone else's")
    with pytest.raises(DestinationExists):
        q.plan([a])
    # Planned before the place was taken: the move is refused at link time, recorded undone.
    taken.unlink()
    moves = q.plan([a])
    taken.write_bytes(b"someone else's")
    with pytest.raises(DestinationExists):
        q.resolve(moves)
    assert taken.read_bytes() == b"someone else's"
    assert a.read_bytes() == _photo(1).read_bytes()
    assert q.quarantined() == []
    # Restoring onto a path a new file has taken leaves both files as they are.
    taken.unlink()
    q.resolve(q.plan([library / "raw" / "IMG_1.png"]))
    q.resolve(q.plan([library / "2024" / "a.png"]))
    (library / "raw" / "IMG_1.png").write_bytes(b"new file")
    with pytest.raises(QuarantineError, match=r"already exists; .*4 file"):
        q.restore()  # the other photo and its sidecars still go back
    assert (library / "raw" / "IMG_1.png").read_bytes() == b"new file"
    assert q.target(library / "raw" / "IMG_1.png").read_bytes() == _photo(3).read_bytes()
    assert len(q.quarantined()) == 1
    assert (library / "2024" / "a.png").read_bytes() == _photo(1).read_bytes()


def test_a_file_emptied_from_quarantine_is_forgotten(library: Path, tmp_path: Path) -> None:
    q = quarantine(tmp_path)
    q.resolve(q.plan([library / "raw" / "IMG_1.png", library / "2024" / LATIN1]))
    q.target(library / "raw" / "IMG_1.png").unlink()  # the user empties part of the quarantine
    assert {m.dst for m in q.restore()} == {library / "2024" / LATIN1, library / "2024" / (LATIN1 + ".xmp")}
    assert q.quarantined() == []
    assert q.restore() == []


def test_another_filesystem_is_refused(library: Path, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("/dev/shm is not a separate filesystem here")
    folder = shm / f"dupwatch-quarantine-{os.getpid()}"
    try:
        q = Quarantine(folder, tmp_path / "quarantine.jsonl")
        before = snapshot(library)
        with pytest.raises(CrossDevice) as error:
            q.plan([library / "2024" / "a.png"])
        assert "\n" not in str(error.value) and "another filesystem" in str(error.value)
        assert snapshot(library) == before
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_torn_last_journal_line_is_ignored(library: Path, tmp_path: Path) -> None:
    q = quarantine(tmp_path)
    q.resolve(q.plan([library / "raw" / "IMG_1.png"]))
    with open(q.journal, "ab") as journal:
        journal.write(b'{"op":"begin","id":"x","kind":"mo')
    assert len(q.quarantined()) == 1
    # The next writer starts a line of its own: its entries are not lost to the torn one.
    q.resolve(q.plan([library / "2024" / LATIN1]))
    assert len(quarantine(tmp_path).quarantined()) == 3
    assert len(q.restore()) == 3


def test_a_missing_photo_is_one_line(library: Path, tmp_path: Path) -> None:
    with pytest.raises(QuarantineError, match="no such file"):
        quarantine(tmp_path).plan([library / "nowhere.png"])


RUN = """
import sys
import tempfile
from pathlib import Path
from dupwatch.quarantine import Quarantine
q = Quarantine(Path(sys.argv[1]), Path(sys.argv[2]))
if sys.argv[3] == "resolve":
    q.resolve(q.plan([Path(p) for p in sys.argv[4:]], group="g"))
else:
    q.restore()
"""


def _run(tmp_path: Path, step: int, *args: str) -> int:
    q = quarantine(tmp_path)
    env = {**os.environ, "DUPWATCH_FAULT": f"quarantine:{step}"}
    return subprocess.run([sys.executable, "-c", RUN, str(q.folder), str(q.journal), *args],
                          env=env, timeout=60).returncode


def _one_place_each(library: Path, q: Quarantine, before: dict[bytes, tuple[bytes, int]],
                    recovered: bool = True) -> None:
    """Every file of `before` is in exactly one place, the library or quarantine, bytes and
    mtime intact, and the journal says which. Before recovery a file may also have both names
    of one inode (killed between link and unlink)."""
    quarantined = {m.src for m in q.quarantined()}
    for rel, (data, mtime) in before.items():
        home = library / os.fsdecode(rel)
        away = q.target(home)
        places = [p for p in (home, away) if os.path.lexists(p)]
        if not recovered and len(places) == 2:
            assert os.path.samefile(home, away), rel
            places = places[:1]
        assert len(places) == 1, (rel, places)
        assert places[0].read_bytes() == data and places[0].stat().st_mtime_ns == mtime
        if recovered:
            assert (places[0] == away) == (home in quarantined), rel


@pytest.mark.parametrize("action", ["resolve", "restore"])
def test_sigkill_at_every_journal_step_loses_nothing(library: Path, tmp_path: Path, action: str) -> None:
    photos = [str(library / "2024" / "a.png"), str(library / "2024" / LATIN1)]
    pristine = tmp_path / "pristine"
    shutil.copytree(library, pristine, symlinks=True)
    before = snapshot(library)
    step, killed = 1, 0
    while True:
        shutil.rmtree(library)
        shutil.rmtree(tmp_path / "quarantine", ignore_errors=True)
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
        shutil.copytree(pristine, library, symlinks=True)
        if action == "restore":
            assert _run(tmp_path, 0, "resolve", *photos) == 0
            code = _run(tmp_path, step, "restore")
        else:
            code = _run(tmp_path, step, "resolve", *photos)
        q = quarantine(tmp_path)
        if code == 0:
            break
        assert code == -signal.SIGKILL, code
        killed += 1
        _one_place_each(library, q, before, recovered=False)  # as the kill left it: nothing lost
        q.recover()
        assert q._state().begun == {}
        _one_place_each(library, q, before)
        # And from there, everything comes back.
        q.restore()
        assert snapshot(library) == before
        step += 1
    assert killed == 6 * 4  # 6 files (2 photos, 4 sidecars), 4 steps each


def _copy_of_keeper(library: Path) -> tuple[Path, Path]:
    """An exact copy of a photo (its own mtime), with a sidecar that stays with its name."""
    keeper, copy = library / "2024" / "a.png", library / "raw" / "copy of a.png"
    shutil.copyfile(keeper, copy)
    (library / "raw" / "copy of a.png.xmp").write_bytes(b"<x:xmpmeta>copy</x:xmpmeta>")
    os.utime(copy, ns=(MTIME - 7, MTIME - 7))
    return keeper, copy


def test_hardlink_keeps_the_copy_in_quarantine_and_restores_it(library: Path, tmp_path: Path) -> None:
    keeper, copy = _copy_of_keeper(library)
    before = snapshot(library)
    q = Quarantine(tmp_path / "quarantine", tmp_path / "cache" / "quarantine.jsonl", hardlink=True)
    done = q.resolve([q.plan_link(copy, keeper, group="g1")])
    assert [m.kind for m in done] == ["link"]
    assert os.path.samefile(copy, keeper)
    kept = q.target(copy)
    assert kept.read_bytes() == before[b"raw/copy of a.png"][0]
    assert kept.stat().st_mtime_ns == MTIME - 7  # the copy's own inode, not the keeper's
    assert (library / "raw" / "copy of a.png.xmp").exists()
    assert keeper.stat().st_mtime_ns == before[b"2024/a.png"][1]
    assert [m.kind for m in q.restore([copy])] == ["restore"]
    assert not os.path.samefile(copy, keeper)
    assert snapshot(library) == before
    assert not os.path.lexists(kept)


def test_hardlink_refused_unless_allowed_and_exact(library: Path, tmp_path: Path) -> None:
    keeper, copy = _copy_of_keeper(library)
    with pytest.raises(QuarantineError, match=r"actions\.hardlink"):
        quarantine(tmp_path).plan_link(copy, keeper)
    q = Quarantine(tmp_path / "quarantine", tmp_path / "cache" / "quarantine.jsonl", hardlink=True)
    with pytest.raises(QuarantineError, match="not an exact copy"):
        q.plan_link(library / "raw" / "IMG_1.png", keeper)
    # A name changed since it became a link (a new file there) is never replaced by a restore.
    q.resolve([q.plan_link(copy, keeper)])
    copy.unlink()
    copy.write_bytes(b"edited since")
    with pytest.raises(QuarantineError, match="changed since"):
        q.restore()
    assert copy.read_bytes() == b"edited since" and len(q.quarantined()) == 1


LINK = """
import sys
import tempfile
from pathlib import Path
from dupwatch.quarantine import Quarantine
q = Quarantine(Path(sys.argv[1]), Path(sys.argv[2]), hardlink=True)
if sys.argv[3] == "link":
    q.resolve([q.plan_link(Path(sys.argv[4]), Path(sys.argv[5]))])
else:
    q.restore()
"""


@pytest.mark.parametrize("action", ["link", "unlink"])
def test_sigkill_at_every_step_of_a_hardlink_loses_nothing(library: Path, tmp_path: Path,
                                                           action: str) -> None:
    keeper, copy = _copy_of_keeper(library)
    pristine = tmp_path / "pristine"
    shutil.copytree(library, pristine, symlinks=True)
    before = snapshot(library)
    q = Quarantine(tmp_path / "quarantine", tmp_path / "cache" / "quarantine.jsonl", hardlink=True)
    kept = q.target(copy)

    def run(step: int, *args: str) -> int:
        env = {**os.environ, "DUPWATCH_FAULT": f"quarantine:{step}"}
        return subprocess.run([sys.executable, "-c", LINK, str(q.folder), str(q.journal), *args],
                              env=env, timeout=60).returncode

    step, killed = 1, 0
    while True:
        for folder in (library, tmp_path / "quarantine", tmp_path / "cache"):
            shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(pristine, library, symlinks=True)
        if action == "unlink":
            assert run(0, "link", str(copy), str(keeper)) == 0
        code = run(step, *(("link", str(copy), str(keeper)) if action == "link" else ("unlink",)))
        if code == 0:
            break
        assert code == -signal.SIGKILL, code
        killed += 1
        # The copy's own inode (its mtime tells it apart) has a name, at its place or in quarantine.
        assert any(os.path.lexists(p) and p.stat().st_mtime_ns == MTIME - 7 for p in (copy, kept))
        q.recover()
        assert q._state().begun == {}
        assert not os.path.lexists(copy.with_name(".copy of a.png.dupwatch-link"))
        assert keeper.read_bytes() == before[b"2024/a.png"][0]
        if q.quarantined():
            assert os.path.samefile(copy, keeper) and kept.stat().st_mtime_ns == MTIME - 7
        else:
            assert not os.path.lexists(kept) and copy.stat().st_mtime_ns == MTIME - 7
            assert not os.path.samefile(copy, keeper)
        q.restore()
        assert snapshot(library) == before
        step += 1
    assert killed == 5  # begin, link into quarantine, temporary link, rename, done


NOBODY = 65534
SYSTEM_PYTHON = Path("/usr/bin/python3")  # readable by any user (the venv's may not be)


def test_a_file_the_service_may_not_link_is_renamed_never_over_another(tmp_path: Path) -> None:
    """fs.protected_hardlinks: a service user that may write a folder but not a photo of another
    owner cannot link it; the photo is renamed instead (without replacing), killed at every step."""
    if os.geteuid() != 0 or not SYSTEM_PYTHON.exists() or not shutil.which("setpriv"):
        pytest.skip("needs root (to run a resolve as another user) and /usr/bin/python3")
    if Path("/proc/sys/fs/protected_hardlinks").read_text().strip() != "1":
        pytest.skip("fs.protected_hardlinks is off: the link would be allowed")
    base = Path(tempfile.mkdtemp(prefix="dupwatch-quarantine-", dir="/tmp"))
    try:
        library = base / "lib"
        library.mkdir()
        photos = [library / "a.png", library / LATIN1]
        for n, photo in enumerate(photos):
            shutil.copyfile(_photo(n + 5), photo)
            os.chmod(photo, 0o644)  # root's, read-only to the service user
            os.utime(photo, ns=(MTIME + n, MTIME + n))
        for folder in (base, library):
            os.chmod(folder, 0o777)  # noqa: S103 (the service user writes the folder, not the photos)
        before = snapshot(library)
        q = Quarantine(base / "quarantine", base / "cache" / "quarantine.jsonl")
        worktree = Path(__file__).resolve().parent.parent

        def run(step: int, *args: str) -> int:
            env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(worktree),
                   "DUPWATCH_FAULT": f"quarantine:{step}"}
            return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                   str(SYSTEM_PYTHON), "-c", RUN, str(q.folder), str(q.journal), *args],
                                  env=env, timeout=60).returncode

        step, killed = 1, 0
        while True:
            code = run(step, "resolve", *map(str, photos))
            if code == 0:
                break
            assert code == -signal.SIGKILL, code
            killed += 1
            q.recover()
            _one_place_each(library, q, before)
            assert run(0, "restore") == 0
            assert snapshot(library) == before
            step += 1
        assert killed == 2 * 4  # the same four steps; after a rename, no second name to drop
        for photo in photos:
            assert not os.path.lexists(photo)
            assert os.stat(q.target(photo)).st_uid == 0  # the same file, not a copy the service made
        # Never over another file: a restore onto a path taken since leaves both alone.
        photos[0].write_bytes(b"new")
        assert run(0, "restore") != 0
        assert photos[0].read_bytes() == b"new"
        assert q.target(photos[0]).read_bytes() == _photo(5).read_bytes()
        assert (library / LATIN1).read_bytes() == _photo(6).read_bytes()
    finally:
        shutil.rmtree(base)
