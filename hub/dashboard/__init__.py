"""The admin dashboard that ``crmhub serve`` runs: a server-rendered web app over the state store.

Public entry points: :func:`create_app` (in :mod:`hub.dashboard.app`) and, for ``crmhub
serve``, :func:`~hub.dashboard.auth.load_credentials` and
:func:`~hub.dashboard.auth.hash_password`.

Pages (overview, runs, audit log, conflicts, failed records, records, config), the JSON API
under ``/api/`` and Prometheus metrics at ``/metrics`` all read and act through
:mod:`hub.admin`; nothing here writes SQL. Modules: :mod:`~hub.dashboard.auth` (password, token,
sessions), :mod:`~hub.dashboard.guards` (the dependencies that let requests in),
:mod:`~hub.dashboard.login`, :mod:`~hub.dashboard.pages`, :mod:`~hub.dashboard.api`,
:mod:`~hub.dashboard.metrics`, :mod:`~hub.dashboard.filters` (audit filters from a URL),
:mod:`~hub.dashboard.diff` (before/after), :mod:`~hub.dashboard.charts` (the runs chart).
"""
