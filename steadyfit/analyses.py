"""`steadyfit analysis ID KIND [--run] [--option NAME=VALUE ...]`: a job's analysis (onnx, pruning,
confusion, landscape, lr_range), asked for first with --run; printed as JSON once it has succeeded or failed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.spec.analysis import OPTIONS
from steadyfit.commands import CommandError, client, job_id

WAIT_SECONDS = 3600.0


def analysis(args: argparse.Namespace) -> None:
    """Print a job's analysis; with --run, ask a worker for it first and wait for it."""
    with client(args) as api:
        found_id = job_id(api, args.job_id)
        if args.run:
            api.analyze(found_id, args.kind, dict(_option(text) for text in args.option))
        found = api.analysis(found_id, args.kind, wait=WAIT_SECONDS if args.run else 0.0)
    if found.status == "failed":
        raise CommandError(f"the {args.kind} analysis failed: {found.error}")
    sys.stdout.write(json.dumps(found.result if found.status == "succeeded" else {"status": found.status}) + "\n")


def _option(text: str) -> tuple[str, Any]:
    name, equals, value = text.partition("=")
    if not equals:
        raise CommandError(f"--option takes NAME=VALUE, got `{text}`")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def add_commands(commands: argparse._SubParsersAction, add: Any) -> None:
    sub = add(commands, "analysis", analysis, "Print a job's analysis (onnx, pruning, confusion, landscape, lr_range).")
    sub.add_argument("job_id", help="The job's id, or its first 8 characters or more.")
    sub.add_argument("kind", choices=list(OPTIONS), help="Which analysis.")
    sub.add_argument("--run", action="store_true", help="Ask a worker for it first, and wait for it.")
    sub.add_argument("--option", action="append", default=[], metavar="NAME=VALUE", help="An option of the kind.")
