"""The `sla-stream token` commands: bearer tokens for the HTTP APIs, configured by hash only."""

from __future__ import annotations

import secrets
import sys

import click

from sla_stream.web.auth import hash_token


@click.group("token")
def token_group() -> None:
    """Bearer tokens for the HTTP APIs (the server holds their SHA-256, never the token)."""


@token_group.command("hash")
def token_hash() -> None:
    """Print the SHA-256 hex digest of a token read from stdin (surrounding blanks ignored).

    \b
    printf '%s' "$TOKEN" | sla-stream token hash
    """
    # Typed by hand at a terminal: prompt without echoing it.
    tty = sys.stdin.isatty()
    text = click.prompt("token", hide_input=True) if tty else sys.stdin.read()
    token = text.strip()
    if not token:
        raise click.ClickException("no token on stdin")
    click.echo(hash_token(token))


@token_group.command("new")
def token_new() -> None:
    """Print a new random token and its hash: the token for the client, the hash for the server."""
    token = secrets.token_urlsafe(32)
    click.echo(f"token {token}")
    click.echo(f"hash  {hash_token(token)}")
