"""`steadyfit webhooks add URL --events job.succeeded [--threshold 'val_accuracy>=0.9']`, `list`, `rm ID`
and `deliveries ID`."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from core.states import WebhookEvent
from core.webhooks.thresholds import parse
from service.webhooks.schemas import WebhookRead
from steadyfit.commands import client, console


def add(args: argparse.Namespace) -> None:
    """Create a webhook and print its id and signing secret (shown only now)."""
    with client(args) as api:
        webhook = api.add_webhook(args.target, args.events, args.threshold)
    console.print(f"[bold]{webhook.id}[/] {webhook.url} ({described(webhook)})")
    console.print(f"secret: {webhook.secret}  (shown only now: keep it to verify Steadyfit-Signature)")


def list_webhooks(args: argparse.Namespace) -> None:
    with client(args) as api:
        page = api.webhooks()
    table = Table("id", "url", "events", "created")
    for webhook in page.items:
        table.add_row(webhook.id, webhook.url, described(webhook), f"{webhook.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


def described(webhook: WebhookRead) -> str:
    """Its events, the threshold written beside `metric.threshold`: `job.failed, metric.threshold val_r2 > 0.8`."""
    threshold = webhook.threshold
    return ", ".join(
        f"{event} {threshold.metric} {threshold.op} {threshold.value:g}"
        if event == WebhookEvent.METRIC_THRESHOLD and threshold is not None
        else str(event)
        for event in webhook.events
    )


def threshold_argument(written: str) -> dict[str, Any]:
    try:
        return parse(written)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def remove(args: argparse.Namespace) -> None:
    with client(args) as api:
        api.delete_webhook(args.webhook_id)
    console.print(f"webhook {args.webhook_id} deleted")


def deliveries(args: argparse.Namespace) -> None:
    """Each delivery, newest first: its event, status, attempts and the last attempt's outcome."""
    with client(args) as api:
        page = api.webhook_deliveries(args.webhook_id)
    table = Table("event id", "type", "status", "attempts", "last answer", "created")
    for delivery in page.items:
        last = delivery.attempt_log[-1] if delivery.attempt_log else None
        answer = "" if last is None else (last.error or str(last.status_code))
        table.add_row(
            delivery.event_id,
            delivery.event_type,
            delivery.status,
            str(delivery.attempts),
            answer,
            f"{delivery.created_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)


def add_commands(commands: argparse._SubParsersAction, add_command: Any) -> None:
    """`webhooks add|list|rm|deliveries`, made by `add_command` (steadyfit.commands), which gives each --url
    and --api-key."""
    webhooks = commands.add_parser("webhooks", help="URLs that are sent the events of your jobs and sweeps.")
    sub = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="{add,list,rm,deliveries}")
    add_parser = add_command(sub, "add", add, "Create a webhook; prints its signing secret, once.")
    add_parser.add_argument("target", metavar="URL", help="Where events are POSTed (http or https).")
    add_parser.add_argument(
        "--events",
        nargs="+",
        required=True,
        choices=[str(event) for event in WebhookEvent],
        metavar="EVENT",
        help=f"One or more of: {', '.join(WebhookEvent)}.",
    )
    add_parser.add_argument(
        "--threshold",
        type=threshold_argument,
        metavar="RULE",
        help="With metric.threshold: METRIC OP VALUE, e.g. 'val_accuracy>=0.9' (OP: >=, >, <=, <).",
    )
    add_command(sub, "list", list_webhooks, "List your webhooks.")
    add_command(sub, "rm", remove, "Delete a webhook.").add_argument("webhook_id", help="The webhook's id.")
    add_command(sub, "deliveries", deliveries, "Show a webhook's deliveries and their attempts.").add_argument(
        "webhook_id", help="The webhook's id."
    )
