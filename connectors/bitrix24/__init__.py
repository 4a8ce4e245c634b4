"""The Bitrix24 connector and its local emulator.

Public entry points: :class:`connectors.bitrix24.connector.Bitrix24Connector` (with its settings
model :class:`connectors.bitrix24.connector.Bitrix24Settings`) and
:class:`connectors.bitrix24.sandbox.Bitrix24Api` (the :class:`~connectors.sandbox.VendorApi`
behind ``crmhub sandbox bitrix24``). The wire formats both share (PHP query strings, multifields,
portal date-times) live in :mod:`connectors.bitrix24.wire`.
"""
