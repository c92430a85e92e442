"""Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` of
"<webhook-id>.<webhook-timestamp>.<body>", keyed with the base64 part of a `whsec_` secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
# The specification asks for keys of 24 to 64 bytes.
MIN_KEY, MAX_KEY = 24, 64


def webhook_key(secret: str) -> bytes:
    """The key of a `whsec_...` secret; ValueError, in words for the operator, otherwise."""
    if not secret.startswith(PREFIX):
        raise ValueError("webhook_secret must start with whsec_ (whsec_ and a base64 key)")
    encoded = secret[len(PREFIX) :]
    encoded += "=" * (-len(encoded) % 4)  # padding may be left out, as the packages allow
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook_secret: the part after whsec_ is not base64") from exc
    if not MIN_KEY <= len(key) <= MAX_KEY:
        raise ValueError(
            f"webhook_secret: the key is {len(key)} bytes; it must be {MIN_KEY} to {MAX_KEY}"
        )
    return key


def new_message_id() -> str:
    """The webhook-id of one delivery: the same on every attempt, so receivers drop repeats."""
    return "msg_" + secrets.token_hex(12)


def signed_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one attempt; the timestamp is the attempt's own (receivers refuse
    old ones), the id the delivery's."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
