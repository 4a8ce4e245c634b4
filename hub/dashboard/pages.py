"""The dashboard's pages: overview, runs, audit log, conflicts, failed records, records, config.

Public entry points: :data:`router`.

Each page reads through :mod:`hub.admin` and renders one template; each form posts to a
route that acts through :mod:`hub.admin` and redirects back (post/redirect/get), so a reload
never repeats an action.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub import admin
from hub.dashboard.auth import Session
from hub.dashboard.charts import run_chart
from hub.dashboard.diff import field_diffs
from hub.dashboard.filters import AUDIT_ACTIONS, FilterError, audit_filter
from hub.dashboard.guards import form_session, page_session
from hub.dashboard.state import dashboard_of
from mappings.schema import OBJECT_TYPES

router = APIRouter()

PageSession = Annotated[Session, Depends(page_session)]
FormSession = Annotated[Session, Depends(form_session)]

# Runs the chart shows; the table below it lists more.
CHART_RUNS = 30
TABLE_RUNS = 100
AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX = 200, 1000


def render(
    request: Request,
    session: Session,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    """A page in the dashboard's frame: navigation with what waits, and the CSRF token its
    forms carry."""
    dashboard = dashboard_of(request)
    return dashboard.templates.TemplateResponse(
        request,
        template,
        {
            "csrf_token": session.csrf_token,
            "waiting": admin.waiting_counts(dashboard.db),
            "sync_names": list(dashboard.config.syncs),
            **context,
        },
        status_code=status_code,
    )


def back_to(path: str, **query: Any) -> RedirectResponse:
    """See-other to ``path`` with the given query (None values left out)."""
    given = {key: value for key, value in query.items() if value not in (None, "", False)}
    return RedirectResponse(f"{path}?{urlencode(given)}" if given else path, status_code=303)


# --------------------------------------------------------------------------- overview, runs


@router.get("/")
def overview(request: Request, session: PageSession) -> Response:
    dashboard = dashboard_of(request)
    now = dashboard.clock()
    rows = admin.sync_overview(dashboard.db, dashboard.config.syncs, now)
    for row in rows:
        row["systems"] = dashboard.config.syncs[row["sync"]].systems
        row["due_now"] = row["next_run"] is not None and (
            datetime.fromisoformat(row["next_run"]) <= now
        )
    return render(request, session, "overview.html", {"section": "overview", "syncs": rows})


@router.get("/runs")
def runs(request: Request, session: PageSession, sync: str | None = None) -> Response:
    dashboard = dashboard_of(request)
    listed = admin.list_runs(dashboard.db, sync or None, limit=TABLE_RUNS)
    return render(
        request,
        session,
        "runs.html",
        {
            "section": "runs",
            "runs": listed,
            "chart": run_chart(listed[:CHART_RUNS]),
            "chosen_sync": sync or "",
        },
    )


@router.get("/runs/{run_id}")
def run(request: Request, session: PageSession, run_id: int) -> Response:
    found = admin.get_run(dashboard_of(request).db, run_id)
    return render(request, session, "run.html", {"section": "runs", "run": found})


# --------------------------------------------------------------------------- audit


@router.get("/audit")
def audit(request: Request, session: PageSession) -> Response:
    dashboard = dashboard_of(request)
    error = None
    entries: list[dict[str, Any]] = []
    try:
        wanted = audit_filter(
            request.query_params,
            default_limit=AUDIT_PAGE_DEFAULT,
            max_limit=AUDIT_PAGE_MAX,
            now=dashboard.clock(),
        )
    except FilterError as exc:
        error = str(exc)
    else:
        entries = list(admin.audit_entries(dashboard.db, wanted))
        entries.reverse()  # newest first
    return render(
        request,
        session,
        "audit.html",
        {
            "section": "audit",
            "entries": entries,
            "error": error,
            "filters": dict(request.query_params),
            "actions": AUDIT_ACTIONS,
            "systems": list(dashboard.config.systems),
            "objects": OBJECT_TYPES,
            "limit_default": AUDIT_PAGE_DEFAULT,
        },
        status_code=422 if error else 200,
    )


@router.get("/audit/{entry_id}")
def audit_entry(request: Request, session: PageSession, entry_id: int) -> Response:
    entry = admin.get_audit_entry(dashboard_of(request).db, entry_id)
    return render(
        request,
        session,
        "audit_entry.html",
        {"section": "audit", "entry": entry, "diffs": field_diffs(entry["changes"])},
    )


# --------------------------------------------------------------------------- conflicts


@router.get("/conflicts")
def conflicts(
    request: Request,
    session: PageSession,
    sync: str | None = None,
    show_all: Annotated[bool, Query(alias="all")] = False,
    resolved: int | None = None,
) -> Response:
    dashboard = dashboard_of(request)
    listed = admin.list_conflicts(dashboard.db, sync or None, include_settled=show_all)
    return render(
        request,
        session,
        "conflicts.html",
        {
            "section": "conflicts",
            "conflicts": listed,
            "chosen_sync": sync or "",
            "show_all": show_all,
            "resolved": resolved,
        },
    )


@router.post("/conflicts/{conflict_id}/resolve")
def resolve_conflict(
    request: Request,
    session: FormSession,
    conflict_id: int,
    system: Annotated[str | None, Form()] = None,
    value: Annotated[str | None, Form()] = None,
) -> Response:
    if value is not None and not value.strip():
        value = None
    if (system is None) == (value is None):
        raise HTTPException(400, "Choose one system's value, or type a value.")
    admin.resolve_conflict(dashboard_of(request).db, conflict_id, system=system, value=value)
    return back_to("/conflicts", resolved=conflict_id)


# --------------------------------------------------------------------------- failed records


@router.get("/failed")
def failed(
    request: Request,
    session: PageSession,
    sync: str | None = None,
    show_all: Annotated[bool, Query(alias="all")] = False,
    retried: int | None = None,
    discarded: int | None = None,
) -> Response:
    dashboard = dashboard_of(request)
    listed = admin.list_failed(dashboard.db, sync or None, include_closed=show_all)
    return render(
        request,
        session,
        "failed.html",
        {
            "section": "failed",
            "failed": listed,
            "chosen_sync": sync or "",
            "show_all": show_all,
            "retried": retried,
            "discarded": discarded,
        },
    )


@router.post("/failed/retry-all")
def retry_all_failed(request: Request, session: FormSession) -> Response:
    count = admin.retry_failed(dashboard_of(request).db, None)
    return back_to("/failed", retried=count)


@router.post("/failed/{failed_id}/retry")
def retry_failed(request: Request, session: FormSession, failed_id: int) -> Response:
    count = admin.retry_failed(dashboard_of(request).db, [failed_id])
    return back_to("/failed", retried=count)


@router.post("/failed/{failed_id}/discard")
def discard_failed(request: Request, session: FormSession, failed_id: int) -> Response:
    admin.discard_failed(dashboard_of(request).db, [failed_id])
    return back_to("/failed", discarded=failed_id)


# --------------------------------------------------------------------------- records, config


@router.get("/records")
def find_record(
    request: Request,
    session: PageSession,
    record_id: Annotated[str, Query(alias="id")] = "",
    system: str = "",
) -> Response:
    dashboard = dashboard_of(request)
    record_id, system = record_id.strip(), system.strip()
    found = admin.find_records(dashboard.db, record_id, system or None) if record_id else []
    if len(found) == 1:
        return back_to(f"/records/{found[0]['canonical_id']}")
    return render(
        request,
        session,
        "records.html",
        {
            "section": "records",
            "found": found,
            "looked_for": record_id,
            "system": system,
            "systems": list(dashboard.config.systems),
        },
    )


@router.get("/records/{canonical_id}")
def record(request: Request, session: PageSession, canonical_id: str) -> Response:
    dashboard = dashboard_of(request)
    view = admin.record_view(dashboard.db, canonical_id)
    history = list(
        admin.audit_entries(
            dashboard.db, admin.AuditFilter(record=canonical_id, limit=AUDIT_PAGE_DEFAULT)
        )
    )
    history.reverse()
    return render(
        request,
        session,
        "record.html",
        {"section": "records", "record": view, "history": history},
    )


@router.get("/config")
def config(request: Request, session: PageSession) -> Response:
    redacted = dashboard_of(request).config.redacted_dict()
    return render(
        request,
        session,
        "config.html",
        {"section": "config", "config_text": json.dumps(redacted, indent=2, default=str)},
    )
