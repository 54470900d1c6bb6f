"""Sinks by name: each builds its targets from its own section of `notices` in the config."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dupwatch.config import Config
from dupwatch.sinks.apprise import AppriseTarget
from dupwatch.sinks.base import Sink
from dupwatch.sinks.hook import ExecHook
from dupwatch.sinks.log import NoticeLog
from dupwatch.sinks.sidecar import Sidecar
from dupwatch.sinks.xmp import XmpTag

SINKS: dict[str, Callable[[Config], Sequence[Sink]]] = {
    "log": NoticeLog.configured,
    "sidecar": Sidecar.configured,
    "xmp": XmpTag.configured,
    "apprise": AppriseTarget.configured,
    "exec": ExecHook.configured,
}


def build(config: Config) -> list[Sink]:
    """Every target the config enables, in the order above."""
    return [sink for configured in SINKS.values() for sink in configured(config)]
