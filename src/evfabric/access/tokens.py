"""Token strings: how they look, how they are made, and how they are stored (hashed).

A token is ``evf_<id>_<secret>``: ``id`` is 16 hex digits, public (it names the token in
listings and is the NATS user name), ``secret`` is 32 random bytes (urlsafe base64). The full
string is shown once, when issued; the store keeps two hashes of it:

* SHA-256, to check a token quickly on every web request. A plain fast hash is enough because
  the secret has 256 random bits: there is nothing to guess that a slow hash would protect.
* bcrypt, because that is the only hashed password form ``nats-server`` accepts in its config:
  the broker checks connections against it, so its config never holds a usable secret. The cost
  is the minimum (4) for the same reason as above, so that connecting stays cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import bcrypt

from evfabric.core.credentials import TOKEN_PREFIX, parse_token

__all__ = [
    "BCRYPT_COST",
    "TOKEN_PREFIX",
    "bcrypt_hash",
    "nats_user",
    "new_token",
    "parse_token",
    "sha256_hash",
    "sha256_matches",
]

BCRYPT_COST = 4


def new_token() -> tuple[str, str]:
    """A new ``(id, token string)``."""
    token_id = secrets.token_hex(8)
    return token_id, f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"


def nats_user(token: str) -> str:
    """The NATS user name a token connects as (its id)."""
    return parse_token(token)


def sha256_hash(token: str) -> str:
    """The hex SHA-256 of a token string (what the web service compares)."""
    return hashlib.sha256(token.encode()).hexdigest()


def sha256_matches(token: str, stored: str) -> bool:
    """Constant-time comparison of a token against its stored SHA-256."""
    return hmac.compare_digest(sha256_hash(token), stored)


def bcrypt_hash(token: str) -> str:
    """The bcrypt hash of a token string, in the ``$2b$...`` form nats-server accepts as a password.

    bcrypt reads at most 72 bytes: the token (about 64 characters) fits whole.
    """
    return bcrypt.hashpw(token.encode(), bcrypt.gensalt(rounds=BCRYPT_COST)).decode()
