"""The Insightly connector (API v3.1) and its local emulator.

Public entry points: :class:`connectors.insightly.connector.InsightlyConnector` (with its settings
model :class:`connectors.insightly.connector.InsightlySettings`) and
:class:`connectors.insightly.sandbox.InsightlyApi` (the :class:`~connectors.sandbox.VendorApi`
behind ``crmhub sandbox insightly``). What both share about the wire (object paths, id fields,
the date-time format, the error body) lives in :mod:`connectors.insightly.wire`.
"""
