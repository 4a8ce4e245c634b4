"""HubSpot CRM (v3 objects, v4 associations): the connector and its local emulator.

Public entry points: :class:`connectors.hubspot.connector.HubSpotConnector` with its settings
:class:`connectors.hubspot.connector.HubSpotSettings` (entry point ``crmhub.connectors:
hubspot``), and :class:`connectors.hubspot.sandbox.HubSpotApi` (entry point ``crmhub.sandboxes:
hubspot``). :mod:`connectors.hubspot.errors` turns HubSpot's answers into the error taxonomy;
:mod:`connectors.hubspot.search` is the incremental-read cursor over the search API.
"""
