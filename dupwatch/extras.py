"""How to install a missing extra, in the words of how dupwatch itself was installed."""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse

_PACKAGE = Path(__file__).resolve().parent


def install(extra: str) -> str:
    """`pip install 'dupwatch[cnn]'` from PyPI; `pip install '.[cnn]'` in the checkout it came
    from (its path instead of `.` when run from elsewhere)."""
    checkout = _checkout()
    if checkout is None:
        return f"pip install 'dupwatch[{extra}]'"
    try:
        here = Path.cwd().resolve() == checkout
    except OSError:  # the working directory was deleted
        here = False
    return f"pip install '{'.' if here else checkout}[{extra}]'"


@cache
def _checkout() -> Path | None:
    """The source tree dupwatch runs from (an editable install, PYTHONPATH) or was installed from
    (`pip install .`), or None for a wheel from an index."""
    source = _PACKAGE.parent
    if _is_dupwatch_project(source / "pyproject.toml"):
        return source
    from importlib import metadata  # only when an extra is missing: a slow import otherwise

    try:
        direct = metadata.distribution("dupwatch").read_text("direct_url.json")
        record = json.loads(direct) if direct else {}
    except (metadata.PackageNotFoundError, ValueError, OSError):
        return None
    url = record.get("url", "") if isinstance(record, dict) else ""
    info = record.get("dir_info")
    if not url.startswith("file://") or not isinstance(info, dict) or info.get("editable"):
        # From an index, a wheel or an archive; or an editable install of another tree than
        # this copy (an editable install runs from its tree, found above).
        return None
    path = Path(unquote(urlparse(url).path))
    return path if _is_dupwatch_project(path / "pyproject.toml") else None


def _is_dupwatch_project(pyproject: Path) -> bool:
    try:
        return 'name = "dupwatch"' in pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


_named: set[str] = set()


def note_missing(log: logging.Logger, what: str, extra: str) -> None:
    """Log `what` (what is left out for want of `extra`) with how to install it; each extra is
    named once per run, however many parts need it."""
    if extra in _named:
        log.info("%s", what)
        return
    _named.add(extra)
    log.info("%s (%s)", what, install(extra))
