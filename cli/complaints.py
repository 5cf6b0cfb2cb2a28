"""``jiazheng complaints`` and ``jiazheng mediation``: consumers' complaints (投诉) and workers'
disputes on their SLA clocks, and the mediation bodies' queues (调解) with leases, agreements (调解协议)
and legal-aid referrals. Times print in Beijing time with the offset shown."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import typer
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.table import Column, Table

from cli.orders import in_yuan
from cli.rpc import (
    Row,
    Target,
    address_option,
    console,
    enum_number,
    enum_word,
    enum_words,
    invoke,
    show,
    show_rows,
)
from cli.workers import JSON, resource
from jiazheng.complaints.v1 import complaints_pb2 as c
from jiazheng.complaints.v1 import complaints_pb2_grpc
from libs.common.beijing import BEIJING

app = typer.Typer(
    help="Complaints (投诉) and workers' disputes on their SLA clocks (the complaints service).",
    no_args_is_help=True,
)
mediation_app = typer.Typer(
    help="Mediation (调解): the bodies' queues, leases, agreements and legal-aid referrals.",
    no_args_is_help=True,
)

CASE = typer.Argument(..., help="cases/<id> or the id")
SEVERITY = typer.Option(..., help=", ".join(enum_words(c.Severity.DESCRIPTOR)))
DESCRIPTION = typer.Option(..., help="what happened (personal data: kept encrypted, never published)")
EVIDENCE = typer.Option([], "--evidence", help="a reference to evidence in your store; repeatable")
REQUEST_ID = typer.Option("", help="the UUID of the request to retry; default: a new one")
ORDER = typer.Option("", "--order", help="orders/<id> or the id")
RESULT = typer.Option(..., help=", ".join(enum_words(c.OutcomeResult.DESCRIPTOR)))
AT_FAULT = typer.Option("", help="the party at fault: worker, company, consumer or insurer; default: none")
COMPENSATION = typer.Option(0, help="compensation owed to the complainant, in fen (分)")
BODY = typer.Option(
    "", "--body", help=f"{', '.join(enum_words(c.MediationBody.DESCRIPTOR))}; operators name one"
)
PAGE_SIZE = typer.Option(50, "--max", help="how many, 1 to 200")
UNDERTAKINGS = typer.Option(
    ..., "--undertaking", help="PARTY:ACTION:YYYY-MM-DD, e.g. 'worker:退还押金:2026-12-20'; repeatable"
)
QUEUE_COLUMNS = (
    Column("case", no_wrap=True),
    "kind",
    "category",
    "severity",
    "state / held by",
    "lease until",
    "deadline",
    "time left",
)
REFERRAL_COLUMNS = (Column("case", no_wrap=True), "dispute", "referred", "deadline", "status", "time left")
TIME_FIELDS = frozenset({"deadline", "lease_expire_time", "create_time"})


def connection(defaults: Mapping[str, str], fallback: str) -> Callable[..., None]:
    """A group's callback: where the complaints service is and whom to call it as; without ``--as``,
    the principal ``defaults`` names for the command, otherwise ``fallback``."""
    commands: dict[str, list[str]] = {}
    for command, principal in defaults.items():
        commands.setdefault(principal, []).append(command)
    named = "; ".join(f"{principal} for {', '.join(names)}" for principal, names in commands.items())
    principal_option: Any = typer.Option(
        None,
        "--as",
        help=f"the local stack's principal whose key to use (default: {named}; otherwise {fallback}); "
        "JZ_API_KEY overrides",
    )

    def callback(
        ctx: typer.Context,
        address: str | None = address_option("complaints"),
        principal: str | None = principal_option,
    ) -> None:
        chosen = principal or defaults.get(ctx.invoked_subcommand or "", fallback)
        ctx.obj = Target("complaints", address, chosen)

    return callback


app.callback()(
    connection(
        {"dispute": "union", "respond": "demo-company", "accept": "demo-company", "reject": "demo-company"},
        "demo-platform",
    )
)
mediation_app.callback()(
    connection(
        {"reassign": "operator", "referrals": "operator", "accept-referral": "operator"}, "consumer-mediator"
    )
)


def call(ctx: typer.Context, method: str, request: Message) -> Any:
    """``method`` of ComplaintService or MediationService; a failure prints its status and exits 1."""
    return invoke(cast(Target, ctx.obj), c.DESCRIPTOR, complaints_pb2_grpc, method, request)


def choice(enum: EnumDescriptor, word: str, option: str) -> int:
    """The value of ``enum`` that ``word`` names, or a usage error naming ``option``."""
    try:
        return enum_number(enum, word)
    except typer.BadParameter as exc:
        raise typer.BadParameter(exc.message, param_hint=option) from None


def beijing(moment: Timestamp) -> str:
    """A time as Beijing reads it, with the offset: 2026-03-01 00:00+08:00."""
    return moment.ToDatetime(tzinfo=UTC).astimezone(BEIJING).isoformat(sep=" ", timespec="minutes")


def time_left(deadline: Timestamp, now: datetime) -> str:
    """How long until ``deadline``: 3d 04h, 5h 12m, 7m; or overdue."""
    minutes = int((deadline.ToDatetime(tzinfo=UTC) - now).total_seconds() // 60)
    if minutes <= 0:
        return "overdue"
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    return f"{days}d {hours:02d}h" if days else f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def readable_rows(message: Message) -> Iterator[Row]:
    """A case's or a referral's fields that are set: times in Beijing time, compensation in yuan,
    undertakings as ``party: action by YYYY-MM-DD``."""
    for name, text in in_yuan(message):
        if name in TIME_FIELDS:
            text = beijing(getattr(message, name))
        elif name == "agreement.undertakings":
            text = "; ".join(undertaking_text(u) for u in cast(c.Case, message).agreement.undertakings)
        yield name, text


def undertaking_text(undertaking: c.Undertaking) -> str:
    party = enum_word(c.PartyKind.DESCRIPTOR, undertaking.party)
    return f"{party}: {undertaking.action} by {undertaking.due_date}"


def show_case(ctx: typer.Context, method: str, request: Message, as_json: bool) -> None:
    """Call ``method`` and show the case it answers."""
    show(call(ctx, method, request).complaint_case, as_json, readable_rows)


def named(kind: str, text: str) -> str:
    """``kind/<id>`` from either that or the bare id; empty when ``text`` is."""
    return resource(kind, text) if text else ""


def request_uuid(given: str) -> str:
    """The request id given, or a fresh one announced on stderr for a retry."""
    if given:
        return given
    fresh = str(uuid.uuid4())
    typer.echo(f"request id {fresh} (retry with --request-id {fresh})", err=True)
    return fresh


def outcome(result: str, at_fault: str, compensation_fen: int) -> c.Outcome:
    party = choice(c.PartyKind.DESCRIPTOR, at_fault, "--at-fault") if at_fault else 0
    return c.Outcome(
        result=c.OutcomeResult.ValueType(choice(c.OutcomeResult.DESCRIPTOR, result, "--result")),
        at_fault=c.PartyKind.ValueType(party),
        compensation_fen=compensation_fen,
    )


# -- complaints ---------------------------------------------------------------------------------


@app.command("file")
def file_complaint(
    ctx: typer.Context,
    order: str = ORDER,
    company: str = typer.Option("", help="companies/<id> or the id; default: the order worker's company"),
    worker: str = typer.Option("", help="workers/<id> or the id; default: the order's worker"),
    against: str = typer.Option(..., help="worker or company"),
    category: str = typer.Option(..., help="quality, damage, theft, abuse, no_show, fees or other"),
    severity: str = SEVERITY,
    description: str = DESCRIPTION,
    evidence: list[str] = EVIDENCE,
    request_id: str = REQUEST_ID,
    as_json: bool = JSON,
) -> None:
    """A consumer's complaint, filed by their platform; a retry with the same --request-id files nothing."""
    if not (order or company or worker):
        raise typer.BadParameter("name at least one", param_hint="--order, --company or --worker")
    request = c.FileComplaintRequest(
        order=named("orders", order),
        company=named("companies", company),
        worker=named("workers", worker),
        respondent=c.PartyKind.ValueType(choice(c.PartyKind.DESCRIPTOR, against, "--against")),
        category=c.Category.ValueType(choice(c.Category.DESCRIPTOR, category, "--category")),
        severity=c.Severity.ValueType(choice(c.Severity.DESCRIPTOR, severity, "--severity")),
        description=description,
        evidence_refs=evidence,
        request_id=request_uuid(request_id),
    )
    show_case(ctx, "FileComplaint", request, as_json)


@app.command("dispute")
def dispute(
    ctx: typer.Context,
    worker: str = typer.Option(..., help="workers/<id> or the id"),
    against: str = typer.Option(..., help="company or consumer"),
    company: str = typer.Option("", help="companies/<id> or the id (required against a company)"),
    order: str = ORDER,
    category: str = typer.Option(..., help="unpaid_wages, abuse, unsafe_conditions or fees_withheld"),
    severity: str = SEVERITY,
    description: str = DESCRIPTION,
    employee: bool = typer.Option(
        ..., "--employee/--agency", help="员工制 (a labour dispute) or 中介制 (a civil one)"
    ),
    evidence: list[str] = EVIDENCE,
    request_id: str = REQUEST_ID,
    as_json: bool = JSON,
) -> None:
    """A worker's dispute, filed by a union, the worker's company or platform."""
    request = c.FileWorkerDisputeRequest(
        worker=resource("workers", worker),
        respondent=c.PartyKind.ValueType(choice(c.PartyKind.DESCRIPTOR, against, "--against")),
        company=named("companies", company),
        order=named("orders", order),
        category=c.Category.ValueType(choice(c.Category.DESCRIPTOR, category, "--category")),
        severity=c.Severity.ValueType(choice(c.Severity.DESCRIPTOR, severity, "--severity")),
        description=description,
        employee_model=employee,
        evidence_refs=evidence,
        request_id=request_uuid(request_id),
    )
    show_case(ctx, "FileWorkerDispute", request, as_json)


@app.command("get")
def get(ctx: typer.Context, case: str = CASE, as_json: bool = JSON) -> None:
    """Show a case: its state, the deadline running and, to whom may see it, the description."""
    show_case(ctx, "GetCase", c.GetCaseRequest(name=resource("cases", case)), as_json)


@app.command("respond")
def respond(ctx: typer.Context, case: str = CASE, as_json: bool = JSON) -> None:
    """The respondent company's first response (within 24 hours of filing)."""
    show_case(ctx, "RespondToCase", c.RespondToCaseRequest(name=resource("cases", case)), as_json)


@app.command("accept")
def accept(ctx: typer.Context, case: str = CASE, as_json: bool = JSON) -> None:
    """The respondent company accepts the case and will resolve it."""
    show_case(ctx, "DecideCase", c.DecideCaseRequest(name=resource("cases", case), accept=True), as_json)


@app.command("reject")
def reject(ctx: typer.Context, case: str = CASE, as_json: bool = JSON) -> None:
    """The respondent company rejects the case: it goes to mediation."""
    show_case(ctx, "DecideCase", c.DecideCaseRequest(name=resource("cases", case), accept=False), as_json)


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    case: str = CASE,
    result: str = RESULT,
    at_fault: str = AT_FAULT,
    compensation_fen: int = COMPENSATION,
    as_json: bool = JSON,
) -> None:
    """Record a case's outcome (the company of an accepted case, the mediator holding it, an operator)."""
    request = c.ResolveCaseRequest(
        name=resource("cases", case), outcome=outcome(result, at_fault, compensation_fen)
    )
    show_case(ctx, "ResolveCase", request, as_json)


@app.command("withdraw")
def withdraw(ctx: typer.Context, case: str = CASE, as_json: bool = JSON) -> None:
    """The complainant's side withdraws the case."""
    show_case(ctx, "WithdrawCase", c.WithdrawCaseRequest(name=resource("cases", case)), as_json)


# -- mediation ----------------------------------------------------------------------------------


def body(word: str) -> c.MediationBody.ValueType:
    return c.MediationBody.ValueType(choice(c.MediationBody.DESCRIPTOR, word, "--body") if word else 0)


@mediation_app.command("queue")
def queue(
    ctx: typer.Context, body_word: str = BODY, page_size: int = PAGE_SIZE, as_json: bool = JSON
) -> None:
    """A body's queue in order (most severe first, then earliest deadline), each case's lease and
    deadline in Beijing time, and how long until the deadline."""
    reply: c.ListQueueResponse = call(
        ctx, "ListQueue", c.ListQueueRequest(body=body(body_word), page_size=page_size)
    )
    if as_json:
        show(reply, as_json)
        return
    now = datetime.now(UTC)
    table = Table(*QUEUE_COLUMNS, title="mediation queue")
    for case in reply.cases:
        table.add_row(*queue_row(case, now))
    console.print(table)


def queue_row(case: c.Case, now: datetime) -> tuple[str, ...]:
    held = case.mediator and case.lease_expire_time.ToDatetime(tzinfo=UTC) > now
    return (
        case.name.removeprefix("cases/"),
        enum_word(c.CaseKind.DESCRIPTOR, case.kind),
        enum_word(c.Category.DESCRIPTOR, case.category),
        enum_word(c.Severity.DESCRIPTOR, case.severity),
        f"held by {case.mediator}" if held else "waiting",
        beijing(case.lease_expire_time) if case.HasField("lease_expire_time") else "-",
        f"{beijing(case.deadline)} ({case.deadline_kind})",
        time_left(case.deadline, now),
    )


@mediation_app.command("claim")
def claim(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Take the first case of your body's queue that nobody holds, under a lease."""
    show_case(ctx, "ClaimNextCase", c.ClaimNextCaseRequest(), as_json)


@mediation_app.command("release")
def release(ctx: typer.Context, case: str = CASE, as_json: bool = JSON) -> None:
    """Give a case you hold back to the queue."""
    show_case(ctx, "ReleaseCase", c.ReleaseCaseRequest(name=resource("cases", case)), as_json)


@mediation_app.command("reassign")
def reassign(
    ctx: typer.Context,
    case: str = CASE,
    mediator: str = typer.Option(..., help="the mediator's principal id, e.g. peoples-mediator"),
    as_json: bool = JSON,
) -> None:
    """Give a case to a mediator of its body with a fresh lease (operators)."""
    request = c.ReassignCaseRequest(name=resource("cases", case), mediator=mediator)
    show_case(ctx, "ReassignCase", request, as_json)


@mediation_app.command("workload")
def workload(ctx: typer.Context, body_word: str = BODY, as_json: bool = JSON) -> None:
    """How many cases each mediator of the body holds and has closed."""
    reply: c.ListWorkloadResponse = call(ctx, "ListWorkload", c.ListWorkloadRequest(body=body(body_word)))
    show_rows("workload", reply.workloads, ("mediator", "held", "closed"), as_json)


def undertaking(text: str) -> c.Undertaking:
    """``PARTY:ACTION:YYYY-MM-DD`` as an undertaking; the action may itself hold colons."""
    party, _, rest = text.partition(":")
    action, _, due = rest.rpartition(":")
    if not action:
        raise typer.BadParameter(f"{text!r} is not PARTY:ACTION:YYYY-MM-DD", param_hint="--undertaking")
    return c.Undertaking(
        party=c.PartyKind.ValueType(choice(c.PartyKind.DESCRIPTOR, party, "--undertaking")),
        action=action,
        due_date=due,
    )


@mediation_app.command("agree")
def agree(
    ctx: typer.Context,
    case: str = CASE,
    facts: str = typer.Option(..., help="the facts as agreed"),
    responsibility: str = typer.Option(..., help="who is responsible for what"),
    undertakings: list[str] = UNDERTAKINGS,
    result: str = RESULT,
    at_fault: str = AT_FAULT,
    compensation_fen: int = COMPENSATION,
    as_json: bool = JSON,
) -> None:
    """Record the mediation agreement (调解协议) of a case you hold; its performance is followed up."""
    agreement = c.Agreement(
        facts=facts, responsibility=responsibility, undertakings=[undertaking(u) for u in undertakings]
    )
    request = c.RecordAgreementRequest(
        name=resource("cases", case), agreement=agreement, outcome=outcome(result, at_fault, compensation_fen)
    )
    show_case(ctx, "RecordAgreement", request, as_json)


@mediation_app.command("performed")
def performed(ctx: typer.Context, case: str = CASE, as_json: bool = JSON) -> None:
    """Every undertaking of the agreement was performed: the case is resolved."""
    request = c.RecordPerformanceRequest(name=resource("cases", case), performed=True)
    show_case(ctx, "RecordPerformance", request, as_json)


@mediation_app.command("breached")
def breached(
    ctx: typer.Context,
    case: str = CASE,
    by: str = typer.Option(..., help="the party in breach: worker, company or consumer"),
    as_json: bool = JSON,
) -> None:
    """The agreement was breached: recorded, and the case escalated by its default route."""
    request = c.RecordPerformanceRequest(
        name=resource("cases", case),
        performed=False,
        breached_by=c.PartyKind.ValueType(choice(c.PartyKind.DESCRIPTOR, by, "--by")),
    )
    show_case(ctx, "RecordPerformance", request, as_json)


@mediation_app.command("end")
def end(
    ctx: typer.Context,
    case: str = CASE,
    route: str = typer.Option(..., help=", ".join(enum_words(c.EscalationRoute.DESCRIPTOR))),
    as_json: bool = JSON,
) -> None:
    """End the mediation of a case you hold without agreement, escalating it by the route given."""
    request = c.EndMediationRequest(
        name=resource("cases", case),
        route=c.EscalationRoute.ValueType(choice(c.EscalationRoute.DESCRIPTOR, route, "--route")),
    )
    show_case(ctx, "EndMediation", request, as_json)


@mediation_app.command("referrals")
def referrals(ctx: typer.Context, page_size: int = PAGE_SIZE, as_json: bool = JSON) -> None:
    """The legal-aid referral queue, open ones first, oldest first (operators)."""
    reply: c.ListReferralsResponse = call(ctx, "ListReferrals", c.ListReferralsRequest(page_size=page_size))
    if as_json:
        show(reply, as_json)
        return
    now = datetime.now(UTC)
    table = Table(*REFERRAL_COLUMNS, title="legal-aid referrals")
    for referral in reply.referrals:
        table.add_row(*referral_row(referral, now))
    console.print(table)


def referral_row(referral: c.Referral, now: datetime) -> tuple[str, ...]:
    status = "accepted" if referral.accepted else "overdue" if referral.overdue else "open"
    return (
        referral.case_name.removeprefix("cases/"),
        "labour" if referral.labour_dispute else "civil",
        beijing(referral.create_time),
        beijing(referral.deadline),
        status,
        "-" if referral.accepted else time_left(referral.deadline, now),
    )


@mediation_app.command("accept-referral")
def accept_referral(ctx: typer.Context, case: str = CASE, as_json: bool = JSON) -> None:
    """A legal-aid centre took the referral (operators)."""
    reply: c.AcceptReferralResponse = call(
        ctx, "AcceptReferral", c.AcceptReferralRequest(name=resource("cases", case))
    )
    show(reply.referral, as_json, readable_rows)
