"""The records vocabulary: the categories of patron records Bulwark can disclose.

Every package names categories from here (docs/architecture.md): adding an eighth category
is one line below, plus its columns in the records mapping (docs/records.md).
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """The record categories of the contract (section 1)."""

    REGISTRATION = "registration"
    CIRCULATION = "circulation"
    HOLDS = "holds"
    INTERLIBRARY_LOAN = "interlibrary_loan"
    SEARCH_HISTORY = "search_history"
    REFERENCE = "reference"
    FACILITY_USE = "facility_use"
