"""The documentation keeps up with the code: every command and option, method, sink and config key
is documented, and every relative link in README.md and docs/*.md leads somewhere that exists.

Each list is read from the code itself (the argument parser, the registries, the config's
pydantic models), so a command, option, method, sink or key added without its documentation
fails here.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from dupwatch.cli import _parser
from dupwatch.config import Config
from dupwatch.methods.registry import METHODS
from dupwatch.sinks.registry import SINKS

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def text(*paths: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the parser has no subcommands")


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


def mentions(option: str, line: str) -> bool:
    """`option` as a whole word of `line`: `-k` is not found in `--keep`, nor `--json` in `--jsonl`."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", line) is not None


def synopses(name: str) -> list[str]:
    """The lines of the docs that show how `dupwatch NAME` is called (a synopsis or a table row)."""
    pattern = re.compile(rf"^[\s|`]*dupwatch {re.escape(name)}(?![\w-])")
    return [line for line in text(*PAGES).splitlines() if pattern.match(line)]


def test_every_command_is_documented() -> None:
    commands = subcommands()
    assert {"scan", "watch", "query", "compare", "bench"} <= set(commands)  # the parser was read
    undocumented = [name for name in commands if not synopses(name)]
    assert not undocumented, f"commands with no `dupwatch NAME ...` line in the docs: {undocumented}"


def test_every_option_of_every_command_is_documented() -> None:
    commands = subcommands()
    shared = set.intersection(*(options(p) for p in commands.values()))  # --config, --verbose, --help
    everything = text(*PAGES)
    missing = [o for o in sorted(shared) if o not in ("-h", "--help") and not mentions(o, everything)]
    for name, parser in commands.items():
        lines = synopses(name)
        for option in sorted(options(parser) - shared):
            if not any(mentions(option, line) for line in lines):
                missing.append(f"{name} {option}")
    assert not missing, f"options not shown in their command's synopsis: {missing}"


def test_every_method_is_documented() -> None:
    rows = [line for line in text(DOCS / "methods.md").splitlines() if line.startswith("|")]
    assert len(METHODS) >= 10
    missing = [name for name in METHODS if not any(f"`{name}`" in row for row in rows)]
    assert not missing, f"methods with no row in docs/methods.md's table: {missing}"


def test_every_sink_is_documented() -> None:
    rows = text(DOCS / "notices.md").splitlines()
    missing = [name for name in SINKS if not any(row.startswith(f"| `{name}` |") for row in rows)]
    assert not missing, f"sinks with no row in docs/notices.md's table: {missing}"


def config_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every dotted key of the config, sections included: `notices`, `notices.burst.count`, ..."""
    for name, field in model.model_fields.items():
        key = prefix + name
        yield key
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from config_keys(field.annotation, key + ".")


def test_every_config_key_is_documented() -> None:
    keys = list(config_keys(Config))
    assert "notices.burst.quiet_seconds" in keys and "review.thumbnails_max_mb" in keys
    reference = text(DOCS / "configuration.md")
    missing = [key for key in keys if f"`{key}`" not in reference]
    assert not missing, f"config keys missing from docs/configuration.md: {missing}"


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation out, spaces to hyphens."""
    kept = "".join(c for c in heading.strip().lower()
                   if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"#{1,6} (.+)", line)
        if heading and not fenced:
            base, n = slug(heading.group(1)), 0
            anchor = base
            while anchor in found:  # a repeated heading gets -1, -2, ...
                n += 1
                anchor = f"{base}-{n}"
            found.add(anchor)
    return found


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def links(page: Path) -> Iterator[str]:
    body = re.sub(r"`[^`\n]*`", "", page.read_text(encoding="utf-8"))  # code is not a link
    for match in LINK.finditer(body):
        yield match.group(1)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: {broken}"


def test_the_readme_stays_short_and_keeps_its_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(readme) <= 250
    # .ci/run runs `make test`, the README's test command; the other one starts the watcher.
    assert "    make test" in readme and "    make watch PHOTOS=~/Pictures" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
