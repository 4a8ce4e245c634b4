"""The JSON API under ``/api/``: the dashboard's data for scripts and monitoring.

Public entry points: :data:`router`.

Every route takes a signed-in session or ``Authorization: Bearer`` with ``CRMHUB_API_TOKEN``.
Objects are shaped as the CLI's ``--json`` prints them. Errors are ``{"detail": message}``:
401 without credentials, 403 a browser's change without its CSRF token, 404 an unknown id,
409 an action that cannot be done (a conflict no longer open), 422 a bad filter or body.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.requests import Request

from hub import admin
from hub.dashboard.filters import FilterError, audit_filter
from hub.dashboard.guards import Caller, api_caller, api_writer
from hub.dashboard.state import dashboard_of

router = APIRouter(prefix="/api", dependencies=[Depends(api_caller)])
Writer = Annotated[Caller, Depends(api_writer)]

AUDIT_API_DEFAULT, AUDIT_API_MAX = 1000, 10_000
RUNS_API_MAX = 1000


class Resolution(BaseModel):
    """How to settle a conflict: one system's value, or a value of one's own."""

    model_config = ConfigDict(extra="forbid")

    system: str | None = None
    value: Any = None

    @model_validator(mode="after")
    def _one_choice(self) -> Resolution:
        if (self.system is None) == (self.value is None):
            raise ValueError("give exactly one of system or value")
        return self


class FailedIds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int]


class RetryRequest(BaseModel):
    """Failed records to retry: ``ids``, or ``all``."""

    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = None
    all: bool = False

    @model_validator(mode="after")
    def _one_choice(self) -> RetryRequest:
        if bool(self.ids) == self.all:
            raise ValueError("give either ids or all: true")
        return self


@router.get("/syncs")
def syncs(request: Request) -> list[dict[str, Any]]:
    """Each sync: schedule, last and next run, health, records in sync, in conflict, failing."""
    dashboard = dashboard_of(request)
    return admin.sync_overview(dashboard.db, dashboard.config.syncs, dashboard.clock())


@router.get("/runs")
def runs(
    request: Request,
    sync: str | None = None,
    limit: Annotated[int, Query(ge=1, le=RUNS_API_MAX)] = 100,
) -> list[dict[str, Any]]:
    """Runs, newest first."""
    return admin.list_runs(dashboard_of(request).db, sync, limit=limit)


@router.get("/runs/{run_id}")
def run(request: Request, run_id: int) -> dict[str, Any]:
    return admin.get_run(dashboard_of(request).db, run_id)


@router.get("/audit")
def audit(request: Request) -> list[dict[str, Any]]:
    """Audit entries, oldest first, filtered as ``crmhub log``: sync, system, object, record,
    action, since, until, run, limit (the newest N; default 1000, at most 10000)."""
    dashboard = dashboard_of(request)
    try:
        wanted = audit_filter(
            request.query_params,
            default_limit=AUDIT_API_DEFAULT,
            max_limit=AUDIT_API_MAX,
            now=dashboard.clock(),
        )
    except FilterError as exc:
        raise HTTPException(422, str(exc)) from None
    return list(admin.audit_entries(dashboard.db, wanted))


@router.get("/audit/{entry_id}")
def audit_entry(request: Request, entry_id: int) -> dict[str, Any]:
    return admin.get_audit_entry(dashboard_of(request).db, entry_id)


@router.get("/conflicts")
def conflicts(
    request: Request,
    sync: str | None = None,
    show_all: Annotated[bool, Query(alias="all")] = False,
) -> list[dict[str, Any]]:
    """Conflicts waiting for a person; with ``all=true`` also those settled."""
    return admin.list_conflicts(dashboard_of(request).db, sync, include_settled=show_all)


@router.post("/conflicts/{conflict_id}/resolve")
def resolve_conflict(
    request: Request, conflict_id: int, choice: Resolution, _caller: Writer
) -> dict[str, Any]:
    """Settle a conflict; the next run writes the value to every system and audits it."""
    return admin.resolve_conflict(
        dashboard_of(request).db, conflict_id, system=choice.system, value=choice.value
    )


@router.get("/failed")
def failed(
    request: Request,
    sync: str | None = None,
    show_all: Annotated[bool, Query(alias="all")] = False,
) -> list[dict[str, Any]]:
    """Failed records still open or parked; with ``all=true`` also resolved and discarded."""
    return admin.list_failed(dashboard_of(request).db, sync, include_closed=show_all)


@router.post("/failed/retry")
def retry_failed(request: Request, wanted: RetryRequest, _caller: Writer) -> dict[str, int]:
    """Retry on the next run instead of waiting: ``{"ids": [...]}`` or ``{"all": true}``."""
    ids = None if wanted.all else wanted.ids
    return {"retried": admin.retry_failed(dashboard_of(request).db, ids)}


@router.post("/failed/discard")
def discard_failed(request: Request, wanted: FailedIds, _caller: Writer) -> dict[str, int]:
    """Stop retrying these records."""
    return {"discarded": admin.discard_failed(dashboard_of(request).db, wanted.ids)}


@router.get("/records/{canonical_id}")
def record(request: Request, canonical_id: str) -> dict[str, Any]:
    """A canonical record with every vendor record linked to it."""
    return admin.record_view(dashboard_of(request).db, canonical_id)
