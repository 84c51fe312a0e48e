"""The client half of the `steadyfit` command: submit, jobs, show, metrics, cancel, download."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from service.jobs.schemas import JobRead
from steadyfit.client import ApiError, Client

console = Console()
HEADLINE_METRICS = ("train_loss", "val_loss", "val_accuracy", "val_mae")


def client(args: argparse.Namespace) -> Client:
    return Client(url=args.url, api_key=args.api_key)


def load_spec(path: Path) -> dict[str, Any]:
    text = path.read_text()
    spec = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    if not isinstance(spec, dict):
        raise SystemExit(f"{path}: a job spec is a JSON/YAML object")
    return spec


def submit(args: argparse.Namespace) -> None:
    """Submit a job spec (JSON or YAML); with --follow, show its progress until it ends."""
    with client(args) as api:
        job = api.submit(load_spec(Path(args.spec)))
        console.print(f"[bold]{job.id}[/] queued" + (f" ({job.name})" if job.name else ""))
        if args.follow:
            follow(api, job)


def follow(api: Client, job: JobRead) -> None:
    """A live progress bar: the epoch's metrics, the best epoch so far and the early-stopping countdown."""
    patience = job.spec.early_stopping.patience if job.spec.early_stopping else None
    columns = (
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[line]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("epochs", total=job.spec.training.epochs, status="queued", line="")
        for event in api.events(job.id):
            if event.event == "status":
                progress.update(bar, status=event.data["status"])
                continue
            epoch = int(event.data["epoch"])
            shown = [f"{k} {event.data[k]:.4f}" for k in HEADLINE_METRICS if event.data.get(k) is not None]
            best = api.job(job.id).best_epoch  # as early stopping judged it; a cheap read
            if best is not None:
                shown.append(f"best {best}")
                if patience is not None:
                    shown.append(f"stops in {max(0, patience - (epoch - best))}")
            progress.update(bar, completed=epoch, line="  ".join(shown))
    show_job(api.job(job.id))


def show_job(job: JobRead) -> None:
    table = Table(title=f"job {job.id}", show_header=False)
    for field in ("name", "status", "stop_reason", "epochs_completed", "best_epoch", "attempts", "error"):
        value = getattr(job, field)
        if value is not None:
            table.add_row(field, str(value))
    for label, metrics in (("best", job.best_metrics), ("test", job.test_metrics)):
        for key, value in (metrics or {}).items():
            if label == "test" or key in HEADLINE_METRICS:
                table.add_row(f"{label} {key}", "null" if value is None else f"{value:.4f}")
    console.print(table)


def jobs(args: argparse.Namespace) -> None:
    """List jobs, newest first."""
    with client(args) as api:
        page = api.jobs(status=args.status, limit=args.limit)
    table = Table("id", "name", "status", "epochs", "best", "stop reason", "created")
    for job in page.items:
        table.add_row(
            job.id,
            job.name or "",
            job.status,
            str(job.epochs_completed),
            str(job.best_epoch or ""),
            job.stop_reason or "",
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


def show(args: argparse.Namespace) -> None:
    """Show one job."""
    with client(args) as api:
        show_job(api.job(args.job_id))


def metrics(args: argparse.Namespace) -> None:
    """Print a job's per-epoch metrics (a table, or CSV with --csv)."""
    with client(args) as api:
        if args.csv:
            sys.stdout.write(api.metrics_csv(args.job_id))
            return
        page = api.metrics(args.job_id)
    keys = [k for k in ("epoch", *HEADLINE_METRICS, "lr") if any(k in item for item in page.items)]
    table = Table(*keys)
    for item in page.items:
        table.add_row(*(_cell(item.get(k)) for k in keys))
    console.print(table)


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def cancel(args: argparse.Namespace) -> None:
    """Cancel a job."""
    with client(args) as api:
        job = api.cancel(args.job_id)
    console.print(f"{job.id}: {job.status}" + (" (stopping)" if job.status == "running" else ""))


def download(args: argparse.Namespace) -> None:
    """Download a job's artifacts (its kept weights, as safetensors)."""
    directory = Path(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    with client(args) as api:
        for artifact in api.artifacts(args.job_id).items:
            console.print(str(api.download(args.job_id, artifact.name, directory)))


def add_commands(commands: argparse._SubParsersAction) -> None:
    def add(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("--url", help="Server URL (default: $STEADYFIT_URL or http://127.0.0.1:8000).")
        sub.add_argument("--api-key", help="API key (default: $STEADYFIT_API_KEY).")
        return sub

    sub = add("submit", submit, "Submit a job spec (JSON or YAML).")
    sub.add_argument("spec", help="Path to the spec file.")
    sub.add_argument("--follow", action="store_true", help="Show live progress until the job ends.")
    sub = add("jobs", jobs, "List jobs, newest first.")
    sub.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    sub.add_argument("--limit", type=int, default=20)
    add("show", show, "Show one job.").add_argument("job_id")
    sub = add("metrics", metrics, "Print a job's per-epoch metrics.")
    sub.add_argument("job_id")
    sub.add_argument("--csv", action="store_true", help="CSV on standard output.")
    add("cancel", cancel, "Cancel a job.").add_argument("job_id")
    sub = add("download", download, "Download a job's artifacts.")
    sub.add_argument("job_id")
    sub.add_argument("--out", default=".", help="Directory to write to (default: here).")


def run(handler: Any, args: argparse.Namespace) -> None:
    try:
        handler(args)
    except ApiError as exc:
        console.print(f"[red]error[/] {exc}")
        for error in exc.problem.get("errors") or []:
            console.print(f"  {error['field']}: {error['message']}")
        if exc.status == 401:
            console.print("  pass --api-key KEY or set STEADYFIT_API_KEY (keys come from `steadyfit keys create`)")
        raise SystemExit(1) from exc
