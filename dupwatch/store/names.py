"""File names in the store: any byte string, kept exactly, in SQLite TEXT columns.

On Linux a file name is bytes. Python reads a name that is not valid UTF-8 (Latin-1 from an old
Windows share or a FAT stick: b'caf\\xe9.jpg') as a str with lone surrogates (`'caf\\udce9.jpg'`,
the surrogateescape error handler), and sqlite3 binds a str as strict UTF-8, which has no lone
surrogates. So each name is mapped at the store's edge, one character at a time:

- a lone surrogate U+DC80–U+DCFF (an undecodable byte 0x80–0xFF) becomes the private-use code
  point U+10FF80–U+10FFFF, which is valid UTF-8;
- a real U+10FF7F–U+10FFFF in a name (private use: next to never, but a name may hold it) is
  written as ESCAPE (U+10FF7F) followed by itself, so that reading back never mistakes it for a
  byte;
- every other character is itself: a UTF-8 name is stored exactly as before, so caches written
  by earlier versions need no migration.

Because the mapping is character by character, a name's prefix maps to the prefix of its
mapped form: `paths_under`'s range on "dir/" … "dir0" finds the same files as before.
`to_store(from_store(x)) == x` for every stored x, and `from_store(to_store(n)) == n` for every
name n, so `os.fsencode` of what comes back gives the file's original bytes.
"""

from __future__ import annotations

import re

ESCAPE = "\U0010ff7f"
_SHIFT = 0x10FF80 - 0xDC80  # surrogate U+DC80 + k ↔ U+10FF80 + k
_TO_STORE = re.compile("[\udc80-\udcff\U0010ff7f-\U0010ffff]")
_FROM_STORE = re.compile("\U0010ff7f(.)|[\U0010ff80-\U0010ffff]", re.DOTALL)
# UTF-8 of every code point at or above U+10FF7F starts with these two bytes.
_MARK = "\U0010ff7f".encode()[:2]


def _to_store(found: re.Match[str]) -> str:
    c = found[0]
    if 0xDC80 <= ord(c) <= 0xDCFF:
        return chr(ord(c) + _SHIFT)
    return ESCAPE + c


def _from_store(found: re.Match[str]) -> str:
    if found[1] is not None:
        return found[1]
    return chr(ord(found[0]) - _SHIFT)


def to_store(name: str) -> str:
    """The text to bind for a name (or any str parameter): valid UTF-8, the same for UTF-8 names."""
    if name.isascii():
        return name
    return _TO_STORE.sub(_to_store, name)


def from_store(text: str) -> str:
    """The name `to_store` was given."""
    if text.isascii():
        return text
    return _FROM_STORE.sub(_from_store, text)


def text_factory(raw: bytes) -> str:
    """sqlite3's `text_factory`: every TEXT value read, as the name it stands for."""
    if _MARK not in raw:  # the usual case: nothing mapped, nothing to look for
        return raw.decode("utf-8")
    return from_store(raw.decode("utf-8"))
