"""A delivery's signature: `Steadyfit-Signature: t=<unix time>,v1=<hex>`, where v1 is the HMAC-SHA256, keyed
with the webhook's secret, of the time, a dot and the body as sent. A receiver recomputes it and refuses a
time more than `TOLERANCE_SECONDS` away from its clock, so that a recorded delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
