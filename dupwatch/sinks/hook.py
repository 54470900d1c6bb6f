"""The exec hook: a program run with the notice's fields as its arguments, never through a shell.

`notices.exec.command` is the argument list; `{path}`, `{match}`, … in an argument are replaced
by the notice's fields, and each argument stays one argument whatever the file name holds
(spaces, quotes, `$(...)`, newlines). The notice's JSON line is on the program's stdin too. A
burst comes as one run with event `summary` and its `count`.
"""

from __future__ import annotations

import subprocess
from typing import Any

from dupwatch.config import HOOK_FIELDS, Config
from dupwatch.record import Notice
from dupwatch.report import json_line, shown
from dupwatch.sinks.base import Alert, DeliveryError


class ExecHook:
    key = "exec"
    alerts = True
    records = False

    def __init__(self, command: tuple[str, ...], timeout: float) -> None:
        self.command, self.timeout = command, timeout
        self.label = f"notices.exec ({shown(command[0])})"

    @classmethod
    def configured(cls, config: Config) -> list[ExecHook]:
        hook = config.notices.exec
        return [cls(hook.command, hook.timeout)] if hook.command else []

    def send(self, item: Alert) -> None:
        values = fields(item)
        argv = [argument.format_map(values) for argument in self.command]
        record = (item.to_json() if isinstance(item, Notice)
                  else {**item.last.to_json(), "event": "summary", "count": item.count})
        try:
            # A list, no shell: the user's own program, with file names as single arguments.
            done = subprocess.run(argv, input=json_line(record) + "\n", capture_output=True,  # noqa: S603
                                  text=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise DeliveryError(f"still running after {self.timeout:g} s; stopped") from None
        except OSError as exc:
            raise DeliveryError(f"cannot run {shown(argv[0])}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            said = shown(done.stderr.strip().splitlines()[-1][:200]) if done.stderr.strip() else ""
            raise DeliveryError(f"exit code {done.returncode}" + (f": {said}" if said else ""))


def fields(item: Alert) -> dict[str, Any]:
    notice = item if isinstance(item, Notice) else item.last
    record = notice.to_json()
    values = {name: record.get(name, "") for name in HOOK_FIELDS}
    values["transform"] = values["transform"] or ""
    if isinstance(item, Notice):
        values["count"] = 1
    else:
        values["event"], values["count"] = "summary", item.count
    return {k: str(v) for k, v in values.items()}
