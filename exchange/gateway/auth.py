"""Request signing (SPEC section 6) and API credentials.

An API secret is never stored: it is derived from the server's master key and the API key,
``secret = HMAC-SHA256(master_key, "cfx-api-secret:" + api_key)``, and recomputed to verify
a signature. The master key lives in ``<data-dir>/master.key`` (mode 0600); the journal and
the database hold only API keys. Rotating a credential means issuing a new API key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

#: A signed request's timestamp may differ from the server clock by at most this much.
MAX_SKEW_S = 30
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
#: A timestamp as plain decimal digits: ``int()`` would also take ``+17...``, ``017...``,
#: ``1_7...`` or other scripts' digits, each a new signature of the same request.
_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,17}")


def load_master_key(data_dir: Path) -> bytes:
    """Read the master key from the data dir, creating it (0600) on first start."""
    path = data_dir / "master.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key


def new_api_key() -> str:
    """Return a fresh random API key."""
    return "cfx_" + secrets.token_hex(12)


def derive_secret(master_key: bytes, api_key: str) -> str:
    """Return the API secret belonging to ``api_key``."""
    return hmac.new(master_key, b"cfx-api-secret:" + api_key.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, method: str, path_with_query: str, body: bytes) -> str:
    """Return hex(HMAC-SHA256(secret, timestamp + METHOD + path_with_query + body))."""
    message = timestamp.encode() + method.upper().encode() + path_with_query.encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str,
    method: str,
    path_with_query: str,
    body: bytes,
    signature: str,
    now_s: float,
) -> str | None:
    """Return ``None`` if the signature is valid and fresh, else what is wrong with it.

    Hex digits may come in either case (:class:`~exchange.gateway.ratelimit.ReplayCache`
    takes them as one signature).
    """
    if not _TIMESTAMP.fullmatch(timestamp):
        return "CFX-TIMESTAMP must be unix seconds, written as plain decimal digits"
    ts = int(timestamp)
    # whole seconds on both sides: the window is MAX_SKEW_S either way, whatever the fraction
    # of the server's second (against the exact time, -30 s failed where +30 s passed)
    if abs(int(now_s) - ts) > MAX_SKEW_S:
        return f"CFX-TIMESTAMP is more than {MAX_SKEW_S} s away from server time"
    if not _SIGNATURE.fullmatch(signature):
        return "the signature must be 64 hexadecimal digits"
    expected = sign(secret, timestamp, method, path_with_query, body)
    if not hmac.compare_digest(expected, signature.lower()):
        return "signature does not match"
    return None
