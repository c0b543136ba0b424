"""Keyed pseudonyms for patron ids: the audit log never holds a patron id in clear."""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymizer:
    """HMAC-SHA256 of a patron id under the deployment's key, tagged with the key's id.

    The key id is part of the pseudonym, so after a key rotation old events stay readable
    and verifiable, and an auditor holding the old key can still match them.
    """

    def __init__(self, key: bytes, key_id: str) -> None:
        if len(key) < 32:
            raise ValueError("the pseudonym key must be at least 32 bytes")
        self._key = key
        self.key_id = key_id

    def __call__(self, patron_id: str) -> str:
        mac = hmac.new(self._key, patron_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{self.key_id}:{mac}"
