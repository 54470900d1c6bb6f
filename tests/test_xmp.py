"""The XMP sidecar tag: merged into `IMG.JPG.xmp` as digiKam, darktable and Immich read it, every
other field kept, the photo untouched. Read back with exiftool, not with the library that wrote it."""

from __future__ import annotations

import json
import shutil
import subprocess
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
    assert tags["XMP-dupwatch:DuplicateOf"] == "coffee.png"
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
    assert made["XMP-dupwatch:DuplicateOf"] == "rocket.jpg"
    # Scanned again (a sidecar is not a photo): nothing new, and the tag is not added twice.
    again = run("scan", photos, "--config", xmp_config(tmp_path), "--cache", cache, "--json")
    assert again.events("summary")[0]["indexed"] == 0
    assert exiftool(photos / "zz rocket copy.jpg.xmp")["XMP-dc:Subject"] == ["duplicate"]
