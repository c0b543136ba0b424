"""Bulwark: the disclosure gatekeeper for library patron records."""

__version__ = "0.1.0"
