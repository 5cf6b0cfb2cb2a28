"""``jiazheng insurance``: products and premium quotes, a company's group policies (团体保单) with
their endorsements (批增/批改/批减), the cover found for accepted orders, and claims (理赔) from
filing to payment. Money prints in yuan, times in Beijing time with the offset shown."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import typer
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.table import Column, Table

from cli.complaints import beijing, choice, named, request_uuid
from cli.orders import in_yuan, start_time
from cli.rpc import (
    Row,
    Target,
    address_option,
    console,
    enum_word,
    enum_words,
    field_rows,
    invoke,
    show,
    show_rows,
)
from cli.workers import JSON, resource
from jiazheng.insurance.v1 import claims_pb2 as cl
from jiazheng.insurance.v1 import claims_pb2_grpc, policies_pb2_grpc
from jiazheng.insurance.v1 import cover_pb2 as cv
from jiazheng.insurance.v1 import policies_pb2 as pb
from jiazheng.type.v1.service_type_pb2 import ServiceType
from services.orders.domain.contract import format_yuan

COMPANY, INSURER = "demo-company", "demo-insurer"
INSURER_COMMANDS = frozenset({"adjudicate", "pay"})

app = typer.Typer(
    help="Insurance: products, quotes, group policies, order cover and claims (the insurance service).",
    no_args_is_help=True,
)
policy_app = typer.Typer(
    help="A company's group policies (团体保单) and endorsements (批单).", no_args_is_help=True
)
claims_app = typer.Typer(
    help="Claims (理赔): filed, adjudicated, paid once, a denial contested.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")
app.add_typer(claims_app, name="claims")

PRINCIPAL = typer.Option(
    None,
    "--as",
    help=f"the local stack's principal whose key to use (default: {INSURER} for claims adjudicate and "
    f"pay; otherwise {COMPANY}); JZ_API_KEY overrides",
)
PRODUCT = typer.Option(..., "--product", help="products/<id> or the id, e.g. el-100k")
POLICY = typer.Argument(..., help="policies/<id> or the id")
CLAIM = typer.Argument(..., help="claims/<id> or the id")
ORDER_ARGUMENT = typer.Argument(..., help="orders/<id> or the id")
REQUEST_ID = typer.Option("", help="the UUID of the request to retry; default: a new one")
PAGE_SIZE = typer.Option(100, "--max", help="how many, 1 to 200")
SERVICE_TYPES = ", ".join(enum_words(ServiceType.DESCRIPTOR))
WORKERS = typer.Option(
    [],
    "--worker",
    help=f"WORKER:BIRTH_DATE:JOB_CLASS:TYPE[,TYPE], e.g. <uuid>:1980-05-01:2:cleaning,elderly_care "
    f"(types: {SERVICE_TYPES}); repeatable",
)
ADD = typer.Option([], "--add", help="a worker added, as --worker of create; repeatable")
REMOVE = typer.Option([], "--remove", help="a worker removed (批减); repeatable")
EXCLUSIONS = ", ".join(enum_words(cv.Exclusion.DESCRIPTOR))
CIRCUMSTANCES = typer.Option([], "--circumstance", help=f"{EXCLUSIONS}; repeatable")
FOUND = typer.Option([], "--exclusion", help=f"an exclusion found: {EXCLUSIONS}; repeatable")
# Shown in Beijing time; the lists shown as tables of their own are left out of a message's rows.
TIME_FIELDS = frozenset(
    {"create_time", "incident_time", "report_time", "adjudicate_time", "pay_time", "check_time"}
)
TABLES = frozenset({"insured_workers", "endorsements", "terms", "premiums"})
AGE_BANDS = ("16–50", "51–60", "61–70")
CLAIM_METHODS = frozenset(cl.DESCRIPTOR.services_by_name["ClaimService"].methods_by_name)


@app.callback()
def connection(
    ctx: typer.Context, address: str | None = address_option("insurance"), principal: str | None = PRINCIPAL
) -> None:
    """Where the insurance service is and whom to call it as (for every command of the group)."""
    ctx.obj = Target("insurance", address, principal or "")


def call(ctx: typer.Context, method: str, request: Message) -> Any:
    """``method`` of PolicyService or ClaimService as the principal chosen, or the command's default
    (the insurer adjudicates and pays; the company does the rest); a failure prints and exits 1."""
    target = cast(Target, ctx.obj)
    if not target.principal:
        default = INSURER if ctx.info_name in INSURER_COMMANDS else COMPANY
        target = Target(target.service, target.address, default)
    api, stubs = (
        (cl.DESCRIPTOR, claims_pb2_grpc) if method in CLAIM_METHODS else (pb.DESCRIPTOR, policies_pb2_grpc)
    )
    return invoke(target, api, stubs, method, request)


def readable_rows(message: Message) -> Iterator[Row]:
    """The fields that are set: money in yuan, times in Beijing time; lists shown as tables left out."""
    for name, text in in_yuan(message):
        if name.split(".")[0] in TABLES:
            continue
        yield name, beijing(getattr(message, name)) if name in TIME_FIELDS else text


def yuan_and_fen(message: Message) -> Iterator[Row]:
    """The fields that are set, amounts of fen as ``¥70.00 (7000 fen)``."""
    for name, text in field_rows(message):
        money = name.endswith("_fen")
        yield name.removesuffix("_fen"), f"{format_yuan(int(text))} ({text} fen)" if money else text


def word(enum: Any, number: int) -> str:
    return enum_word(enum.DESCRIPTOR, number)


# -- products and quotes ------------------------------------------------------------------------


@app.command("products")
def products(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The products on offer: insurer, and each kind of cover with its limit and deductible."""
    reply: pb.ListProductsResponse = call(ctx, "ListProducts", pb.ListProductsRequest())
    if as_json:
        show(reply, as_json)
        return
    table = Table(
        Column("product", no_wrap=True), "name", "insurer", "cover: limit / deductible", title="products"
    )
    for product in reply.products:
        table.add_row(product.name, product.display_name, product.insurer, cover_text(product.terms))
    console.print(table)


def cover_text(terms: Sequence[pb.CoverTerms]) -> str:
    """One line per kind: employer_liability ¥100,000.00 / ¥200.00."""
    return "\n".join(
        f"{word(cv.CoverKind, t.kind)} {format_yuan(t.limit_fen)} / {format_yuan(t.deductible_fen)}"
        for t in terms
    )


@app.command("product")
def product(
    ctx: typer.Context, name: str = typer.Argument(..., help="products/<id> or the id"), as_json: bool = JSON
) -> None:
    """A product's terms, exclusions (除外责任) and premium table by job class and age band."""
    reply: pb.GetProductResponse = call(
        ctx, "GetProduct", pb.GetProductRequest(name=resource("products", name))
    )
    show(reply.product, as_json, readable_rows)
    if not as_json:
        console.print(terms_table(reply.product.terms))
        console.print(premium_table(reply.product.premiums))


def terms_table(terms: Sequence[pb.CoverTerms]) -> Table:
    table = Table("kind", "limit (保额)", "deductible (免赔额)", title="cover per worker and policy year")
    for t in terms:
        table.add_row(word(cv.CoverKind, t.kind), format_yuan(t.limit_fen), format_yuan(t.deductible_fen))
    return table


def premium_table(rows: Sequence[pb.PremiumRow]) -> Table:
    """Yuan per worker per policy year, by job class (职业类别) and age band."""
    table = Table("job class", *(f"age {band}" for band in AGE_BANDS), title="annual premium per worker")
    for row in rows:
        fen = (row.age_16_to_50_fen, row.age_51_to_60_fen, row.age_61_to_70_fen)
        table.add_row(str(row.job_class), *(format_yuan(f) for f in fen))
    return table


@app.command("quote")
def quote(
    ctx: typer.Context,
    product_name: str = PRODUCT,
    job_class: int = typer.Option(..., "--job-class", help="职业类别: 1, 2 or 3"),
    birth_date: str = typer.Option("", "--birth-date", help="YYYY-MM-DD: the age on the start date"),
    age: int | None = typer.Option(None, "--age", help="the age in full years (instead of --birth-date)"),
    start: str = typer.Option("", "--start", help="YYYY-MM-DD; default today"),
    end: str = typer.Option("", "--end", help="YYYY-MM-DD; default a year less a day after the start"),
    as_json: bool = JSON,
) -> None:
    """One worker's premium: annual, and pro rata for the term, in yuan and fen."""
    if bool(birth_date) == (age is not None):
        raise typer.BadParameter("give exactly one", param_hint="--birth-date or --age")
    request = pb.QuotePremiumRequest(
        product=resource("products", product_name), job_class=job_class, start_date=start, end_date=end
    )
    if age is None:
        request.birth_date = birth_date
    else:
        request.age = age
    show(call(ctx, "QuotePremium", request), as_json, yuan_and_fen)


# -- policies -----------------------------------------------------------------------------------


def insured(spec: str) -> pb.InsuredWorkerInput:
    """``WORKER:BIRTH_DATE:JOB_CLASS:TYPE[,TYPE]`` as a worker to insure."""
    parts = spec.split(":")
    if len(parts) != 4 or not parts[2].isdigit():
        raise typer.BadParameter(
            f"{spec!r} is not WORKER:BIRTH_DATE:JOB_CLASS:TYPE[,TYPE]", param_hint="--worker"
        )
    worker, birth_date, job_class, types = parts
    return pb.InsuredWorkerInput(
        worker_id=worker.removeprefix("workers/"),
        birth_date=birth_date,
        job_class=int(job_class),
        service_types=[
            ServiceType.ValueType(choice(ServiceType.DESCRIPTOR, t, "--worker")) for t in types.split(",")
        ],
    )


@policy_app.command("create")
def create_policy(
    ctx: typer.Context,
    product_name: str = PRODUCT,
    start: str = typer.Option(..., "--start", help="the first day of cover, YYYY-MM-DD, today or later"),
    end: str = typer.Option("", "--end", help="the last day; default a year less a day after the start"),
    workers: list[str] = WORKERS,
    company: str = typer.Option("", help="companies/<id> or the id: required for an operator"),
    request_id: str = REQUEST_ID,
    as_json: bool = JSON,
) -> None:
    """Buy a group policy for the workers given; a retry with the same --request-id issues nothing."""
    request = pb.CreatePolicyRequest(
        company=named("companies", company),
        product=resource("products", product_name),
        start_date=start,
        end_date=end,
        workers=[insured(w) for w in workers],
        request_id=request_uuid(request_id),
    )
    show_policy(call(ctx, "CreatePolicy", request).policy, as_json)


@policy_app.command("show")
def show_one_policy(ctx: typer.Context, policy: str = POLICY, as_json: bool = JSON) -> None:
    """A policy: its term, premium at issue, each worker's stint and every endorsement."""
    reply: pb.GetPolicyResponse = call(
        ctx, "GetPolicy", pb.GetPolicyRequest(name=resource("policies", policy))
    )
    show_policy(reply.policy, as_json)


def show_policy(policy: pb.Policy, as_json: bool) -> None:
    show(policy, as_json, readable_rows)
    if not as_json:
        console.print(workers_table(policy.insured_workers))
        console.print(endorsements_table(policy.endorsements))


def workers_table(workers: Sequence[pb.InsuredWorker]) -> Table:
    """Each stint of each worker: when it covers, what and for how much a year."""
    table = Table(
        Column("worker", no_wrap=True),
        "born",
        "class",
        "service types",
        "from",
        "to",
        Column("annual", justify="right"),
        title="insured workers",
    )
    for w in workers:
        types = ", ".join(word(ServiceType, t) for t in w.service_types)
        table.add_row(
            w.worker_id,
            w.birth_date,
            str(w.job_class),
            types,
            w.start_date,
            w.end_date,
            format_yuan(w.annual_premium_fen),
        )
    return table


def endorsements_table(endorsements: Sequence[pb.Endorsement]) -> Table:
    table = Table(
        Column("endorsement", no_wrap=True),
        "kind",
        "effective",
        "added",
        "removed",
        Column("premium change", justify="right"),
        title="endorsements (批单)",
    )
    for e in endorsements:
        table.add_row(*endorsement_row(e))
    return table


def endorsement_row(e: pb.Endorsement) -> tuple[str, ...]:
    return (
        e.endorsement_id,
        word(cv.EndorsementKind, e.kind),
        e.effective_date,
        ", ".join(e.added_worker_ids),
        ", ".join(e.removed_worker_ids),
        format_yuan(e.premium_delta_fen),
    )


@policy_app.command("list")
def list_policies(ctx: typer.Context, page_size: int = PAGE_SIZE, as_json: bool = JSON) -> None:
    """The policies you may read: a company's own, an insurer's products', any for operators."""
    reply: pb.ListPoliciesResponse = call(ctx, "ListPolicies", pb.ListPoliciesRequest(page_size=page_size))
    if as_json:
        show(reply, as_json)
        return
    table = Table(
        Column("policy", no_wrap=True),
        "company",
        "product",
        "from",
        "to",
        "state",
        "workers",
        "premium",
        title="policies",
    )
    for p in reply.policies:
        workers = str(len({w.worker_id for w in p.insured_workers}))
        state = word(pb.PolicyState, p.state)
        table.add_row(
            p.name, p.company, p.product, p.start_date, p.end_date, state, workers, format_yuan(p.premium_fen)
        )
    console.print(table)


@policy_app.command("endorse")
def endorse(
    ctx: typer.Context,
    policy: str = POLICY,
    add: list[str] = ADD,
    remove: list[str] = REMOVE,
    replace: str = typer.Option("", "--replace", help="the worker replaced (批改) by the one --add names"),
    effective: str = typer.Option(..., "--effective", help="YYYY-MM-DD, inside the term, today or later"),
    request_id: str = REQUEST_ID,
    as_json: bool = JSON,
) -> None:
    """Add (批增), replace (批改) or remove (批减) workers from a day, with the premium change."""
    request = pb.EndorsePolicyRequest(
        name=resource("policies", policy),
        kind=endorsement_kind(add, remove, replace),
        effective_date=effective,
        add_workers=[insured(w) for w in add],
        remove_worker_ids=[w.removeprefix("workers/") for w in ([replace] if replace else remove)],
        request_id=request_uuid(request_id),
    )
    reply: pb.EndorsePolicyResponse = call(ctx, "EndorsePolicy", request)
    if as_json:
        show(reply, as_json)
        return
    console.print(endorsements_table([reply.endorsement]))


def endorsement_kind(add: Sequence[str], remove: Sequence[str], replace: str) -> cv.EndorsementKind.ValueType:
    """What the options ask for: --replace with --add, or --add alone, or --remove alone."""
    if replace and add and not remove:
        return cv.ENDORSEMENT_KIND_REPLACE
    if add and not (remove or replace):
        return cv.ENDORSEMENT_KIND_ADD
    if remove and not (add or replace):
        return cv.ENDORSEMENT_KIND_REMOVE
    raise typer.BadParameter(
        "give --add, --remove, or --replace with --add", param_hint="--add/--remove/--replace"
    )


# -- order cover --------------------------------------------------------------------------------


@app.command("coverage")
def coverage(ctx: typer.Context, order: str = ORDER_ARGUMENT, as_json: bool = JSON) -> None:
    """The cover recorded for an accepted order: the policy insuring its worker, or why none does."""
    request = cl.GetOrderCoverageRequest(name=resource("orders", order))
    show(call(ctx, "GetOrderCoverage", request).coverage, as_json, readable_rows)


@app.command("uncovered")
def uncovered(ctx: typer.Context, page_size: int = PAGE_SIZE, as_json: bool = JSON) -> None:
    """Accepted orders whose worker has no cover for the service: the company's own (any for operators)."""
    reply: cl.ListUncoveredOrdersResponse = call(
        ctx, "ListUncoveredOrders", cl.ListUncoveredOrdersRequest(page_size=page_size)
    )
    columns = ("order", "worker", "service_type", "service_date", "reason")
    show_rows("uncovered orders", reply.orders, columns, as_json)


# -- claims -------------------------------------------------------------------------------------


def exclusions(words: Sequence[str], option: str) -> list[cv.Exclusion.ValueType]:
    return [cv.Exclusion.ValueType(choice(cv.Exclusion.DESCRIPTOR, w, option)) for w in words]


def show_claim(ctx: typer.Context, method: str, request: Message, as_json: bool) -> None:
    """Call ``method`` and show the claim it answers."""
    show(call(ctx, method, request).claim, as_json, readable_rows)


@claims_app.command("file")
def file_claim(
    ctx: typer.Context,
    order: str = typer.Option(..., "--order", help="orders/<id> or the id"),
    kind: str = typer.Option(..., help=", ".join(enum_words(cv.CoverKind.DESCRIPTOR))),
    incident_time: str = typer.Option(
        ..., "--incident-time", help="e.g. 2026-12-03T11:30: Beijing time unless an offset is given"
    ),
    amount_fen: int = typer.Option(..., "--amount-fen", help="the amount claimed, in fen (分)"),
    description: str = typer.Option(
        ..., help="what happened (personal data: kept encrypted, never published)"
    ),
    circumstances: list[str] = CIRCUMSTANCES,
    request_id: str = REQUEST_ID,
    as_json: bool = JSON,
) -> None:
    """File a claim on an order with a check-in; a retry with the same --request-id files nothing."""
    request = cl.FileClaimRequest(
        order=resource("orders", order),
        kind=cv.CoverKind.ValueType(choice(cv.CoverKind.DESCRIPTOR, kind, "--kind")),
        incident_time=incident(incident_time),
        claimed_fen=amount_fen,
        description=description,
        circumstances=exclusions(circumstances, "--circumstance"),
        request_id=request_uuid(request_id),
    )
    show_claim(ctx, "FileClaim", request, as_json)


def incident(text: str) -> Timestamp:
    """``--incident-time`` as a timestamp (Beijing time unless it carries an offset)."""
    try:
        return start_time(text)
    except typer.BadParameter as exc:
        raise typer.BadParameter(exc.message, param_hint="--incident-time") from None


@claims_app.command("show")
def show_one_claim(ctx: typer.Context, claim: str = CLAIM, as_json: bool = JSON) -> None:
    """A claim: its state, amounts in yuan, the decision and its reasons."""
    show_claim(ctx, "GetClaim", cl.GetClaimRequest(name=resource("claims", claim)), as_json)


@claims_app.command("list")
def list_claims(
    ctx: typer.Context,
    state: str = typer.Option("", help=f"{', '.join(enum_words(cl.ClaimState.DESCRIPTOR))}; default: all"),
    page_size: int = PAGE_SIZE,
    as_json: bool = JSON,
) -> None:
    """The claims you may see, in claim id order."""
    number = choice(cl.ClaimState.DESCRIPTOR, state, "--state") if state else 0
    request = cl.ListClaimsRequest(page_size=page_size, state=cl.ClaimState.ValueType(number))
    reply: cl.ListClaimsResponse = call(ctx, "ListClaims", request)
    if as_json:
        show(reply, as_json)
        return
    table = Table(
        Column("claim", no_wrap=True),
        "order",
        "kind",
        "state",
        "claimed",
        "decision",
        "payable",
        title="claims",
    )
    for c in reply.claims:
        table.add_row(*claim_row(c))
    console.print(table)


def claim_row(c: cl.Claim) -> tuple[str, ...]:
    decided = c.decision != cv.CLAIM_DECISION_UNSPECIFIED
    return (
        c.name,
        c.order,
        word(cv.CoverKind, c.kind),
        word(cl.ClaimState, c.state),
        format_yuan(c.claimed_fen) + (" (late)" if c.late_report else ""),
        word(cv.ClaimDecision, c.decision) if decided else "-",
        format_yuan(c.payable_fen) if decided else "-",
    )


@claims_app.command("adjudicate")
def adjudicate(
    ctx: typer.Context,
    claim: str = CLAIM,
    assessed_fen: int = typer.Option(
        ..., "--assessed-fen", help="the assessed loss in fen, at most the claim"
    ),
    found: list[str] = FOUND,
    at_fault: bool | None = typer.Option(
        None, "--worker-at-fault/--worker-not-at-fault", help="default: as filed"
    ),
    request_id: str = REQUEST_ID,
    as_json: bool = JSON,
) -> None:
    """The insurer's decision (核赔): approved, partly approved or denied by the rules, with the reasons."""
    request = cl.AdjudicateClaimRequest(
        name=resource("claims", claim),
        assessed_fen=assessed_fen,
        exclusions=exclusions(found, "--exclusion"),
        request_id=request_uuid(request_id),
    )
    if at_fault is not None:
        request.worker_at_fault = at_fault
    show_claim(ctx, "AdjudicateClaim", request, as_json)


@claims_app.command("pay")
def pay(ctx: typer.Context, claim: str = CLAIM, request_id: str = REQUEST_ID, as_json: bool = JSON) -> None:
    """The insurer pays an approved claim, once."""
    request = cl.PayClaimRequest(name=resource("claims", claim), request_id=request_uuid(request_id))
    show_claim(ctx, "PayClaim", request, as_json)


@claims_app.command("contest")
def contest(
    ctx: typer.Context,
    claim: str = CLAIM,
    reason: str = typer.Option(..., help="why the denial is wrong"),
    request_id: str = REQUEST_ID,
    as_json: bool = JSON,
) -> None:
    """The company contests a denial: it becomes a claim dispute in the complaints workflow."""
    request = cl.ContestClaimDenialRequest(
        name=resource("claims", claim), request_id=request_uuid(request_id), reason=reason
    )
    show_claim(ctx, "ContestClaimDenial", request, as_json)
