"""Tables the CLI prints: the render summary, a quote, the model catalog."""

from __future__ import annotations

from decimal import Decimal

from rich.table import Table

from reelgate.types import Job, Model, Quote

__all__ = ["models_table", "quote_table", "summary_table"]

_STYLE = {"succeeded": "green", "failed": "red", "canceled": "magenta"}


def _usd(value: Decimal | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def summary_table(job: Job) -> Table:
    table = Table(title=f"job {job.id}: {job.status}", title_justify="left")
    for col in ("#", "shot", "kind", "model", "duration", "cost", "sha256"):
        table.add_column(col, justify="right" if col in ("#", "duration", "cost") else "left")
    for shot in job.shots:
        out = shot.output
        status = f"[{_STYLE.get(shot.status, 'white')}]{shot.status}[/]"
        detail = out.sha256[:16] if out else (shot.error_message or status)
        table.add_row(
            str(shot.index),
            shot.name or "-",
            shot.kind,
            shot.model,
            f"{out.duration_s:.2f}s" if out and out.duration_s else "-",
            _usd(shot.cost_usd),
            detail if out else f"{status} {detail}",
        )
    if job.final:
        table.add_section()
        table.add_row(
            "",
            "final cut",
            "",
            "",
            f"{job.final.duration_s or 0:.2f}s",
            _usd(job.cost_usd),
            job.final.sha256[:16],
        )
    elif job.final_error:
        table.caption = f"[red]{job.final_error}[/red]"
    return table


def quote_table(quote: Quote) -> Table:
    table = Table(title=f"quote: {_usd(quote.total_usd)}", title_justify="left", show_lines=True)
    for col in ("#", "kind", "model", "params", "route", "notes", "estimate"):
        table.add_column(col)
    for plan in quote.shots:
        p = plan.params
        params = f"{p.duration_s:g}s {p.width}x{p.height} {p.fps}fps"
        route = "\n".join(
            f"{c.model} ({c.status}{': ' + c.reason if c.reason else ''})" for c in plan.route
        )
        notes = [a.message for a in plan.adjustments] + [f"lint: {w.message}" for w in plan.lint]
        table.add_row(
            str(plan.index),
            plan.kind,
            plan.model,
            params,
            route,
            "\n".join(notes) or "-",
            _usd(plan.estimate_usd),
        )
    for w in quote.warnings:
        table.caption = (table.caption or "") + f"{w.message}\n"
    return table


def models_table(models: list[Model]) -> Table:
    table = Table(title="models", title_justify="left")
    for col in ("id", "modes", "durations", "resolutions", "price", "status"):
        table.add_column(col)
    for m in models:
        c = m.capabilities
        durations = (
            f"{c.duration_range[0]:g}..{c.duration_range[1]:g}s"
            if c.duration_range
            else ",".join(f"{d:g}" for d in c.durations or []) + "s"
        )
        price = ", ".join(f"{r} ${v}/s" for r, v in m.price.per_second_usd.items()) or (
            f"${m.price.per_video_usd}/video" if m.price.per_video_usd is not None else "free"
        )
        status = "[green]ready[/green]" if m.configured else f"[dim]{m.reason}[/dim]"
        table.add_row(m.id, ",".join(c.modes), durations, ",".join(c.resolutions), price, status)
    return table
