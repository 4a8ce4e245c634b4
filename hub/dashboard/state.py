"""What every request of one dashboard shares: config, database, credentials, templates.

Public entry points: :class:`Dashboard`, :func:`dashboard_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.requests import Request

from hub.config import Config
from hub.dashboard.auth import Credentials, LoginThrottle, SessionCookies


@dataclass(frozen=True)
class Dashboard:
    config: Config
    db: Engine
    credentials: Credentials
    cookies: SessionCookies
    throttle: LoginThrottle
    templates: Jinja2Templates
    clock: Callable[[], datetime]


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard serving ``request``."""
    state: Dashboard = request.app.state.dashboard
    return state
