"""``jiazheng workers``: companies (家政企业), workers (家政服务员), their checks and the CSV import."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import typer
from rich.progress import Progress

from cli.rpc import Target, console, enum_number, enum_words, fail, reported_errors, show, show_rows
from cli.worker_import import (
    COLUMNS,
    LIST_SEPARATOR,
    Outcome,
    RowRequest,
    RowResult,
    read_rows,
    register,
    request_id,
    summary,
)
from jiazheng.workers.v1 import workers_pb2 as pb
from jiazheng.workers.v1 import workers_pb2_grpc

app = typer.Typer(help="Companies, workers and their checks (the workers service).", no_args_is_help=True)
company_app = typer.Typer(help="Household-service companies (家政企业).", no_args_is_help=True)
app.add_typer(company_app, name="company")

JSON = typer.Option(False, "--json", help="print JSON for scripts instead of tables")
ADDRESS = typer.Option(
    None,
    "--address",
    envvar="JZ_WORKERS_ADDRESS",
    help="host:port of the service (default: the local stack's)",
)
PRINCIPAL = typer.Option(
    "operator",
    "--as",
    help="the local stack's principal whose key to use, e.g. demo-company; JZ_API_KEY overrides",
)
WORKER_COLUMNS = (
    "name",
    "company",
    "masked_full_name",
    "trades",
    "service_districts",
    "skill_level",
    "card_colour",
)


def connection(ctx: typer.Context, address: str | None = ADDRESS, principal: str = PRINCIPAL) -> None:
    """Where the workers service is and whom to call it as (for every command of the group)."""
    ctx.obj = Target("workers", address, principal)


app.callback()(connection)


def call(ctx: typer.Context, method: str, request: Any) -> Any:
    """``method`` of WorkerService or CardService; a failure prints its status and exits 1."""
    target = cast(Target, ctx.obj)
    with reported_errors(), target.channel() as channel:
        in_cards = method in pb.DESCRIPTOR.services_by_name["CardService"].methods_by_name
        stub = workers_pb2_grpc.CardServiceStub if in_cards else workers_pb2_grpc.WorkerServiceStub
        return getattr(stub(channel), method)(request, metadata=target.metadata())


def resource(kind: str, text: str) -> str:
    """``kind/<id>`` from either that or the bare id."""
    return text if text.startswith(f"{kind}/") else f"{kind}/{text}"


def words(enum: Any) -> str:
    return ", ".join(enum_words(enum.DESCRIPTOR))


OUTLETS = typer.Option([], "--outlet", help="a community outlet as NAME=DISTRICT_CODE; repeatable")
DISTRICTS = typer.Option(..., "--district", help="a district code the worker serves; repeatable")
TRADES = typer.Option(..., "--trade", help=f"a trade: {words(pb.Trade)}; repeatable")
ABILITIES = typer.Option([], "--ability", help=f"a Beijing special ability: {words(pb.SpecialAbility)}")
CSV_FILE = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the CSV file")


@company_app.command("create")
def company_create(
    ctx: typer.Context,
    credit_code: str = typer.Option(..., help="unified social credit code (统一社会信用代码), 18 characters"),
    name: str = typer.Option(..., help="the registered name"),
    premises: int = typer.Option(..., help="premises area in m², at least 50"),
    outlet: list[str] = OUTLETS,
    model: str = typer.Option("employee", help=f"employment model: {words(pb.EmploymentModel)}"),
    company_id: str = typer.Option("", help="the id to give it (a UUID); default: the service picks one"),
    as_json: bool = JSON,
) -> None:
    """Register a company (operators)."""
    company = pb.Company(
        social_credit_code=credit_code,
        display_name=name,
        premises_square_metres=premises,
        outlets=[_outlet(text) for text in outlet],
        employment_model=cast(
            pb.EmploymentModel.ValueType, enum_number(pb.EmploymentModel.DESCRIPTOR, model)
        ),
    )
    request = pb.CreateCompanyRequest(request_id=str(uuid.uuid4()), company=company, company_id=company_id)
    show(call(ctx, "CreateCompany", request).company, as_json)


def _outlet(text: str) -> pb.Outlet:
    name, equals, district = text.rpartition("=")
    if not equals:
        raise typer.BadParameter(f"{text!r} is not NAME=DISTRICT_CODE", param_hint="--outlet")
    return pb.Outlet(display_name=name.strip(), district_code=district.strip())


@company_app.command("get")
def company_get(ctx: typer.Context, company: str, as_json: bool = JSON) -> None:
    """Show a company (its own principal or an operator)."""
    show(call(ctx, "GetCompany", pb.GetCompanyRequest(name=resource("companies", company))).company, as_json)


@app.command("register")
def register_worker(
    ctx: typer.Context,
    company: str = typer.Option(..., help="companies/<id> or the id"),
    id_number: str = typer.Option(..., help="resident ID number, 18 characters"),
    full_name: str = typer.Option(..., "--name", help="the worker's name"),
    mobile: str = typer.Option(..., help="mainland mobile number"),
    photo: str = typer.Option(..., help="reference to the worker's photo"),
    district: list[str] = DISTRICTS,
    trade: list[str] = TRADES,
    origin_province: str = typer.Option("", help="province code when the worker came through 劳务对接"),
    as_json: bool = JSON,
) -> None:
    """Register one worker. Running it again with the same company and ID number is a retry."""
    parent = resource("companies", company)
    request = pb.CreateWorkerRequest(
        request_id=request_id(parent, id_number),
        parent=parent,
        id_number=id_number,
        full_name=full_name,
        mobile=mobile,
        photo_ref=photo,
        service_districts=district,
        trades=[cast(pb.Trade.ValueType, enum_number(pb.Trade.DESCRIPTOR, t)) for t in trade],
        origin_province=origin_province,
    )
    show(call(ctx, "CreateWorker", request).worker, as_json)


@app.command("get")
def get_worker(ctx: typer.Context, worker: str, as_json: bool = JSON) -> None:
    """Show a worker, masked."""
    show(call(ctx, "GetWorker", pb.GetWorkerRequest(name=resource("workers", worker))).worker, as_json)


@app.command("list")
def list_workers(
    ctx: typer.Context,
    company: str = typer.Option("-", help="companies/<id> or the id; - for every company (operators)"),
    district: str = typer.Option("", help="only workers serving this district code"),
    trade: str = typer.Option("", help=f"only this trade: {words(pb.Trade)}"),
    min_level: str = typer.Option("", help=f"only at least this skill level: {words(pb.SkillLevel)}"),
    colour: str = typer.Option("", help=f"only this card colour: {words(pb.CardColour)}"),
    as_json: bool = JSON,
) -> None:
    """List workers, every page of them, filtered."""
    request = pb.ListWorkersRequest(
        parent=resource("companies", company),
        district_code=district,
        trade=cast(pb.Trade.ValueType, _optional(pb.Trade, trade)),
        min_skill_level=cast(pb.SkillLevel.ValueType, _optional(pb.SkillLevel, min_level)),
        card_colour=cast(pb.CardColour.ValueType, _optional(pb.CardColour, colour)),
        page_size=500,
    )
    show_rows("workers", list(_pages(ctx, request)), WORKER_COLUMNS, as_json)


def _optional(enum: Any, word: str) -> int:
    return enum_number(enum.DESCRIPTOR, word) if word else 0


def _pages(ctx: typer.Context, request: pb.ListWorkersRequest) -> Iterator[pb.Worker]:
    while True:
        reply: pb.ListWorkersResponse = call(ctx, "ListWorkers", request)
        yield from reply.workers
        if not reply.next_page_token:
            return
        request.page_token = reply.next_page_token


@app.command("transfer")
def transfer(
    ctx: typer.Context,
    worker: str,
    to: str = typer.Option(..., help="the new company, companies/<id> or the id"),
    as_json: bool = JSON,
) -> None:
    """Move a worker to another company, keeping the employment history."""
    request = pb.TransferWorkerRequest(name=resource("workers", worker), company=resource("companies", to))
    show(call(ctx, "TransferWorker", request).worker, as_json)


@app.command("health-check")
def health_check(
    ctx: typer.Context,
    worker: str,
    tier: str = typer.Option(..., help=f"the check's tier: {words(pb.HealthTier)}"),
    issued: str = typer.Option(..., help="issue date, YYYY-MM-DD"),
    hospital: str = typer.Option(..., help="the hospital that made the check"),
    certificate: str = typer.Option(..., help="the health certificate's number"),
    as_json: bool = JSON,
) -> None:
    """Record a health check (体检); it is valid 12 months from its issue date."""
    request = pb.RecordHealthCheckRequest(
        worker=resource("workers", worker),
        tier=cast(pb.HealthTier.ValueType, enum_number(pb.HealthTier.DESCRIPTOR, tier)),
        issue_date=issued,
        hospital=hospital,
        certificate_number=certificate,
    )
    show(call(ctx, "RecordHealthCheck", request), as_json)


@app.command("background-check")
def background_check(
    ctx: typer.Context,
    worker: str,
    checked: str = typer.Option(..., help="when the check was made, YYYY-MM-DD"),
    identity_genuine: bool = typer.Option(True, help="the identity was found genuine"),
    listed_crime: bool = typer.Option(False, help="a listed crime within 5 years"),
    mental_illness: bool = typer.Option(False, help="a severe mental illness"),
    drug_offence: bool = typer.Option(False, help="a drug offence within 3 years"),
    as_json: bool = JSON,
) -> None:
    """Record a background check (operators); anything flagged makes the card RED."""
    request = pb.RecordBackgroundCheckRequest(
        worker=resource("workers", worker),
        identity_genuine=identity_genuine,
        listed_crime_within_5_years=listed_crime,
        severe_mental_illness=mental_illness,
        drug_offence_within_3_years=drug_offence,
        check_date=checked,
    )
    show(call(ctx, "RecordBackgroundCheck", request), as_json)


@app.command("training")
def training(
    ctx: typer.Context,
    worker: str,
    course: str = typer.Option(...),
    provider: str = typer.Option(..., help="who gave the course"),
    hours: int = typer.Option(...),
    completed: str = typer.Option(..., help="completion date, YYYY-MM-DD"),
    exam_passed: bool = typer.Option(False, help="the final exam was passed"),
) -> None:
    """Record a training course."""
    request = pb.RecordTrainingRequest(
        worker=resource("workers", worker),
        course=course,
        provider=provider,
        hours=hours,
        completion_date=completed,
        exam_passed=exam_passed,
    )
    call(ctx, "RecordTraining", request)
    console.print("recorded")


@app.command("certificate")
def certificate(
    ctx: typer.Context,
    worker: str,
    trade: str = typer.Option(..., help=f"{words(pb.Trade)}"),
    level: str = typer.Option(..., help=f"{words(pb.SkillLevel)}"),
    number: str = typer.Option(..., help="the certificate's number"),
    issued: str = typer.Option(..., help="issue date, YYYY-MM-DD"),
    ability: list[str] = ABILITIES,
    as_json: bool = JSON,
) -> None:
    """Record a national skill certificate; prints the worker's highest level after it."""
    request = pb.RecordSkillCertificateRequest(
        worker=resource("workers", worker),
        trade=cast(pb.Trade.ValueType, enum_number(pb.Trade.DESCRIPTOR, trade)),
        level=cast(pb.SkillLevel.ValueType, enum_number(pb.SkillLevel.DESCRIPTOR, level)),
        certificate_number=number,
        issue_date=issued,
        special_abilities=[
            cast(pb.SpecialAbility.ValueType, enum_number(pb.SpecialAbility.DESCRIPTOR, a)) for a in ability
        ],
    )
    show(call(ctx, "RecordSkillCertificate", request), as_json)


@app.command("consent-code")
def consent_code(
    ctx: typer.Context,
    worker: str,
    grant_hours: int = typer.Option(0, help="how long the grant lasts once redeemed; 0 means 24"),
    as_json: bool = JSON,
) -> None:
    """A one-time consent code (授权查询) the worker hands a consumer; valid 10 minutes, once."""
    request = pb.CreateConsentCodeRequest(worker=resource("workers", worker), grant_hours=grant_hours)
    show(call(ctx, "CreateConsentCode", request), as_json)


@app.command("pay-bands")
def pay_bands(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The hourly pay guidance (fen) of every skill level."""
    reply = call(ctx, "ListPayBands", pb.ListPayBandsRequest())
    show_rows(
        "pay bands (fen per hour)",
        reply.pay_bands,
        ("level", "min_fen_per_hour", "max_fen_per_hour"),
        as_json,
    )


IMPORT_HELP = (
    "Register a company's workers from a CSV file, one row per worker.\n\n"
    f"The first line names the columns: {', '.join(COLUMNS)}. service_districts and trades hold one or"
    f" more values separated by '{LIST_SEPARATOR}' (trades: {words(pb.Trade)}); origin_province may be"
    " empty. UTF-8, with or without a byte-order mark.\n\n"
    "Each row is registered on its own: a bad row is reported with its line number and the reason, and"
    " the others continue. Importing the same file again registers nobody twice: those rows are reported"
    " as already registered. Exit code 1 when any row failed."
)


@app.command("import", help=IMPORT_HELP)
def import_workers(
    ctx: typer.Context,
    file: Path = CSV_FILE,
    company: str = typer.Option(..., help="companies/<id> or the id"),
) -> None:
    parent = resource("companies", company)
    call(ctx, "GetCompany", pb.GetCompanyRequest(name=parent))  # a wrong company or key ends it here
    with file.open(encoding="utf-8-sig", newline="") as lines:
        try:
            rows = list(read_rows(lines, parent))
        except (ValueError, csv.Error) as exc:  # CsvHeaderError, UnicodeDecodeError among them
            fail(f"{file}: {exc}")
    results = _register_all(ctx, rows)
    counts = summary(results)
    console.print(", ".join(f"{outcome.value} {counts[outcome]}" for outcome in Outcome), highlight=False)
    if counts[Outcome.FAILED]:
        raise typer.Exit(1)


def _register_all(ctx: typer.Context, rows: list[RowRequest | RowResult]) -> list[RowResult]:
    started = datetime.now(UTC)
    target = cast(Target, ctx.obj)
    results = []
    with target.channel() as channel, Progress(console=console, disable=not console.is_terminal) as bar:
        stub = workers_pb2_grpc.WorkerServiceStub(channel)
        create = partial(stub.CreateWorker, metadata=target.metadata())
        task = bar.add_task("registering", total=len(rows))
        for row in rows:
            result = register(row, create, started) if isinstance(row, RowRequest) else row
            bar.console.print(result.text(), highlight=False, soft_wrap=True)
            results.append(result)
            bar.advance(task)
    return results
