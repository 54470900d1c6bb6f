"""The XMP sidecar tag: merged into `IMG.JPG.xmp` as digiKam, darktable and Immich read it, every
other field kept, the photo untouched. Read back with exiftool, not with the library that wrote it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from dupwatch.errors import ExitCode
from tests.conftest import run

# A sidecar as darktable and digiKam leave it: a rating, a history, tags, a caption.
EXISTING = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:darktable="http://darktable.sf.net/"
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
   xmp:Rating="4"
   darktable:history_end="2">
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:operation="exposure" darktable:enabled="1" darktable:params="0000c0bf"/>
     <rdf:li darktable:operation="crop" darktable:enabled="1" darktable:params="cdcc4c3e"/>
    </rdf:Seq>
   </darktable:history>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">Morning coffee</rdf:li></rdf:Alt></dc:description>
   <dc:subject><rdf:Bag><rdf:li>breakfast</rdf:li></rdf:Bag></dc:subject>
   <digiKam:TagsList><rdf:Seq><rdf:li>Food/breakfast</rdf:li></rdf:Seq></digiKam:TagsList>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>Food|breakfast</rdf:li></rdf:Bag></lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def exiftool(path: Path) -> dict[str, Any]:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is missing: apt-get install libimage-exiftool-perl (.ci/run does)")
    out = subprocess.run(["exiftool", "-j", "-struct", "-G1", str(path)], capture_output=True, text=True,
                         check=True).stdout
    record: dict[str, Any] = json.loads(out)[0]
    return record


def xmp_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"notices": {"xmp": {"enabled": True}}}))
    return path


def test_the_tag_merges_into_an_existing_sidecar(tmp_path: Path, photos: Path, cache: Path) -> None:
    copy = photos / "zz coffee copy.png"
    shutil.copy(photos / "coffee.png", copy)
    sidecar = photos / "zz coffee copy.png.xmp"
    sidecar.write_text(EXISTING, encoding="utf-8")
    photo_before = copy.read_bytes(), copy.stat().st_mtime_ns

    assert run("scan", photos, "--config", xmp_config(tmp_path), "--cache", cache).code == ExitCode.OK
    tags = exiftool(sidecar)
    assert tags["XMP-digiKam:TagsList"] == ["Food/breakfast", "dupwatch/duplicate"]
    assert tags["XMP-lr:HierarchicalSubject"] == ["Food|breakfast", "dupwatch|duplicate"]
    assert tags["XMP-dc:Subject"] == ["breakfast", "duplicate"]
    assert tags["XMP-dupwatch:DuplicateOf"] == str(photos / "coffee.png")
    assert tags["XMP-dupwatch:Method"] == "sha256"
    # Everything else is kept as it was.
    assert tags["XMP-xmp:Rating"] == 4
    assert tags["XMP-dc:Description"] == "Morning coffee"
    assert tags["XMP-darktable:History_end"] == 2
    assert [(h["Operation"], h["Params"]) for h in tags["XMP-darktable:History"]] == [
        ("exposure", "0000c0bf"), ("crop", "cdcc4c3e")]
    # The photo is never touched; no Lightroom-style sidecar appears beside the darktable one.
    assert (copy.read_bytes(), copy.stat().st_mtime_ns) == photo_before
    assert not (photos / "zz coffee copy.xmp").exists()
    assert sorted(p.name for p in photos.iterdir() if p.suffix == ".xmp") == ["zz coffee copy.png.xmp"]
    assert not [p for p in photos.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_new_sidecar_is_made_and_a_broken_one_left_alone(tmp_path: Path, photos: Path, cache: Path) -> None:
    shutil.copy(photos / "rocket.jpg", photos / "zz rocket copy.jpg")
    shutil.copy(photos / "camera.png", photos / "zz camera copy.png")
    broken = photos / "zz camera copy.png.xmp"
    broken.write_text("<x:xmpmeta this is not XMP")
    result = run("scan", photos, "--config", xmp_config(tmp_path), "--cache", cache)
    assert result.code == ExitCode.OK
    assert f"notices.xmp: {broken}:" in result.err and "left as it was" in result.err
    assert broken.read_text() == "<x:xmpmeta this is not XMP"
    made = exiftool(photos / "zz rocket copy.jpg.xmp")
    assert made["XMP-digiKam:TagsList"] == ["dupwatch/duplicate"]
    assert made["XMP-dc:Subject"] == ["duplicate"]
    assert made["XMP-dupwatch:DuplicateOf"] == str(photos / "rocket.jpg")
    # Scanned again (a sidecar is not a photo): nothing new, and the tag is not added twice.
    again = run("scan", photos, "--config", xmp_config(tmp_path), "--cache", cache, "--json")
    assert again.events("summary")[0]["indexed"] == 0
    assert exiftool(photos / "zz rocket copy.jpg.xmp")["XMP-dc:Subject"] == ["duplicate"]


UNDER_THE_UNITS_UMASK = ("import os, sys; os.umask(0o077); from dupwatch.cli import main; "
                         "sys.exit(main(sys.argv[1:]))")
TWO_PAIRS = {"coffee.png": "coffee.png", "zz coffee copy.png": "coffee.png",
             "rocket.jpg": "rocket.jpg", "zz rocket copy.jpg": "rocket.jpg"}
PHOTO_OWNER, SIDECAR_OWNER = (4321, 4322), (4323, 4324)  # users and groups no test runs as


def few_photos(photo_dir: Path, tmp_path: Path, layout: dict[str, str]) -> Path:
    """A folder of `layout`'s names, each a copy of the shared photo it names."""
    folder = tmp_path / "few"
    for name, original in layout.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo_dir / original, folder / name)
    return folder


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid, st.st_mode & 0o7777


def test_sidecars_belong_to_the_photos_owner_under_the_units_umask(
        tmp_path: Path, photo_dir: Path, cache: Path) -> None:
    folder = few_photos(photo_dir, tmp_path, TWO_PAIRS)
    root = os.geteuid() == 0
    new_photo = folder / "zz rocket copy.jpg"
    new_photo.chmod(0o754)  # the photo manager's group may read it; no execute bit for a sidecar
    merged = folder / "zz coffee copy.png.xmp"
    merged.write_text(EXISTING, encoding="utf-8")
    merged.chmod(0o640)
    if root:
        os.chown(new_photo, *PHOTO_OWNER)
        os.chown(merged, *SIDECAR_OWNER)
    merged_before = owner_and_mode(merged)

    result = subprocess.run([sys.executable, "-c", UNDER_THE_UNITS_UMASK, "scan", str(folder),
                             "--config", str(xmp_config(tmp_path)), "--cache", str(cache)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == ExitCode.OK, result.stderr
    made = folder / "zz rocket copy.jpg.xmp"
    assert exiftool(made)["XMP-digiKam:TagsList"] == ["dupwatch/duplicate"]
    assert owner_and_mode(made)[2] == 0o644  # not the umask's 0600
    assert exiftool(merged)["XMP-digiKam:TagsList"] == ["Food/breakfast", "dupwatch/duplicate"]
    assert owner_and_mode(merged) == merged_before  # not root's, though root renamed over it
    if root:
        assert owner_and_mode(made)[:2] == PHOTO_OWNER
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_the_match_is_named_by_its_path_and_untag_reads_both_forms(
        tmp_path: Path, photo_dir: Path, cache: Path) -> None:
    # Two cameras' IMG_0001.JPG in two folders; the copy duplicates the one in b/ only.
    folder = few_photos(photo_dir, tmp_path, {"a/IMG_0001.JPG": "coffee.png", "b/IMG_0001.JPG": "rocket.jpg",
                                              "c/zz copy.jpg": "rocket.jpg"})
    assert run("scan", folder, "--config", xmp_config(tmp_path), "--cache", cache).code == ExitCode.OK
    copy = folder / "c" / "zz copy.jpg"
    tags = exiftool(folder / "c" / "zz copy.jpg.xmp")
    assert tags["XMP-dupwatch:DuplicateOf"] == str(folder / "b" / "IMG_0001.JPG")
    assert tags["XMP-dupwatch:DuplicateOfName"] == "IMG_0001.JPG"

    from dupwatch.sinks.xmp import XmpTag

    # The other folder's IMG_0001.JPG is not the one: the tag stays.
    assert XmpTag().untag(str(copy), str(folder / "a" / "IMG_0001.JPG")) is False
    assert exiftool(folder / "c" / "zz copy.jpg.xmp")["XMP-dupwatch:DuplicateOf"].endswith("b/IMG_0001.JPG")
    assert XmpTag().untag(str(copy), str(folder / "b" / "IMG_0001.JPG")) is True

    # A sidecar an earlier dupwatch wrote names the match by its bare name: untagged by path too.
    old = folder / "a" / "IMG_0001.JPG.xmp"
    old.write_text(EXISTING.replace(
        'xmlns:lr="http://ns.adobe.com/lightroom/1.0/"',
        'xmlns:lr="http://ns.adobe.com/lightroom/1.0/"\n'
        '    xmlns:dupwatch="https://github.com/dupwatch/dupwatch/xmp/1.0/"\n'
        '   dupwatch:DuplicateOf="IMG_0001.JPG"\n   dupwatch:Method="phash"').replace(
        "<rdf:li>breakfast</rdf:li>", "<rdf:li>breakfast</rdf:li><rdf:li>duplicate</rdf:li>"),
        encoding="utf-8")
    assert exiftool(old)["XMP-dupwatch:DuplicateOf"] == "IMG_0001.JPG"
    assert XmpTag().untag(str(folder / "a" / "IMG_0001.JPG"), str(folder / "b" / "IMG_0001.JPG")) is True
    tags = exiftool(old)
    assert not [key for key in tags if key.startswith("XMP-dupwatch:")]
    assert tags["XMP-dc:Subject"] in ("breakfast", ["breakfast"]) and tags["XMP-xmp:Rating"] == 4


def test_a_sidecar_dupwatch_made_goes_when_untagged_and_one_that_was_there_stays(
        tmp_path: Path, photo_dir: Path, cache: Path) -> None:
    folder = few_photos(photo_dir, tmp_path, TWO_PAIRS)
    existed = folder / "zz coffee copy.png.xmp"
    from dupwatch.sinks.xmp import EMPTY, XmpTag

    existed.write_text(EMPTY, encoding="utf-8")  # there before, even if empty: the user's
    assert run("scan", folder, "--config", xmp_config(tmp_path), "--cache", cache).code == ExitCode.OK
    made = folder / "zz rocket copy.jpg.xmp"
    assert exiftool(made)["XMP-dupwatch:Created"] is True
    assert "XMP-dupwatch:Created" not in exiftool(existed)

    # As `ignore` and the review page call it (a bare name, until they pass the path).
    assert XmpTag().untag(str(folder / "zz rocket copy.jpg"), "rocket.jpg") is True
    assert not made.exists()
    assert XmpTag().untag(str(folder / "zz coffee copy.png"), str(folder / "coffee.png")) is True
    assert existed.exists()
    assert not [key for key in exiftool(existed) if key.startswith("XMP-dupwatch:")]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


SERVICE_USER = 4325  # the unit's User=dupwatch: not root, and no capability unless a drop-in adds one


@pytest.mark.parametrize("capabilities", ["none", "chown"])
def test_sidecars_written_as_the_services_user(capabilities: str, photo_dir: Path) -> None:
    """As dupwatch.service runs: its own user, UMask=0077, and with the drop-in the unit
    describes (CAP_CHOWN) or without. pytest's own folders are root's alone: a shared one."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to run as another user")
    shared = Path(tempfile.mkdtemp(prefix="dupwatch-xmp-"))
    try:
        shared.chmod(0o777)
        folder = few_photos(photo_dir, shared, TWO_PAIRS)
        folder.chmod(0o777)  # the photo folder the unit's ReadWritePaths= opens
        new_photo = folder / "zz rocket copy.jpg"
        new_photo.chmod(0o644)
        os.chown(new_photo, *PHOTO_OWNER)
        merged = folder / "zz coffee copy.png.xmp"
        merged.write_text(EXISTING, encoding="utf-8")
        merged.chmod(0o664)
        os.chown(merged, *SIDECAR_OWNER)
        config = xmp_config(shared)
        caps = ["--inh-caps=+chown", "--ambient-caps=+chown"] if capabilities == "chown" else []
        env = {**os.environ, "XDG_CACHE_HOME": str(shared / "cache"), "XDG_STATE_HOME": str(shared / "state"),
               "XDG_CONFIG_HOME": str(shared / "config")}
        # One worker, in this process: a pool's helper processes start the interpreter again,
        # which a test machine's virtualenv may keep where another user cannot reach it.
        scan = ["scan", str(folder), "--config", str(config), "--workers", "1"]
        result = subprocess.run(
            [setpriv, f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--clear-groups", *caps,
             sys.executable, "-c", UNDER_THE_UNITS_UMASK, *scan],
            capture_output=True, text=True, timeout=300, env=env, cwd=shared)
        assert result.returncode == ExitCode.OK, result.stderr
        assert "notices.xmp" not in result.stderr and "2 duplicates" in result.stderr, result.stderr
        made = folder / "zz rocket copy.jpg.xmp"
        if capabilities == "chown":
            assert owner_and_mode(made) == (*PHOTO_OWNER, 0o644)
            assert owner_and_mode(merged) == (*SIDECAR_OWNER, 0o664)
        else:
            # Readable by the photo manager all the same; only root or CAP_CHOWN gives a file away.
            assert owner_and_mode(made) == (SERVICE_USER, SERVICE_USER, 0o644)
            assert owner_and_mode(merged) == (SERVICE_USER, SERVICE_USER, 0o664)
        assert exiftool(made)["XMP-dupwatch:DuplicateOf"] == str(folder / "rocket.jpg")
        assert exiftool(merged)["XMP-xmp:Rating"] == 4
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    finally:
        shutil.rmtree(shared)
