"""Two shots are not two copies: when one camera took two photos at different moments.

A duplicate is an edit of one capture (docs/how-it-decides.md). Pixels cannot always tell a
second shot from an edit: a burst, a second try from the same spot, a pan across a façade agree
as well as a re-save does. The camera says it: EXIF's DateTimeOriginal (with SubSecTimeOriginal,
which tells a burst's frames apart) and its make and model. An editor, an export or a phone's
"save a copy" keeps them as they were; a file that lost them (a messenger strips EXIF, a
screenshot has none of the camera's) leaves the pixels to decide.

The moment and the camera are kept as one stamp per file, `make model|YYYY:MM:DD HH:MM:SS|sub`,
read from the header by the worker that decoded it (`keeper.header_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

_MAKE, _MODEL = 271, 272
_EXIF_IFD = 0x8769
_TAKEN, _SUBSEC = 36867, 37521  # DateTimeOriginal, SubSecTimeOriginal
# A copy whose clock was set right (a camera left on another time zone, a wrong hour fixed in
# Lightroom or digiKam) is moved by whole quarter hours and keeps its seconds: not another shot.
CLOCK_FIX = 15 * 60
CAMERA_CHARS = 120  # make and model, as much as any camera writes
SUBSEC_DIGITS = 6  # microseconds: more digits tell no two frames apart


def stamp(exif: Mapping[int, object], sub: Mapping[int, object]) -> str | None:
    """The camera and moment of a photo from its EXIF (`exif`, its Exif IFD `sub`); None when
    either is missing or unreadable."""
    camera = " ".join(str(exif.get(t) or "").strip("\x00 ") for t in (_MAKE, _MODEL)).strip()
    taken = str(sub.get(_TAKEN) or "").strip("\x00 ")
    if not camera or _moment(taken) is None:
        return None
    subsec = str(sub.get(_SUBSEC) or "").strip("\x00 ")
    # Any bytes may stand in a tag: the stamp kept per file stays a line of a bounded length.
    camera = " ".join(camera.replace("|", " ").split())[:CAMERA_CHARS]
    return f"{camera}|{taken}|{subsec[:SUBSEC_DIGITS] if subsec.isdigit() else ''}"


def apart(a: str | None, b: str | None) -> float | None:
    """How many seconds apart one camera took the photos stamped `a` and `b` (`stamp`); None when
    that is not known to be two shots: either stamp missing, two cameras, the same moment, or a
    clock fix (see CLOCK_FIX)."""
    if a is None or b is None or a.count("|") != 2 or b.count("|") != 2:
        return None
    camera_a, taken_a, sub_a = a.split("|")
    camera_b, taken_b, sub_b = b.split("|")
    when_a, when_b = _moment(taken_a), _moment(taken_b)
    if camera_a != camera_b or when_a is None or when_b is None:
        return None
    seconds = (when_a - when_b).total_seconds()
    if sub_a and sub_b:  # both kept the fraction: a burst's frames differ there
        seconds += float(f"0.{sub_a}") - float(f"0.{sub_b}")
    seconds = abs(seconds)
    if seconds == 0 or seconds % CLOCK_FIX == 0:
        return None
    return seconds


def _moment(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
