"""``jiazheng credit``: a worker's credit record as 家政信用查 answers it (level, score, card colour,
company and grade, then each fact's line of the score), and rebuilding every score from the ledger
with a progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast

import typer
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from cli.rpc import Row, Target, address_option, console, enum_word, fail, invoke, reported_errors, show
from cli.workers import JSON, resource
from jiazheng.credit.v1 import credit_pb2 as pb
from jiazheng.credit.v1 import credit_pb2_grpc
from services.credit.model import BEIJING

app = typer.Typer(
    help="Credit (家政信用查): a worker's record, and rebuilding scores from the ledger (credit service).",
    no_args_is_help=True,
)
PRINCIPAL = typer.Option(
    "operator", "--as", help="the local stack's principal whose key to use; JZ_API_KEY overrides"
)


@app.callback()
def connection(ctx: typer.Context, address: str | None = address_option("credit")) -> None:
    """Where the credit service is (for every command of the group)."""
    ctx.obj = address


def target(ctx: typer.Context, principal: str) -> Target:
    return Target("credit", cast(str | None, ctx.obj), principal)


@app.command("show")
def show_credit(
    ctx: typer.Context,
    worker: str = typer.Argument(..., help="workers/<id> or the id"),
    consumer_ref: str = typer.Option(
        "",
        "--consumer-ref",
        help="a platform asking for its consumer, who may hold the worker's consent grant",
    ),
    principal: str = PRINCIPAL,
    as_json: bool = JSON,
) -> None:
    """A worker's credit record (家政信用查).

    The full record, explained line by line, for operators, the employing company and a platform
    whose consumer holds the worker's consent grant; the public view otherwise.
    """
    request = pb.GetWorkerCreditRequest(name=resource("workers", worker), consumer_ref=consumer_ref)
    reply: pb.GetWorkerCreditResponse = invoke(
        target(ctx, principal), pb.DESCRIPTOR, credit_pb2_grpc, "GetWorkerCredit", request
    )
    show(reply.credit, as_json, record_rows)
    if not as_json and reply.credit.view == pb.VIEW_FULL:
        console.print(lines_table(reply.credit))


def record_rows(message: Message) -> Iterator[Row]:
    """The record's heading: who, which view, level, score (full view), card colour, company and
    grade, model version (full view) and when it was evaluated, in Beijing time."""
    credit = cast(pb.WorkerCredit, message)
    full = credit.view == pb.VIEW_FULL
    yield "worker", credit.worker
    yield "view", enum_word(pb.View.DESCRIPTOR, credit.view)
    yield "level", enum_word(pb.Level.DESCRIPTOR, credit.level).upper()
    if full:
        yield "score", str(credit.score)
    yield "card_colour", credit.card_colour or "unknown"
    yield "company", credit.company or "unknown"
    yield "company_grade", credit.company_grade or "not graded"
    if full:
        yield "model_version", credit.model_version
    yield "evaluate_time", beijing(credit.evaluate_time).isoformat(sep=" ", timespec="seconds")


def beijing(moment: Timestamp) -> datetime:
    return moment.ToDatetime(tzinfo=UTC).astimezone(BEIJING)


def lines_table(credit: pb.WorkerCredit) -> Table:
    """One row per fact, oldest first: its Beijing date, kind, reason and points now; the total."""
    total = sum(line.points for line in credit.lines)
    table = Table(
        Column("date", no_wrap=True),
        "kind",
        Column("reason", footer="total"),
        Column("points", justify="right", footer=f"{total:+d}"),
        title=f"score {credit.score}: 600 plus each fact's points, within 0..1000",
        show_footer=True,
    )
    for line in credit.lines:
        table.add_row(
            beijing(line.occur_time).date().isoformat(), line.kind, line.reason, f"{line.points:+d}"
        )
    return table


@app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    apply: bool = typer.Option(
        False, "--apply", help="store the rebuilt scores and publish the level changes (after a model change)"
    ),
    principal: str = PRINCIPAL,
) -> None:
    """Rebuild every worker's score from the ledger with the current model (operators).

    Shows its progress; without --apply it only compares with the live scores, and exits 1 if any
    differs.
    """
    last = rebuilt(target(ctx, principal), apply)
    console.print(
        f"{last.workers_done} workers, {last.entries_done} entries, {last.mismatches} mismatches",
        highlight=False,
    )
    if last.mismatches and not apply:
        raise typer.Exit(1)


def rebuilt(to: Target, apply: bool) -> pb.RebuildScoresResponse:
    """Stream RebuildScores into a progress bar; its last message, or a failure if it ended early."""
    last = pb.RebuildScoresResponse()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with reported_errors(), to.channel() as channel, Progress(*columns, console=console) as progress:
        task = progress.add_task("rebuilding", total=None)
        stub = credit_pb2_grpc.CreditAdminServiceStub(channel)
        for last in stub.RebuildScores(pb.RebuildScoresRequest(apply=apply), metadata=to.metadata()):
            description = f"model {last.model_version}: {last.entries_done:,} entries"
            progress.update(
                task, total=last.workers_total, completed=last.workers_done, description=description
            )
    if not last.finished:
        fail("the rebuild ended before it finished: see the credit service's log")
    return last
