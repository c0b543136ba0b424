"""Audited administration: client keys and order revocations (docs/architecture.md)."""
