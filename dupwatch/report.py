"""How results reach people (aligned text) and scripts (one JSON object per line)."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from typing import Any, TextIO

from dupwatch.errors import SkipFile
from dupwatch.pipeline import Duplicate, Event, Indexed, Unchanged


def shown(text: str) -> str:
    """A file name made safe for a terminal, a log line or a page: a name that is all printable
    is itself; otherwise a byte that is not UTF-8 shows as `\\xe9` (Python reads such a byte as a
    lone surrogate, which no strict UTF-8 output can print), a control character as `\\n`,
    `\\t`, `\\x1b`, and a backslash as `\\\\`, so that an escaped name reads as one name."""
    if text.isprintable():
        return text
    return "".join(_shown(c) for c in text)


def _shown(c: str) -> str:
    if c.isprintable() and c != "\\":
        return c
    if "\udc80" <= c <= "\udcff":
        return f"\\x{ord(c) - 0xDC00:02x}"
    return c.encode("unicode_escape").decode("ascii")


# In JSON a name is a string; a name that is not UTF-8 has no exact JSON string (a lone
# surrogate escape such as "\udce9" is read back by Python but refused by strict parsers), so
# its field holds the name with each such byte as `\xNN`, and `<field>_bytes` its exact bytes
# in base64. A name that is UTF-8 (nearly all) has no `_bytes` field: its string is exact.
BYTES = "_bytes"


def json_line(record: dict[str, Any]) -> str:
    """One JSON object, ASCII only; any str field holding a name that is not UTF-8 gets a
    `<field>_bytes` beside it (see BYTES). `named` reads it back."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        out[key] = value
        if isinstance(value, str) and not value.isascii():
            try:
                raw = os.fsencode(value)
            except UnicodeEncodeError:  # a surrogate no file name holds: json escapes it as it is
                continue
            text = raw.decode("utf-8", "backslashreplace")
            if text != value:
                out[key] = text
                out[key + BYTES] = base64.b64encode(raw).decode("ascii")
    return json.dumps(out, ensure_ascii=True)


def named(record: dict[str, Any]) -> dict[str, Any]:
    """A record read from a `json_line`, with each name as it is on disk (os.fsencode gives
    its bytes back)."""
    out = dict(record)
    for key, value in record.items():
        if key.endswith(BYTES) and isinstance(value, str) and key[:-len(BYTES)] in record:
            out[key[:-len(BYTES)]] = os.fsdecode(base64.b64decode(value, validate=True))
            del out[key]
    return out


def duplicate_text(event: Duplicate) -> str:
    m = event.match
    how = "exact copy" if m.kind == "exact" else f"near, {m.method} {m.score:.3f}, distance {m.distance}"
    if m.transform is not None:
        how += f", {TRANSFORM_WORDS.get(m.transform, m.transform)}"
    if m.geometry is not None and (turned := transform_text(m.geometry)):
        how += f", {turned}"
    if m.turned is not None:
        how += f", {canvas_text(m.turned)}"
    if m.better() and m.kind != "exact":
        return f"{shown(m.path)}\n    a better version of {shown(m.match)}  ({how}); keep the new one"
    text = f"{shown(m.path)}\n    duplicates {shown(m.match)}  ({how})"
    if m.keep is not None and m.keep != m.match:
        # An exact copy is no better than its twin: the order (older, then name) keeps this one.
        text += "; keep this one" if m.keep == m.path else f"\n    keep {shown(m.keep)}"
    return text


# How the new photo was turned from the old one (`Match.transform`, an API name kept in JSON),
# in words.
TRANSFORM_WORDS = {
    "rotate-90-cw": "turned 90° clockwise",
    "rotate-90-ccw": "turned 90° counter-clockwise",
    "rotate-180": "turned 180°",
    "mirror": "mirrored",
    "flip": "flipped upside down",
    "transpose": "turned 90° clockwise and mirrored",
    "transverse": "turned 90° counter-clockwise and mirrored",
}


def canvas_text(turned: float) -> str:
    """How a photo on a canvas was turned from the other: "turned 25° clockwise on a canvas"."""
    return f"{turn_text(turned)} on a canvas"


def turn_text(angle: float) -> str:
    return f"turned {abs(angle):.0f}° {'counter-clockwise' if angle > 0 else 'clockwise'}"


def transform_text(found: dict[str, Any]) -> str:
    """How a geometric match turned the photo: "turned 25° counter-clockwise, zoomed 1.6×"."""
    parts = []
    if found["mirrored"]:
        parts.append("mirrored")
    angle = float(found["rotation"])
    if abs(angle) >= 0.5:
        parts.append(turn_text(angle))
    if abs(float(found["scale"]) - 1) >= 0.02:
        parts.append(f"zoomed {float(found['scale']):.2f}×")
    return ", ".join(parts)


def geometry_text(found: dict[str, Any]) -> str:
    """The `compare` command's account of a geometric check."""
    line = (f"geometry: {found['inliers']} inliers of {found['matches']} matches"
            f" ({found['inlier_ratio']:.0%}), spanning {found['coverage']:.0%} of the image")
    if found.get("rejected"):
        return f"{line}; not confirmed: {found['rejected']}"
    turned = transform_text(found)
    return f"{line}; " + (f"the first is the second {turned}" if turned else "the same framing")


_INSTALL = ": pip install "
_told: set[str] = set()  # the install hints already given in this run


def skipped_text(skip: SkipFile) -> str:
    """"skipped PATH: REASON"; a reason ending in how to install what is missing says it for the
    first such file of the run only (a thousand raw files need not repeat it)."""
    reason = skip.reason
    need, found, hint = reason.rpartition(_INSTALL)
    if found:
        if hint in _told:
            reason = need
        _told.add(hint)
    return f"skipped {shown(skip.path)}: {reason}"


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, event: Event) -> None:
        if isinstance(event, Duplicate):
            self.counts[f"duplicates_{event.match.kind}"] += 1
        elif isinstance(event, Indexed):
            self.counts["indexed"] += 1
        elif isinstance(event, Unchanged):
            self.counts["unchanged"] += 1
        elif isinstance(event, SkipFile):
            self.counts["skipped"] += 1
            self.counts["skipped_before"] += event.told

    def record(self, forgotten: int, seconds: float) -> dict[str, Any]:
        c = self.counts
        return {
            "event": "summary",
            "indexed": c["indexed"],
            "unchanged": c["unchanged"],
            "skipped": c["skipped"],
            "duplicates": c["duplicates_exact"] + c["duplicates_near"],
            "exact": c["duplicates_exact"],
            "near": c["duplicates_near"],
            "forgotten": forgotten,
            "seconds": round(seconds, 3),
        }

    def _before(self) -> str:
        before = self.counts["skipped_before"]
        return f" ({before} as at an earlier run; -v names them)" if before else ""

    def text(self, forgotten: int, seconds: float) -> str:
        r = self.record(forgotten, seconds)
        files = r["indexed"] + r["unchanged"] + r["skipped"]
        line = (f"{plural(files, 'file')} in {seconds:.1f} s: {r['indexed']} indexed,"
                f" {r['unchanged']} unchanged, {r['skipped']} skipped{self._before()};"
                f" {plural(r['duplicates'], 'duplicate')} ({r['exact']} exact, {r['near']} near)")
        return line + (f"; {plural(forgotten, 'deleted file')} forgotten" if forgotten else "")


def table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


def plural(n: int, word: str, words: str | None = None) -> str:
    """"1 file", "2 files"; "1 copy", "2 copies" (given)."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"
