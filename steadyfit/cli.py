"""The `steadyfit` command: serve (everything in one), api, worker, migrate; keys and limits; the client."""

from __future__ import annotations

import argparse
import atexit
import errno
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import warnings
from collections.abc import Sequence

from core.settings import Settings
from service import request_id
from steadyfit import admin, analyses, paths, webhooks
from steadyfit import commands as commands_module

log = logging.getLogger("steadyfit")


def migrate(_args: argparse.Namespace) -> None:
    """Bring the database to the newest schema."""
    from core.db.migrate import upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url)
    log.info("database at the newest schema")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def choose_auth(args: argparse.Namespace, default: str | None) -> None:
    """Settle whether the API needs keys, into STEADYFIT_AUTH (which the API processes read): `--auth`,
    else STEADYFIT_AUTH, else `default`; None means keys are needed unless the address is loopback.
    Without keys on another address, STEADYFIT_ALLOWED_HOSTS must say which names the server answers to."""
    settings = Settings()
    chosen = args.auth or (settings.auth if "auth" in settings.model_fields_set else default)
    if chosen is None:
        if not is_loopback(args.host):
            raise SystemExit(
                f"steadyfit {args.command}: {args.host} is reachable from other machines, and no API keys are "
                "asked for. Create a key (`steadyfit keys create --owner NAME --admin`) and pass `--auth keys`, or "
                "pass `--auth off` to serve without keys anyway."
            )
        chosen = "off"
        log.info("no API keys needed: only this machine reaches %s; pass --auth keys to ask for them", args.host)
    if chosen == "off" and not is_loopback(args.host) and settings.allowed_hosts is None:
        # Without keys the API answers only its loopback names (service/browsers.py), which others do not use.
        raise SystemExit(
            f"steadyfit {args.command}: without API keys on {args.host}, name the hosts clients reach this server "
            "by in STEADYFIT_ALLOWED_HOSTS (a JSON list, e.g. '[\"gpu-box:8000\"]'; '[\"*\"]' for any)."
        )
    os.environ["STEADYFIT_AUTH"] = chosen


def check_port_free(args: argparse.Namespace) -> None:
    """Refuse, in one line, an address that another process already listens on: before anything starts,
    rather than uvicorn's bare `[Errno 98]` once the worker is up."""
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise SystemExit(f"steadyfit {args.command}: cannot listen on {args.host}:{args.port}: {exc}") from None
            make = f" (`make serve PORT={args.port + 1}`)" if args.command == "serve" else ""
            raise SystemExit(
                f"steadyfit {args.command}: port {args.port} on {args.host} is in use (another server?); choose "
                f"another with --port {args.port + 1}{make}"
            ) from None


def api(args: argparse.Namespace) -> None:
    """Run the HTTP API (no torch in this process)."""
    import uvicorn

    if args.command == "api":
        check_port_free(args)
        choose_auth(args, default="keys")  # production: keys unless told otherwise

    if args.workers > 1:
        share_prometheus_metrics("prometheus-api")  # several processes answer /metrics in turn

    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        log_config=request_id.log_config(),
        access_log=False,
    )


def share_prometheus_metrics(name: str) -> None:
    """Let prometheus-client add up the metrics of this process and its children, from files kept here.
    Must run before prometheus_client is imported."""
    directory = Settings().data_dir.resolve() / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def worker(args: argparse.Namespace) -> None:
    """Run a Celery worker that trains jobs."""
    if args.metrics_port:
        share_prometheus_metrics(f"prometheus-worker-{os.getpid()}")
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(args.metrics_port, registry=registry)
    from workers.environment import prepare_torch

    settings = Settings()
    prepare_torch(settings)
    import torch
    from celery.exceptions import SecurityWarning

    import workers.training.engine  # noqa: F401  (imported once here, so forked children start warm)
    from core.db.engine import Database
    from core.queue import TaskQueue
    from workers.app import app, threads_per_job
    from workers.reconciler import Reconciler
    from workers.webhooks import Deliverer

    if torch.cuda.is_available():
        # A fresh child per job returns every byte of GPU memory to the driver. On the CPU there is
        # nothing to return, and reusing the child saves about a second per job.
        app.conf.worker_max_tasks_per_child = 1

    concurrency = args.concurrency or settings.worker_concurrency
    torch.set_num_threads(threads_per_job(len(os.sched_getaffinity(0)), concurrency))  # inherited by each child
    reconciler = Reconciler(Database(settings.resolved_database_url, pooled=False), TaskQueue(settings), settings)
    reconciler.start()
    Deliverer(Database(settings.resolved_database_url, pooled=False), settings).start()
    # Celery's warning to root is about pickled messages running code as root; it refuses those outright, and
    # our workers accept only JSON.
    warnings.filterwarnings("ignore", "You're running the worker with superuser privileges", SecurityWarning)
    try:
        app.worker_main(
            [
                "worker",
                "--queues",
                settings.queue_name,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                settings.log_level,
                "--hostname",
                f"steadyfit-{socket.gethostname()}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
            ]
        )
        code: object = 0
    except SystemExit as exit_:  # how Celery's worker command ends
        code = exit_.code
    exit_now(code)


def exit_now(code: object) -> None:
    """Exit once Celery has shut down (its children joined, each job handed back or finished), skipping the
    interpreter's teardown of every loaded module: with torch loaded that alone takes about a second, which
    `docker stop` and every restart would wait for. The exit handlers still run: Celery's restart on SIGHUP
    is one (it execs the worker anew)."""
    try:
        if isinstance(code, str):
            print(code, file=sys.__stderr__)
        atexit._run_exitfuncs()
        logging.shutdown()
        for stream in (sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
    finally:
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def serve(args: argparse.Namespace) -> None:
    """Everything on one machine: SQLite, a file-system queue, one worker and the API."""
    check_port_free(args)
    choose_auth(args, default=None)
    settings = Settings()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STEADYFIT_DATA_DIR": str(data_dir)}
    os.environ.update(env)
    migrate(args)
    log.info("data directory: %s", data_dir)
    child = subprocess.Popen([sys.executable, "-m", "steadyfit.cli", "worker"], env=env)
    # uvicorn re-raises the SIGTERM it handled once it has shut down; exiting through SystemExit
    # instead lets the `finally` below stop the worker rather than leave it orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        api(args)
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="steadyfit", description="Training as a service.")
    commands = root.add_subparsers(dest="command", required=True)

    def add(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, text in (
        ("serve", serve, "Run the API and one worker on this machine (SQLite, no servers needed)."),
        ("api", api, "Run the HTTP API."),
    ):
        sub = add(name, handler, text)
        sub.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
        sub.add_argument("--port", type=int, default=8000, help="Port to bind (default 8000).")
        sub.add_argument("--workers", type=int, default=1, help="API processes (default 1).")
        sub.add_argument(
            "--auth",
            choices=["keys", "off"],
            help="`keys`: every /v1 request needs an API key; `off`: none does. Default: $STEADYFIT_AUTH, else "
            + ("`off` on a loopback address and a refusal to start on any other." if name == "serve" else "`keys`."),
        )
    sub = add("worker", worker, "Run a training worker.")
    sub.add_argument("--concurrency", type=int, default=None, help="Jobs trained at once.")
    sub.add_argument("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port.")
    add("migrate", migrate, "Create or upgrade the database schema.")
    admin.add_commands(commands)
    commands_module.add_commands(commands)
    paths.add_commands(commands, commands_module.add_client_command)
    analyses.add_commands(commands, commands_module.add_client_command)
    webhooks.add_commands(commands, commands_module.add_client_command)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format=request_id.LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(request_id.RequestIdFilter())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the client's output
    args = parser().parse_args(argv)
    commands_module.run(args.handler, args)


if __name__ == "__main__":
    main()
