"""How results reach people (aligned text) and scripts (one JSON object per line)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from dupwatch.errors import SkipFile
from dupwatch.pipeline import Duplicate, Event, Indexed, Unchanged


def shown(text: str) -> str:
    """A file name made safe for a terminal or a log line: control characters are escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def json_line(record: dict[str, Any]) -> str:
    # ASCII-only JSON: names that are not valid UTF-8 (surrogate escapes) still make valid JSON.
    return json.dumps(record, ensure_ascii=True)


def duplicate_text(event: Duplicate) -> str:
    m = event.match
    how = "exact copy" if m.kind == "exact" else f"near, {m.method} {m.score:.3f}, distance {m.distance}"
    if m.transform is not None:
        how += f", {m.transform}"
    if m.geometry is not None and (turned := transform_text(m.geometry)):
        how += f", {turned}"
    if m.turned is not None:
        how += f", {canvas_text(m.turned)}"
    return f"{shown(m.path)}\n    duplicates {shown(m.match)}  ({how})"


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


def skipped_text(skip: SkipFile) -> str:
    return f"skipped {shown(skip.path)}: {skip.reason}"


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

    def text(self, forgotten: int, seconds: float) -> str:
        r = self.record(forgotten, seconds)
        files = r["indexed"] + r["unchanged"] + r["skipped"]
        line = (f"{files} files in {seconds:.1f} s: {r['indexed']} indexed, {r['unchanged']} unchanged,"
                f" {r['skipped']} skipped; {r['duplicates']} duplicates ({r['exact']} exact,"
                f" {r['near']} near)")
        return line + (f"; {forgotten} deleted files forgotten" if forgotten else "")


def table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")
