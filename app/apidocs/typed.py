"""The OpenAPI document as a strictly typed client sees it (issue 17).

FastAPI builds the document from the routes; two facts it cannot know are added here:

* a public route admits a caller without a key, so its security requirements list the
  anonymous alternative ``{}`` (beside ``ApiKey`` where a key is optional);
* the records a disclosure answers are known per category once the mapping is loaded: each
  mapped category's rows are objects with the mapping's output field names as properties.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from app.disclosures.schemas import RECORD_VALUE_SCHEMA

#: The anonymous alternative in an operation's ``security`` list (OpenAPI 3.1, 4.8.30).
ANONYMOUS: dict[str, list[str]] = {}


def allow_anonymous(schema: dict[str, Any], paths: Collection[str]) -> None:
    """Add ``{}`` to the security requirements of every operation under ``paths``."""
    for path in paths:
        for operation in schema["paths"].get(path, {}).values():
            security = operation.setdefault("security", [])
            if ANONYMOUS not in security:
                security.append(ANONYMOUS)


def records_by_category(schema: dict[str, Any], fields: Mapping[str, Sequence[str]]) -> None:
    """Type ``DisclosureResponse.records`` per mapped category, from the mapping's fields."""
    response = schema.get("components", {}).get("schemas", {}).get("DisclosureResponse")
    if response is None:
        return
    records = response["properties"]["records"]
    records["properties"] = {
        category: {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {name: RECORD_VALUE_SCHEMA for name in names},
                "additionalProperties": False,
            },
        }
        for category, names in sorted(fields.items())
    }
    records["additionalProperties"] = False
