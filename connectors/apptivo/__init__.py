"""Apptivo connector and sandbox (``dao/v6``): customers, contacts, opportunities."""
