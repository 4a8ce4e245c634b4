"""A vendor sandbox in its own process, driven over a pipe, for the benchmarks.

A vendor is another machine: serving it from crmhub's own process would charge its work and its
data to crmhub's CPU time (one GIL) and RSS. The child runs the sandbox and answers a few
commands: seed it through a vendor's field map, edit a record, count and reset the API calls.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from connectors.sampledata import sample_account
from connectors.sandbox import SandboxOptions, load_sandbox
from hub.demo import seed_sandbox, typed_by_hand
from mappings.fieldmap import load_default_map


def _serve(vendor: str, options: SandboxOptions, pipe: Connection) -> None:
    sandbox = load_sandbox(vendor, options)
    sandbox.start()
    fieldmap = load_default_map(vendor)
    pipe.send((sandbox.url, sandbox.connector_settings()))
    while True:
        command, args = pipe.recv()
        if command == "stop":
            sandbox.stop()
            pipe.send(None)
            return
        if command == "seed":
            people, seed, start, typed, only_contacts = args
            account = sample_account(people, seed, start=start)
            if only_contacts:
                account.companies.clear()
                account.deals.clear()
            style = typed_by_hand if typed else None
            pipe.send(seed_sandbox(sandbox.api, fieldmap, account, style))
        elif command == "modify":
            object_type, record_id, fields = args
            sandbox.api.modify(object_type, record_id, fields)
            pipe.send(None)
        elif command == "calls":
            pipe.send((sandbox.calls.total, dict(sandbox.calls.by_route)))
        elif command == "statuses":
            pipe.send(dict(sandbox.calls.by_status))
        elif command == "advance":
            sandbox.api.clock.advance(args)  # type: ignore[attr-defined]
            pipe.send(None)
        elif command == "reset_calls":
            sandbox.calls.reset()
            pipe.send(None)
        elif command == "attribute":
            pipe.send(getattr(sandbox.api, args))
        else:
            pipe.send(ValueError(f"unknown command {command!r}"))


class SandboxProcess:
    """``vendor``'s sandbox served by a child process; ``url`` and ``settings`` reach it."""

    def __init__(self, vendor: str, options: SandboxOptions) -> None:
        self.vendor = vendor
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(vendor, options, child), name=f"sandbox-{vendor}", daemon=True
        )
        self._process.start()
        self.url, self.settings = self._pipe.recv()

    def _ask(self, command: str, args: Any = None) -> Any:
        self._pipe.send((command, args))
        answer = self._pipe.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def seed(
        self,
        people: int,
        seed: int,
        *,
        start: int = 0,
        typed: bool = False,
        only_contacts: bool = False,
    ) -> dict[str, dict[int, str]]:
        result: dict[str, dict[int, str]] = self._ask(
            "seed", (people, seed, start, typed, only_contacts)
        )
        return result

    def modify(self, object_type: str, record_id: str, fields: dict[str, Any]) -> None:
        self._ask("modify", (object_type, record_id, fields))

    def calls(self) -> int:
        total, _ = self._ask("calls")
        return int(total)

    def routes(self) -> dict[str, int]:
        _, by_route = self._ask("calls")
        return dict(by_route)

    def statuses(self) -> dict[int, int]:
        """Answers by HTTP status (faults and the vendor's own 429s and 503s included)."""
        return dict(self._ask("statuses"))

    def advance(self, seconds: float) -> None:
        """Time passes on the vendor's clock (both emulators keep a ``SandboxClock``)."""
        self._ask("advance", seconds)

    def reset_calls(self) -> None:
        self._ask("reset_calls")

    def attribute(self, name: str) -> Any:
        return self._ask("attribute", name)

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(timeout=10)
