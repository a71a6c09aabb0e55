"""Secret tokens: what is stored of one (its SHA-256, never the token) and how a new one is made.

Invitation links (console and portal), API keys and console recovery codes all keep only the hash.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    """What is stored of a secret token (invitation links, API keys): its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_new() -> str:
    """A new URL-safe secret of TOKEN_BYTES random bytes."""
    return secrets.token_urlsafe(TOKEN_BYTES)


__all__ = ["TOKEN_BYTES", "token_hash", "token_new"]
