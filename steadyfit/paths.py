"""`steadyfit path submit FILE [--follow]` and `steadyfit path show ID [--csv]`: regularization paths."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.table import Column, Table

from service.paths.schemas import PathRead
from steadyfit.commands import client, console, load_spec

POLL_SECONDS = 1.0


def submit(args: argparse.Namespace) -> None:
    """Submit a path (JSON or YAML); with --follow, print each point as it ends, then the table."""
    with client(args) as api:
        path = api.submit_path(load_spec(Path(args.spec)))
        console.print(f"[bold]{path.id}[/] {path.parameter} path of {len(path.values)} points" + _name(path))
        if not args.follow:
            return
        reported: set[str] = set()
        while True:
            for point in path.points:
                if point.status not in ("queued", "running") and point.job_id not in reported:
                    reported.add(point.job_id)
                    loss = "" if point.val_loss is None else f" val_loss {point.val_loss:.4f}"
                    console.print(f"  {path.parameter} = {point.value:g}: {point.status}{loss}")
            if path.status != "running":
                break
            time.sleep(POLL_SECONDS)
            path = api.path(path.id)
    show_table(path)


def show(args: argparse.Namespace) -> None:
    """Show a path: each point, the best strength and the 1-SE one (or the table as CSV with --csv)."""
    with client(args) as api:
        if args.csv:
            sys.stdout.write(api.path_csv(args.path_id))
            return
        show_table(api.path(args.path_id))


def show_table(path: PathRead) -> None:
    strength = path.parameter.split(".")[-1]
    chosen = Column("", no_wrap=True, min_width=9)
    table = Table(strength, "val_loss", "± SE", "gap", "sparsity", "|w| ≥ 1e-3", "test", chosen, title=path.status)
    for point in path.points:
        test = (point.test_metrics or {}).get("accuracy", (point.test_metrics or {}).get("r2"))
        mark = ",".join(n for n, c in (("best", path.best), ("1-SE", path.one_se)) if c and c.job_id == point.job_id)
        cells = (point.val_loss, point.val_loss_se, point.gap, point.sparsity, point.weights_above_threshold, test)
        table.add_row(f"{point.value:g}", *(_cell(value) for value in cells), mark)
    console.print(table)
    if path.best is not None and path.one_se is not None:
        console.print(f"best {path.parameter} = {path.best.value:g}; 1-SE: {path.one_se.value:g}")


def add_commands(commands: argparse._SubParsersAction, add: Any) -> None:
    """`path submit` and `path show`, made by `add` (steadyfit.commands), which gives each --url and --api-key."""
    path = commands.add_parser("path", help="Regularization paths: one strength, trained at several values.")
    sub = path.add_subparsers(dest="path_command", required=True, metavar="{submit,show}")
    submit_parser = add(sub, "submit", submit, "Submit a path spec (JSON or YAML).")
    submit_parser.add_argument("spec", help="Path to the path's spec file.")
    submit_parser.add_argument("--follow", action="store_true", help="Print each point as it ends, then the table.")
    show_parser = add(sub, "show", show, "Show a path's points, its best strength and the 1-SE one.")
    show_parser.add_argument("path_id", help="The path's id.")
    show_parser.add_argument("--csv", action="store_true", help="CSV on standard output.")


def _name(path: PathRead) -> str:
    return f" ({path.name})" if path.name else ""


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))
