"""Opaque, validated NextTokens.

A token remembers the operation, the organization, the filters and the last item returned,
so a token from one listing is refused by another, and a page boundary survives items
being added between calls.
"""

import base64
import binascii
import hashlib
import json
from typing import Any

from .errors import invalid_parameter


def make_token(operation: str, organization_id: str, query: Any, after: Any) -> str:
    """Encode where the next page of ``operation`` starts."""
    payload = {"op": operation, "org": organization_id, "q": _fingerprint(query), "after": after}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def read_token(token: str | None, operation: str, organization_id: str, query: Any) -> Any:
    """Return the position a token encodes (None for the first page); refuse any other token."""
    if token is None:
        return None

    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        raise invalid_parameter("The NextToken is not valid.") from None

    expected = {"op": operation, "org": organization_id, "q": _fingerprint(query)}
    if not isinstance(payload, dict) or any(payload.get(key) != value for key, value in expected.items()):
        raise invalid_parameter("The NextToken is not valid for this request (operation, organization or filters).")
    if "after" not in payload:
        raise invalid_parameter("The NextToken is not valid.")
    return payload["after"]


def _fingerprint(query: Any) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]
