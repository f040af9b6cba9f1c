"""Bearer tokens known only by their SHA-256 digest: hashing, parsing and constant-time checks.

A server never holds a token in clear: it is configured with hex digests (`sla-stream token
hash` prints one), each optionally naming a principal (`<digest>:<principal>`, e.g. a customer
id for the portal or a source system for ingest). A presented token is hashed and compared with
every configured digest by `hmac.compare_digest`, without stopping at the first match, so the
time taken does not depend on which digest (if any) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

_HEX64 = re.compile(r"[0-9a-f]{64}")


def hash_token(token: str) -> str:
    """The lower-case hex SHA-256 of a token's UTF-8 bytes: what the configuration holds."""
    if not token:
        raise ValueError("a token must not be empty")
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


@dataclass(frozen=True)
class Credential:
    """Who a verified token belongs to. `digest` names the token in logs without revealing it."""

    digest: str
    principal: str | None = None


def parse_entry(entry: str) -> Credential:
    """`<64 hex digits>` or `<64 hex digits>:<principal>`; raises ValueError naming the problem."""
    digest, sep, principal = entry.strip().partition(":")
    digest = digest.strip().lower()
    # Errors never echo the entry: it may be a token configured in clear by mistake.
    if not _HEX64.fullmatch(digest):
        raise ValueError(
            "not a SHA-256 hex digest (64 hex digits); configure the output of "
            "`sla-stream token hash`, never the token itself"
        )
    principal = principal.strip()
    if sep and not principal:
        raise ValueError("empty principal after ':'")
    return Credential(digest, principal or None)


class TokenSet:
    """The accepted tokens, by digest; an empty set accepts nothing."""

    def __init__(self, credentials: Iterable[Credential] = ()) -> None:
        self._entries = tuple((bytes.fromhex(c.digest), c) for c in credentials)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TokenSet:
        """From configuration entries (see `parse_entry`); blank entries are skipped.

        A bad entry raises ValueError naming its position (1-based), not its value.
        """
        credentials = []
        for position, entry in enumerate((e for e in entries if e.strip()), start=1):
            try:
                credentials.append(parse_entry(entry))
            except ValueError as exc:
                raise ValueError(f"token hash entry {position}: {exc}") from None
        return cls(credentials)

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, token: str | None) -> Credential | None:
        """The credential of a presented token, or None; constant time in the matching entry."""
        if not token:
            return None
        presented = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: Credential | None = None
        for digest, credential in self._entries:
            # No early exit: every entry is compared whatever matched before.
            if hmac.compare_digest(presented, digest) and found is None:
                found = credential
        return found

    def authenticate(self, authorization: str | None) -> Credential | None:
        """Verify the bearer token of an `Authorization` header value."""
        return self.verify(bearer_token(authorization))
