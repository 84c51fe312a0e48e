"""The client half of the `steadyfit` command: submit, jobs, show, metrics, cancel, download."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from core.predictions import table
from core.states import TERMINAL
from service.charts.specs import JOB_CHARTS
from service.jobs.schemas import JobRead
from steadyfit.client import ApiError, Client, ClientSettings

console = Console()
HEADLINE_METRICS = ("train_loss", "val_loss", "val_accuracy", "val_mae")
ID_WIDTH = 36  # a job id (a UUID), always printed whole so that it can be copied
SHORT_ID = 8  # the fewest characters of an id that a command accepts, as git does
ID_PREFIX = re.compile("[0-9a-f-]+")


class CommandError(Exception):
    """An ordinary mistake (a missing file, an unknown id): `run` prints its one line and exits with 1."""


def client(args: argparse.Namespace) -> Client:
    return Client(url=args.url, api_key=args.api_key)


def load_spec(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CommandError(f"cannot read the spec {path}: {exc.strerror}") from exc
    try:
        spec = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path}, line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        raise CommandError(f"{path}: not YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(spec, dict):
        raise CommandError(f"{path}: a job spec is a JSON/YAML object")
    return spec


def job_id(api: Client, given: str) -> str:
    """The id of the caller's job that `given` names: its whole id, or (like git) its first 8 or more
    characters, when they start the id of no other job of the caller's."""
    given = given.lower()
    if len(given) < SHORT_ID:
        raise CommandError(f"`{given}` is too short: give a job's id or its first {SHORT_ID} characters or more")
    if len(given) >= ID_WIDTH or not ID_PREFIX.fullmatch(given):
        return given  # whole, or no id's prefix: the server answers for it
    page = api.jobs(id_prefix=given, limit=10)
    if not page.items:
        raise CommandError(f"no job whose id starts with `{given}`")
    if len(page.items) > 1:
        matches = [f"  {job.id}  {job.status}  {job.name or ''}".rstrip() for job in page.items]
        more = ["  and more"] if page.next_cursor else []
        raise CommandError("\n".join([f"`{given}` starts the ids of several jobs; give more of it:", *matches, *more]))
    return page.items[0].id


def tags(given: list[str] | None) -> dict[str, str] | None:
    """`--tag key:value` options as a map; None when there are none."""
    if not given:
        return None
    pairs = [tag.partition(":") for tag in given]
    for tag, (key, colon, _) in zip(given, pairs, strict=True):
        if not (key and colon):
            raise CommandError(f"`{tag}` is not a tag: write it as key:value, e.g. --tag team:red")
    return {key: value for key, _, value in pairs}


def submit(args: argparse.Namespace) -> None:
    """Submit a job spec (JSON or YAML); with --follow, show its progress until it ends."""
    with client(args) as api:
        job = api.submit(load_spec(Path(args.spec)), project=args.project, tags=tags(args.tag))
        console.print(f"[bold]{job.id}[/] queued" + (f" ({job.name})" if job.name else ""))
        if args.follow:
            follow(api, job)


class FollowProgress(Progress):
    """The status and the bar on one line, the epoch's metrics on the next, so that both fit 80 columns."""

    def __init__(self, console: Console) -> None:
        super().__init__(
            TextColumn("[bold]{task.fields[status]}", table_column=Column(no_wrap=True, min_width=9)),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            yield Text(task.fields["line"], overflow="fold")


def follow(api: Client, job: JobRead) -> None:
    """A live progress bar: the epoch's metrics, the best epoch so far and the early-stopping countdown."""
    patience = job.spec.early_stopping.patience if job.spec.early_stopping else None
    with FollowProgress(console) as progress:
        bar = progress.add_task("epochs", total=job.spec.training.epochs, status="queued", line="")
        for event in api.events(job.id):
            if event.event == "status":
                progress.update(bar, status=event.data["status"])
            if event.event != "epoch":
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
    table = Table(show_header=False)
    table.add_column()
    table.add_column(min_width=ID_WIDTH)
    table.add_row("id", Text(job.id, no_wrap=True))
    shown = ("name", "status", "priority", "queue_position", "estimated_start", "stop_reason", "epochs_completed")
    for field in (*shown, "best_epoch", "attempts", "error"):
        value = getattr(job, field, None)
        if value is not None:
            table.add_row(field, str(value))
    for label, metrics in (("best", job.best_metrics), ("test", job.test_metrics)):
        for key, value in (metrics or {}).items():
            if label == "test" or key in HEADLINE_METRICS:
                table.add_row(f"{label} {key}", "null" if value is None else f"{value:.4f}")
    console.print(table)


def jobs(args: argparse.Namespace) -> None:
    """List jobs, newest first or in --order-by, filtered by project, tags, status and spec values."""
    with client(args) as api:
        page = api.jobs(
            status=args.status,
            limit=args.limit,
            project=args.project,
            tags=tags(args.tag),
            where=args.where or (),
            order_by=args.order_by,
        )
    table = Table(
        Column("id", no_wrap=True, min_width=ID_WIDTH), "name", "project", "status", "epochs", "best", "stop reason"
    )
    table.add_column("created")
    for job in page.items:
        table.add_row(
            job.id,
            job.name or "",
            job.project,
            job.status,
            str(job.epochs_completed),
            str(job.best_epoch or ""),
            job.stop_reason or "",
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


def queue(args: argparse.Namespace) -> None:
    """Queued and running jobs per owner (an admin sees every owner; anyone else only themselves), and in all."""
    with client(args) as api:
        found = api.queue()
    table = Table("owner", "queued", "running")
    for row in found.owners:
        table.add_row(row.owner, str(row.queued), str(row.running))
    table.add_section()
    table.add_row("all owners", str(found.queued), str(found.running))
    console.print(table)


def show(args: argparse.Namespace) -> None:
    """Show one job."""
    with client(args) as api:
        show_job(api.job(job_id(api, args.job_id)))


def metrics(args: argparse.Namespace) -> None:
    """Print a job's per-epoch metrics (a table, or CSV with --csv)."""
    with client(args) as api:
        found = job_id(api, args.job_id)
        if args.csv:
            sys.stdout.write(api.metrics_csv(found))
            return
        page = api.metrics(found)
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
        job = api.cancel(job_id(api, args.job_id))
    console.print(f"{job.id}: {job.status}" + (" (stopping)" if job.status == "running" else ""))


def download(args: argparse.Namespace) -> None:
    """Download a job's artifacts (its kept weights, as safetensors)."""
    directory = Path(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    with client(args) as api:
        found = job_id(api, args.job_id)
        for artifact in api.artifacts(found).items:
            console.print(str(api.download(found, artifact.name, directory)))


def diagnose(args: argparse.Namespace) -> None:
    """Print a job's diagnosis: the verdict, its onset, the evidence and the spec changes to try."""
    with client(args) as api:
        found = api.diagnosis(job_id(api, args.job_id))
    onset = f" from epoch {found.onset_epoch}" if found.onset_epoch is not None else ""
    state = "" if found.final else f" (so far: the job is {found.status})"
    console.print(f"[bold]{found.verdict.replace('_', ' ')}[/]{onset}{state}")
    for key, value in found.evidence.items():
        if value is not None:
            console.print(f"  {key}: {_cell(value)}")
    for number, suggestion in enumerate(found.suggestions, start=1):
        changes = ", ".join(f"{path} = {json.dumps(value)}" for path, value in suggestion.changes.items())
        console.print(f"try {number}: {changes}  [dim]({suggestion.reason})[/]")


def chart(args: argparse.Namespace) -> None:
    """Write one of a job's charts: Vega-Lite JSON on standard output, or an image with --png or --svg."""
    matching = [name for name in JOB_CHARTS if name.startswith(args.name)]
    if len(matching) != 1:
        raise CommandError(f"no chart `{args.name}`; the charts are: {', '.join(JOB_CHARTS)}")
    out, format = (args.png, "png") if args.png else (args.svg, "svg") if args.svg else (None, "json")
    with client(args) as api:
        body = api.chart(job_id(api, args.job_id), matching[0], format)
    if out is None:
        sys.stdout.write(body.decode() + "\n")
    else:
        Path(out).write_bytes(body)
        console.print(f"{matching[0]} → {out}")


def logs(args: argparse.Namespace) -> None:
    """Print a job's log lines; with --follow, keep printing new ones until the job has ended."""
    seen = 0
    with client(args) as api:
        found = job_id(api, args.job_id)
        while True:
            page = api.logs(found, after=seen)
            for line in page.items:
                stamp = line.created_at.strftime("%H:%M:%S")
                console.print(f"{line.seq:>5} {stamp} {line.level:<7} {line.message}", markup=False, soft_wrap=True)
                seen = line.seq
            if page.items:
                continue  # more may be waiting beyond this page
            if not args.follow or page.status in TERMINAL:
                return
            time.sleep(1.0)


def rerun(args: argparse.Namespace) -> None:
    """Submit a job's spec again; --set PATH=VALUE (JSON values) changes fields, e.g. --set model.dropout=0.3."""
    changes: dict[str, Any] = {}
    for assignment in args.set or []:
        path, separator, text = assignment.partition("=")
        if not separator or not path:
            raise CommandError(f"--set {assignment!r}: write PATH=VALUE, e.g. model.dropout=0.3")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text  # a bare word is a string: --set optimizer.name=sgd
        *parents, leaf = path.split(".")
        node = changes
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    with client(args) as api:
        job = api.rerun(job_id(api, args.job_id), changes or None)
        console.print(f"submitted {job.id} (a rerun of {job.rerun_of})", soft_wrap=True)
        if args.follow:
            follow(api, job)


def predict(args: argparse.Namespace) -> None:
    """Predict with a job's model for the rows of a file; CSV on standard output, a row per input row."""
    path = Path(args.file)
    with client(args) as api:
        found = job_id(api, args.job_id)
        if path.suffix.lower() == ".json":
            body = json.loads(path.read_text())
            answer = api.predict(found, body.get("rows"), records=body.get("records"))
        else:
            answer = api.predict_file(found, path)
    out = csv.writer(sys.stdout)
    out.writerow(table.header(answer.classes, bool(answer.names)))
    answers = np.asarray(answer.probabilities if answer.classes else answer.values)
    out.writerows(table.rows(0, answers, answer.classes, answer.names))


JOB_ID_HELP = f"The job's id, or its first {SHORT_ID} characters or more."


def add_client_command(
    commands: argparse._SubParsersAction, name: str, handler: Any, help_text: str
) -> argparse.ArgumentParser:
    """A command that calls the server: its handler, and --url and --api-key."""
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler)
    sub.add_argument("--url", help="Server URL (default: $STEADYFIT_URL or http://127.0.0.1:8000).")
    sub.add_argument("--api-key", help="API key (default: $STEADYFIT_API_KEY).")
    return sub


def add_commands(commands: argparse._SubParsersAction) -> None:
    def add(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        return add_client_command(commands, name, handler, help_text)

    sub = add("submit", submit, "Submit a job spec (JSON or YAML).")
    sub.add_argument("spec", help="Path to the spec file.")
    sub.add_argument("--follow", action="store_true", help="Show live progress until the job ends.")
    sub.add_argument("--project", help="The job's project (default: the spec file's, or `default`).")
    sub.add_argument("--tag", action="append", metavar="KEY:VALUE", help="A tag of the job (repeatable).")
    sub = add("jobs", jobs, "List jobs, newest first or in --order-by.")
    sub.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    sub.add_argument("--limit", type=int, default=20)
    sub.add_argument("--project", help="Only the jobs of this project.")
    sub.add_argument("--tag", action="append", metavar="KEY:VALUE", help="Only jobs with this tag (repeatable).")
    sub.add_argument(
        "--where",
        action="append",
        metavar="EXPR",
        help="Only jobs whose spec has this value, e.g. 'model.dropout>=0.2' (repeatable; docs/search.md).",
    )
    sub.add_argument(
        "--order-by", metavar="KEY", help="created_at or best_metrics.METRIC, ascending; descending: --order-by=-KEY."
    )
    add("show", show, "Show one job.").add_argument("job_id", help=JOB_ID_HELP)
    add("queue", queue, "Show how many jobs wait and run, per owner and in all.")
    sub = add("metrics", metrics, "Print a job's per-epoch metrics.")
    sub.add_argument("job_id", help=JOB_ID_HELP)
    sub.add_argument("--csv", action="store_true", help="CSV on standard output.")
    add("cancel", cancel, "Cancel a job.").add_argument("job_id", help=JOB_ID_HELP)
    add("diagnose", diagnose, "Diagnose a job: overfitting, underfitting, unstable or a good fit.").add_argument(
        "job_id", help=JOB_ID_HELP
    )
    sub = add("chart", chart, "Write a job's chart: Vega-Lite JSON, or a PNG or SVG image.")
    sub.add_argument("job_id", help=JOB_ID_HELP)
    sub.add_argument("name", help=f"The chart, or the start of its name: {', '.join(JOB_CHARTS)}.")
    image = sub.add_mutually_exclusive_group()
    image.add_argument("--png", metavar="FILE", help="Write the chart as a PNG image to FILE.")
    image.add_argument("--svg", metavar="FILE", help="Write the chart as an SVG image to FILE.")
    sub = add("logs", logs, "Print a job's log lines (--follow: live, until the job ends).")
    sub.add_argument("job_id", help=JOB_ID_HELP)
    sub.add_argument("--follow", action="store_true", help="Keep printing new lines until the job has ended.")
    sub = add("rerun", rerun, "Submit a job's spec again, changed by --set PATH=VALUE if given.")
    sub.add_argument("job_id", help=JOB_ID_HELP)
    sub.add_argument("--set", action="append", metavar="PATH=VALUE", help="Change a field (repeatable).")
    sub.add_argument("--follow", action="store_true", help="Show live progress until the rerun ends.")
    sub = add("predict", predict, "Predict with a job's model; CSV on standard output.")
    sub.add_argument("job_id", help=JOB_ID_HELP)
    sub.add_argument(
        "file", help='Rows to predict: CSV, Parquet or .npz (array `x`), or JSON ({"rows": …} or {"records": …}).'
    )
    sub = add("download", download, "Download a job's artifacts.")
    sub.add_argument("job_id", help=JOB_ID_HELP)
    sub.add_argument("--out", default=".", help="Directory to write to (default: here).")


def run(handler: Any, args: argparse.Namespace) -> None:
    """Run a command; an ordinary error (a mistake, a server down or saying no) is one line and exit status 1."""
    try:
        handler(args)
    except CommandError as exc:
        raise SystemExit(f"steadyfit {args.command}: {exc}") from None
    except ApiError as exc:
        raise SystemExit(f"steadyfit {args.command}: {api_error(exc)}") from None
    except httpx.TransportError as exc:
        url = args.url or ClientSettings().url
        raise SystemExit(
            f"steadyfit {args.command}: no answer from {url} ({exc or type(exc).__name__}); is the server running? "
            "(`steadyfit serve` starts one; --url or STEADYFIT_URL names another)"
        ) from None
    except KeyboardInterrupt:
        # Ctrl-C is the user's own stop, not a failure to explain; a followed job trains on.
        print(f"steadyfit {args.command}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def api_error(exc: ApiError) -> str:
    """The problem's detail, its status and, for a missing or refused key, where keys come from."""
    text = f"{exc.problem.get('detail') or exc.problem.get('title') or exc.problem} (HTTP {exc.status})"
    if exc.status == 401:
        text += "; pass --api-key KEY or set STEADYFIT_API_KEY (`steadyfit keys create` makes keys)"
    return text
