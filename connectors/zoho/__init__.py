"""The Zoho CRM connector and its local emulator.

Public entry points: :class:`connectors.zoho.connector.ZohoConnector` (with its settings model
:class:`connectors.zoho.connector.ZohoSettings`) and :class:`connectors.zoho.sandbox.ZohoApi`
(the :class:`~connectors.sandbox.VendorApi` behind ``crmhub sandbox zoho``). The vendor facts
both share (modules, lookups, date-time format) live in :mod:`connectors.zoho.fields`; the OAuth
refresh flow in :mod:`connectors.zoho.auth`.
"""
