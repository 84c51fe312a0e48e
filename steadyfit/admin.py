"""The operator's half of the `steadyfit` command: API keys and per-owner limits, straight in the database."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from core.db.engine import Database
from core.settings import Settings
from core.states import Priority
from core.tenants import keys, limits

console = Console()


def database() -> Database:
    return Database(Settings().resolved_database_url, pooled=False)


def create_key(args: argparse.Namespace) -> None:
    """Create a key and print it: the only time it is shown."""
    try:
        with database().session() as session:
            key, secret = keys.create(session, args.owner, admin=args.admin)
    except keys.InvalidOwner as exc:
        raise SystemExit(f"steadyfit keys create: {exc}") from exc
    console.print(f"created key {key.id} for {key.owner}" + (" (admin)" if key.admin else ""), highlight=False)
    console.print("this is the only time the key is shown; send it as `Authorization: Bearer <key>`:")
    print(secret)


def list_keys(args: argparse.Namespace) -> None:
    table = Table()
    table.add_column("id", no_wrap=True, min_width=36)  # whole, even in a narrow terminal: `keys revoke` takes it
    for name in ("owner", "admin", "key", "created", "revoked"):
        table.add_column(name)
    with database().session() as session:
        for key in keys.list_keys(session, args.owner):
            revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
            created = key.created_at.isoformat(timespec="seconds")
            table.add_row(key.id, key.owner, "yes" if key.admin else "", key.shown + "…", created, revoked)
    console.print(table)


def revoke_key(args: argparse.Namespace) -> None:
    with database().session() as session:
        key = keys.revoke(session, args.key_id)
    if key is None:
        raise SystemExit(f"steadyfit keys revoke: no single key with id `{args.key_id}` (give 8 or more characters)")
    console.print(f"revoked key {key.id} of {key.owner}", highlight=False)


def show_limits(args: argparse.Namespace) -> None:
    settings = Settings()
    with database().session() as session:
        effective = limits.limits_for(session, settings, args.owner)
        overridden = limits.overrides(session, args.owner)
    table = Table("limit", args.owner, "server")
    server = limits.server_limits(settings)
    for name in limits.NAMES:
        mark = "" if name in overridden else " (server's)"
        table.add_row(name, f"{getattr(effective, name)}{mark}", str(getattr(server, name)))
    console.print(table)


def set_limits(args: argparse.Namespace) -> None:
    values: dict[str, Any] = {name: getattr(args, name) for name in limits.NAMES if getattr(args, name) is not _UNSET}
    if not values:
        raise SystemExit("steadyfit limits set: name at least one limit, e.g. --max-queued-jobs 10")
    try:
        with database().session() as session:
            limits.set_overrides(session, args.owner, values)
    except ValueError as exc:
        raise SystemExit(f"steadyfit limits set: {exc}") from exc
    show_limits(args)


_UNSET: Any = object()


def _limit_value(text: str) -> int | None:
    """A positive number, or `default` to go back to the server's value."""
    if text == "default":
        return None
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("a limit is a positive number, or `default`")
    return value


def _weight_value(text: str) -> float | None:
    """A positive number (fractions allowed), or `default` for the default weight of 1."""
    if text == "default":
        return None
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("a weight is a positive number, or `default`")
    return value


def _priority_value(text: str) -> Priority | None:
    """`low`, `normal` or `high`, or `default` to go back to the server's `max_priority`."""
    if text == "default":
        return None
    try:
        return Priority(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a priority is `low`, `normal` or `high`, or `default`") from None


# How `limits set` reads a value, and what its help calls it; every other limit is a whole number, N.
PARSERS: dict[str, tuple[Any, str]] = {"max_priority": (_priority_value, "PRIORITY"), "weight": (_weight_value, "W")}


def add_commands(commands: argparse._SubParsersAction) -> None:
    def group(name: str, help_text: str) -> argparse._SubParsersAction:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
        return parser.add_subparsers(dest=f"{name}_command", required=True)

    def add(group: argparse._SubParsersAction, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    keys_group = group("keys", "Manage API keys (in the database of STEADYFIT_DATABASE_URL or the data directory).")
    sub = add(keys_group, "create", create_key, "Create an API key and print it once.")
    sub.add_argument("--owner", required=True, help="Who the key acts for; what it creates belongs to them.")
    sub.add_argument("--admin", action="store_true", help="The key sees and manages every owner's resources.")
    sub = add(keys_group, "list", list_keys, "List API keys (never their secrets).")
    sub.add_argument("--owner", help="Only this owner's keys.")
    add(keys_group, "revoke", revoke_key, "Revoke an API key.").add_argument(
        "key_id", help="The key's id (or 8+ chars)."
    )

    limits_group = group("limits", "Show or override one owner's limits.")
    add(limits_group, "show", show_limits, "Show the limits that apply to an owner.").add_argument("owner")
    sub = add(limits_group, "set", set_limits, "Override some of an owner's limits (`default` clears one).")
    sub.add_argument("owner")
    for name in limits.NAMES:
        parse, metavar = PARSERS.get(name, (_limit_value, "N"))
        sub.add_argument(f"--{name.replace('_', '-')}", dest=name, type=parse, default=_UNSET, metavar=metavar)
