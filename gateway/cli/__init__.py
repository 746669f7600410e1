"""``reelgate``: render, quote, models, serve, local-backend, verify, admin.

``render`` and ``quote`` run the gateway in this process by default (embedded: the
same app, reached over an in-memory transport through the SDK); ``--server URL``
sends the same calls to a running gateway instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from gateway.cli.admin import register as register_admin
from gateway.cli.storyboard import StoryboardError, load_storyboard
from gateway.cli.summary import models_table, quote_table, summary_table

if TYPE_CHECKING:
    from fastapi import FastAPI

    from gateway.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="reelgate",
    help="One API for every video-generation model. Render storyboards, quote them, serve the API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
#: Messages never wrap (a path:line: field message stays greppable); tables written to a
#: file or pipe get room instead of an 80-column squeeze.
console = Console(stderr=True, soft_wrap=True)
out = Console(width=None if sys.stdout.isatty() else 160)

Server = Annotated[
    str | None,
    typer.Option("--server", envvar="REELGATE_BASE_URL", help="Use a running gateway at this URL."),
]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="REELGATE_API_KEY", help="API key for --server."),
]
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Embedded mode's data folder [default: ./reelgate-data]."),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _storyboard(path: Path):  # type: ignore[no-untyped-def]
    try:
        return load_storyboard(path)
    except StoryboardError as exc:
        raise _fail(str(exc)) from None


@app.command()
def render(
    storyboard: Annotated[Path, typer.Argument(help="Storyboard YAML (see README).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the MP4.")] = Path(
        "out.mp4"
    ),
    server: Server = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Render a storyboard to one MP4 (the final cut), with live per-shot progress."""
    from gateway.cli.session import open_session
    from reelgate import ReelgateError

    body = _storyboard(storyboard)
    if len(body.shots) > 1:
        body = body.model_copy(update={"assemble": True})

    async def run() -> int:
        async with open_session(server, api_key, data_dir) as client:
            job = await client.jobs.create(body)
            console.print(f"job [bold]{job.id}[/bold]: {len(job.shots)} shots", highlight=False)
            job = await client.jobs.wait(job, progress=True)
            out.print(summary_table(job))
            if job.status not in ("succeeded", "partially_succeeded"):
                console.print(f"[red]job {job.status}[/red]: nothing to write")
                return 1
            await client.jobs.download(job, output)
            console.print(f"wrote [bold]{output}[/bold]", highlight=False)
            return 0 if job.status == "succeeded" else 1

    try:
        code = asyncio.run(run())
    except ReelgateError as exc:
        raise _fail(str(exc), 1) from None
    raise typer.Exit(code)


@app.command()
def quote(
    storyboard: Annotated[Path, typer.Argument(help="Storyboard YAML.")],
    server: Server = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Show the plan and price of a storyboard without running it."""
    from gateway.cli.session import open_session
    from reelgate import ReelgateError

    body = _storyboard(storyboard)

    async def run() -> None:
        async with open_session(server, api_key, data_dir, executor=False) as client:
            out.print(quote_table(await client.quote(body)))

    try:
        asyncio.run(run())
    except ReelgateError as exc:
        raise _fail(str(exc), 1) from None


@app.command()
def models(server: Server = None, api_key: ApiKey = None, data_dir: DataDir = None) -> None:
    """List the catalog: capabilities, prices, and whether each backend is configured."""
    from gateway.cli.session import open_session
    from reelgate import ReelgateError

    async def run() -> None:
        async with open_session(server, api_key, data_dir, executor=False) as client:
            out.print(models_table(await client.models.list()))

    try:
        asyncio.run(run())
    except ReelgateError as exc:
        raise _fail(str(exc), 1) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes answering the API; more than 1 needs PostgreSQL and "
            "REELGATE_EXECUTOR=none (workers run shots elsewhere).",
        ),
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(help="Log one line per request (off when a proxy in front logs them)."),
    ] = True,
) -> None:
    """Run the gateway's HTTP API (with the embedded executor unless REELGATE_EXECUTOR=none)."""
    import uvicorn

    from gateway.app import create_app
    from gateway.settings import Settings

    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    _log_setup()
    if workers == 1:
        app_ = create_app(settings)
        uvicorn.run(app_, host=host, port=port, log_level="info", access_log=access_log)
        return
    _check_workers(settings)
    # Schema and the default key once, here, before the workers race to create them.
    app_ = create_app(settings)
    asyncio.run(_run_lifespan(app_))
    if data_dir:  # each worker builds its own app from the environment
        os.environ["REELGATE_DATA_DIR"] = str(data_dir)
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
    )


def _log_setup() -> None:
    """INFO for reelgate and uvicorn; httpx logs one line per request at INFO, which at
    thousands of vendor polls a minute costs real CPU and buries everything else."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _check_workers(settings: Settings) -> None:
    if settings.executor != "none":
        raise _fail("--workers needs REELGATE_EXECUTOR=none: each worker would run every shot.")
    if settings.resolved_database_url().startswith("sqlite"):
        raise _fail("--workers needs PostgreSQL: SQLite takes one writer at a time.")


async def _run_lifespan(app_: FastAPI) -> None:
    async with app_.router.lifespan_context(app_):
        pass


local_app = typer.Typer(
    help="Run a local generation service (one per GPU), or build the tiny test models.",
    no_args_is_help=False,
)
app.add_typer(local_app, name="local-backend")


@local_app.callback(invoke_without_command=True)
def local_backend(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8008,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Models config (TOML): the diffusers models to serve next to the preview model.",
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="Device this process runs on \\[default: cpu].")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Where outputs wait to be fetched \\[default: a temp dir].")
    ] = None,
) -> None:
    """Run a local generation service (one per GPU); point REELGATE_LOCAL_BACKEND_URLS at it."""
    if ctx.invoked_subcommand is not None:
        return
    from local_backend.app import serve as serve_backend
    from local_backend.config import BackendConfig, load_config

    given = {"device": device, "work_dir": work_dir}  # flags override the models file
    overrides: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    try:
        config = load_config(models, **overrides) if models else BackendConfig(**overrides)  # type: ignore[arg-type]
    except (OSError, ValueError) as exc:  # a missing file, bad TOML, an invalid entry
        raise _fail(f"--models {models}: {exc}") from None
    _log_setup()
    serve_backend(host, port, config)


@local_app.command("make-tiny")
def make_tiny(
    directory: Annotated[Path, typer.Argument(help="Folder for the pipelines and models.toml.")],
    force: Annotated[bool, typer.Option(help="Rebuild pipelines already there.")] = False,
) -> None:
    """Build tiny random-weight Wan and LTX pipelines offline (no hub) and a models.toml.

    Their frames are noise: the weights are random. They exist so the real diffusers
    path (from_pretrained, denoise, decode, encode) runs on any laptop in seconds.
    """
    from local_backend.tiny import make_tiny as build

    config = build(directory, force=force)
    console.print(f"wrote [bold]{config}[/bold]", highlight=False)
    console.print(
        f"serve them: REELGATE_LOCAL_MODELS={config} reelgate render ...  "
        f"or  reelgate local-backend --models {config}",
        highlight=False,
    )


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The MP4 to check.")],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="Provenance manifest JSON (a shot's, a final cut's, or a job's "
            "GET /v1/jobs/{id}/provenance) \\[default: the sidecar next to FILE].",
        ),
    ] = None,
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust",
            help="Trust anchor (PEM root certificate) for the C2PA credential; repeatable "
            "\\[default: REELGATE_C2PA_TRUST_ANCHORS].",
        ),
    ] = None,
) -> None:
    """Check FILE against its provenance manifest (sha256) and its C2PA credential.

    Exit code 0: verified. 1: a hash mismatch, an Invalid credential, a signer
    outside the trust anchors given, or nothing to check against. 2: usage.
    """
    from rich.markup import escape

    from gateway.cli.verification import VerifyError, exit_code
    from gateway.cli.verification import verify as run_checks
    from gateway.settings import Settings

    anchors = list(trust or [])
    if not anchors and (default := Settings().c2pa_trust_anchors):
        anchors = [default]
    try:
        checks = run_checks(file, manifest, anchors)
    except VerifyError as exc:
        raise _fail(str(exc)) from None
    style = {"ok": "green", "failed": "red", "skipped": "yellow"}
    out.print(f"[bold]{escape(str(file))}[/bold]", highlight=False)
    for check in checks:
        colour = style[check.status]
        out.print(
            f"  {check.name:<5} [{colour}]{check.status:<7}[/] {escape(check.summary)}",
            highlight=False,
        )
        for line in check.details:
            out.print(f"                {escape(line)}", highlight=False)
    code = exit_code(checks)
    if code == 0:
        out.print("[green]verified[/]")
    elif any(c.status == "failed" for c in checks):
        out.print("[red]not verified[/]")
    else:
        out.print("[red]not verified[/]: nothing to check it against", highlight=False)
    raise typer.Exit(code)


admin_app = typer.Typer(help="Operator tasks.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
register_admin(admin_app)  # tenants, keys, credits


@admin_app.command("c2pa-dev-cert")
def c2pa_dev_cert(
    directory: Annotated[Path, typer.Argument(help="Folder for root.pem, signer.pem, signer.key.")],
    days: Annotated[int, typer.Option(min=1, help="Validity of the signing certificate.")] = 365,
    force: Annotated[bool, typer.Option(help="Replace a chain already there.")] = False,
) -> None:
    """Make a local test CA chain for C2PA signing (development only).

    Production uses a certificate from a real CA with the documentSigning or
    emailProtection extended key usage.
    """
    from gateway.c2pa import make_dev_cert

    existing = [p for p in ("signer.key", "signer.pem", "root.pem") if (directory / p).exists()]
    if existing and not force:
        raise _fail(f"{directory} already holds {', '.join(existing)}; pass --force to replace")
    dev = make_dev_cert(directory, days=days)
    console.print(f"wrote [bold]{dev.cert}[/bold], {dev.key} and {dev.root}", highlight=False)
    out.print(
        f"export REELGATE_C2PA_CERT={dev.cert.resolve()}\n"
        f"export REELGATE_C2PA_KEY={dev.key.resolve()}\n"
        f"export REELGATE_C2PA_TRUST_ANCHORS={dev.root.resolve()}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "outputs signed with it read back as Trusted only against this root: "
        f"reelgate verify FILE.mp4 --trust {dev.root}",
        highlight=False,
    )


def main() -> None:
    from pydantic import ValidationError

    from gateway.catalog import CatalogError
    from gateway.settings import ConfigError, Settings

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except (ConfigError, CatalogError) as exc:  # a setting that points at a bad file
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except ValidationError as exc:
        if exc.title != Settings.__name__:  # not the environment's fault: a bug
            raise
        for error in exc.errors():  # a REELGATE_* variable that does not parse
            field, *inner = (str(part) for part in error["loc"])
            where = f" ({'.'.join(inner)})" if inner else ""
            console.print(
                f"[red]error:[/red] REELGATE_{field.upper()}{where}: {error['msg']}",
                highlight=False,
            )
        sys.exit(2)
