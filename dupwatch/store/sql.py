"""What the two SQL stores (SQLite and PostgreSQL) share: the review page's filter as a WHERE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dupwatch.store.base import ReviewFilter


def review_where(which: ReviewFilter, status: Mapping[str, str], mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause (over notices `n`) that `which` selects, and its parameters. `status` is the
    store's SQL for each status; `mark` its parameter placeholder ("?" or "%s")."""
    clauses: list[str] = [status[which.status]]
    args: list[Any] = []
    if which.folder:
        prefix = which.folder.rstrip("/") + "/"
        end = prefix[:-1] + "0"  # "0" follows "/": a range, not LIKE (% and _ are common in names)
        within = "({c} >= {m} AND {c} < {m})"
        clauses.append(f"({within.format(c='n.path', m=mark)} OR {within.format(c='n.match', m=mark)})")
        args += [prefix, end, prefix, end]
    for column, value in (("n.method", which.method), ("n.kind", which.kind)):
        if value:
            clauses.append(f"{column} = {mark}")
            args.append(value)
    if which.since is not None:
        clauses.append(f"n.found_at >= {mark}")
        args.append(which.since)
    if which.until is not None:
        clauses.append(f"n.found_at < {mark}")
        args.append(which.until)
    return " AND ".join(clauses), args
