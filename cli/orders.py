"""``jiazheng orders``: the service catalogue (服务目录), orders, matching with its reasons, offers, the
model contract (家政服务合同), check-in by the worker's service card, and how an order ends."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import typer
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.table import Column, Table

from cli.rpc import (
    Row,
    Target,
    console,
    enum_number,
    enum_word,
    enum_words,
    field_rows,
    invoke,
    show,
    show_rows,
)
from cli.workers import JSON, resource
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.orders.v1 import orders_pb2_grpc
from jiazheng.type.v1.service_type_pb2 import ServiceType
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.beijing import BEIJING
from services.orders.domain.contract import format_yuan

app = typer.Typer(
    help="Orders: the catalogue, matching, offers, contracts and check-in (the orders service).",
    no_args_is_help=True,
)

ADDRESS = typer.Option(
    None,
    "--address",
    envvar="JZ_ORDERS_ADDRESS",
    help="host:port of the service (default: the local stack's)",
)
PRINCIPAL = typer.Option(
    "demo-platform", "--as", help="the local stack's principal whose key to use; JZ_API_KEY overrides"
)
ORDER = typer.Argument(..., help="orders/<id> or the id")
OFFER = typer.Argument(..., help="orders/<id>/offers/<id>")
NEEDS = typer.Option([], help=f"{', '.join(enum_words(o.SpecialNeed.DESCRIPTOR))}; repeatable")
PDF = typer.Option(None, "--pdf", dir_okay=False, help="write the contract as PDF here")
HTML = typer.Option(None, "--html", dir_okay=False, help="write the contract as HTML here")
PARTIES = ", ".join(enum_words(o.Party.DESCRIPTOR))
CANDIDATE_COLUMNS = (
    "rank",
    Column("worker", no_wrap=True),
    "score",
    "credit",
    "rating",
    "skill",
    "distance",
    "load",
    "rules passed",
)


@app.callback()
def connection(ctx: typer.Context, address: str | None = ADDRESS, principal: str = PRINCIPAL) -> None:
    """Where the orders service is and whom to call it as (for every command of the group)."""
    ctx.obj = Target("orders", address, principal)


def call(ctx: typer.Context, method: str, request: Message) -> Any:
    """``method`` of OrderService or CatalogueService; a failure prints its status and exits 1."""
    return invoke(cast(Target, ctx.obj), o.DESCRIPTOR, orders_pb2_grpc, method, request)


def in_yuan(message: Message) -> Iterator[Row]:
    """``message``'s rows, with amounts of fen (the fields named ``*_fen``) in yuan and each side's
    cancellation fees (a contract's 取消服务 clause) as a person reads them."""
    for name, text in field_rows(message):
        if name.endswith("_fen"):
            yield name.removesuffix("_fen"), format_yuan(int(text))
        elif name.split(".")[-2:-1] == ["cancellation"]:  # a side's fees of the clause
            fees: Sequence[o.CancellationFee] = functools.reduce(getattr, name.split("."), cast(Any, message))
            yield name, cancellation_fees(fees)
        else:
            yield name, text


def cancellation_fees(fees: Sequence[o.CancellationFee]) -> str:
    """A side's fees, the longest notice first: 10 % under 24 h' notice; 20 % under 2 h' notice."""
    ordered = sorted(fees, key=lambda fee: -fee.notice_hours)
    return "; ".join(f"{fee.percent} % under {fee.notice_hours} h' notice" for fee in ordered)


def show_order(ctx: typer.Context, method: str, request: Message, as_json: bool) -> None:
    """Call ``method`` and show the order it answers."""
    show(call(ctx, method, request).order, as_json, in_yuan)


def party(word: str) -> o.Party.ValueType:
    return o.Party.ValueType(enum_number(o.Party.DESCRIPTOR, word))


@app.command("catalogue")
def catalogue(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The service catalogue: what each service type needs of a worker, its hours and its price."""
    reply: o.GetCatalogueResponse = call(ctx, "GetCatalogue", o.GetCatalogueRequest())
    if as_json:
        show(reply, as_json)
        return
    table = Table(
        *("service type", "trade", "min level", "health tier", "default hours", "max hours", "price"),
        title=f"catalogue version {reply.version}",
    )
    for entry in reply.entries:
        table.add_row(*catalogue_row(entry))
    console.print(table)


def catalogue_row(entry: o.CatalogueEntry) -> tuple[str, ...]:
    return (
        enum_word(ServiceType.DESCRIPTOR, entry.service_type),
        enum_word(w.Trade.DESCRIPTOR, entry.trade),
        enum_word(w.SkillLevel.DESCRIPTOR, entry.min_skill_level),
        enum_word(w.HealthTier.DESCRIPTOR, entry.health_tier),
        str(entry.default_hours),
        str(entry.max_hours),
        price_rule(entry.price),
    )


def price_rule(rule: o.PriceRule) -> str:
    """A price rule in yuan: ¥60.00 per hour, or ¥7,000.00 per 624 hours (a part term prorated)."""
    if rule.WhichOneof("rule") == "term":
        return f"{format_yuan(rule.term.fen_per_term)} per {rule.term.term_hours} hours"
    return f"{format_yuan(rule.fen_per_hour)} per hour"


@app.command("create")
def create(
    ctx: typer.Context,
    service_type: str = typer.Option(..., help=f"{', '.join(enum_words(ServiceType.DESCRIPTOR))}"),
    district: str = typer.Option(..., help="GB/T 2260 code of a Beijing district, e.g. 110105 (朝阳)"),
    start: str = typer.Option(..., help="e.g. 2026-12-03T10:00: Beijing time unless an offset is given"),
    hours: int = typer.Option(..., help="booked hours"),
    consumer_ref: str = typer.Option(..., help="the platform's pseudonymous id of its consumer"),
    full_name: str = typer.Option(..., "--name", help="the consumer's name"),
    mobile: str = typer.Option(..., help="the consumer's mobile number"),
    address: str = typer.Option(..., help="where the service takes place"),
    price_fen: int = typer.Option(0, help="the price in fen (分); 0: the catalogue's for the hours"),
    need: list[str] = NEEDS,
    worker_id: str = typer.Option("", help="the worker the consumer booked: the first offer goes to them"),
    request_id: str = typer.Option("", help="the UUID of the request to retry; default: a new one"),
    as_json: bool = JSON,
) -> None:
    """Create an order for a consumer of the platform; a retry with the same --request-id creates nothing."""
    order = o.Order(
        service_type=ServiceType.ValueType(enum_number(ServiceType.DESCRIPTOR, service_type)),
        district_code=district,
        consumer_ref=consumer_ref,
        worker_id=worker_id,
        scheduled_start_time=start_time(start),
        duration_hours=hours,
        contact=o.Contact(full_name=full_name, mobile=mobile),
        address=address,
        price_fen=price_fen,
        special_needs=[o.SpecialNeed.ValueType(enum_number(o.SpecialNeed.DESCRIPTOR, n)) for n in need],
    )
    if not request_id:
        request_id = str(uuid.uuid4())
        typer.echo(f"request id {request_id} (retry with --request-id {request_id})", err=True)
    show_order(ctx, "CreateOrder", o.CreateOrderRequest(request_id=request_id, order=order), as_json)


def start_time(text: str) -> Timestamp:
    """``--start`` as a timestamp: ISO 8601, in Beijing time unless it carries an offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time like 2026-12-03T10:00", param_hint="--start"
        ) from None
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=BEIJING))
    return stamp


@app.command("get")
def get(ctx: typer.Context, order: str = ORDER, as_json: bool = JSON) -> None:
    """Show an order: its state, its price in yuan, the consumer's contact masked."""
    show_order(ctx, "GetOrder", o.GetOrderRequest(name=resource("orders", order)), as_json)


@app.command("match")
def match(
    ctx: typer.Context,
    order: str = ORDER,
    max_candidates: int = typer.Option(10, "--max", help="how many candidates, 1 to 50"),
    as_json: bool = JSON,
) -> None:
    """Rank the workers eligible for an order, with the points of each score, and show how many
    workers each eligibility rule excluded (a worker counts under the first rule it fails)."""
    request = o.MatchOrderRequest(name=resource("orders", order), max_candidates=max_candidates)
    reply: o.MatchOrderResponse = call(ctx, "MatchOrder", request)
    if as_json:
        show(reply, as_json)
        return
    console.print(candidates_table(reply.candidates))
    show_rows("exclusions", reply.exclusions, ("rule", "excluded"), False)
    console.print(f"eligible {reply.eligible}", highlight=False)


def candidates_table(candidates: Sequence[o.Candidate]) -> Table:
    """The candidates best first, each with the points its score is made of (docs/matching.md)."""
    table = Table(*CANDIDATE_COLUMNS, title="candidates")
    for rank, candidate in enumerate(candidates, 1):
        points = candidate.components
        numbers = (points.credit, points.rating, points.skill_above_minimum, points.district_distance)
        table.add_row(
            str(rank),
            candidate.worker.removeprefix("workers/"),
            *(str(n) for n in (candidate.score, *numbers, points.load)),
            " ".join(candidate.passed_rules),
        )
    return table


@app.command("offer")
def offer(
    ctx: typer.Context,
    order: str = ORDER,
    worker_id: str = typer.Option("", help="the worker to offer it to; default: the best not yet offered it"),
    as_json: bool = JSON,
) -> None:
    """Offer an order to a worker; unanswered, the offer expires and goes to the next candidate."""
    request = o.OfferOrderRequest(
        name=resource("orders", order), worker_id=worker_id.removeprefix("workers/")
    )
    show(call(ctx, "OfferOrder", request).offer, as_json)


@app.command("accept")
def accept(ctx: typer.Context, offer: str = OFFER, as_json: bool = JSON) -> None:
    """The worker accepts an offer: the order is assigned and the contract made on the default terms."""
    show(call(ctx, "AcceptOffer", o.AcceptOfferRequest(name=offer)), as_json, in_yuan)


@app.command("decline")
def decline(ctx: typer.Context, offer: str = OFFER, as_json: bool = JSON) -> None:
    """The worker declines an offer; the order waits for the next one."""
    show(call(ctx, "DeclineOffer", o.DeclineOfferRequest(name=offer)).offer, as_json)


@app.command("contract")
def contract(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="orders/<id>/contracts/<id>"),
    pdf: Path | None = PDF,
    html: Path | None = HTML,
    as_json: bool = JSON,
) -> None:
    """Show a contract with its content's SHA-256, or write it rendered and print the file's SHA-256."""
    wanted = {o.CONTRACT_FORMAT_PDF: pdf, o.CONTRACT_FORMAT_HTML: html}
    documents = {document_format: path for document_format, path in wanted.items() if path is not None}
    if not documents:
        show(call(ctx, "GetContract", o.GetContractRequest(name=name)).contract, as_json, in_yuan)
    for document_format, path in documents.items():
        write_document(ctx, o.GetContractRequest(name=name, format=document_format), path)


def write_document(ctx: typer.Context, request: o.GetContractRequest, path: Path) -> None:
    """Write the contract rendered as ``request`` asks to ``path``; print its type, size and SHA-256."""
    reply: o.GetContractResponse = call(ctx, "GetContract", request)
    path.write_bytes(reply.document)
    digest = hashlib.sha256(reply.document).hexdigest()
    console.print(
        f"wrote {path} ({reply.media_type}, {len(reply.document)} bytes) SHA-256 {digest}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("replace-worker")
def replace_worker(
    ctx: typer.Context,
    order: str = ORDER,
    reason: str = typer.Option(..., help="why, in a few words (no personal data)"),
    as_json: bool = JSON,
) -> None:
    """换阿姨: end the contract; the order waits for a new worker, whose contract links this one."""
    request = o.ReplaceWorkerRequest(name=resource("orders", order), reason=reason)
    show(call(ctx, "ReplaceWorker", request), as_json, in_yuan)


@app.command("dispute")
def dispute(
    ctx: typer.Context,
    order: str = ORDER,
    by: str = typer.Option(..., help=f"the side charged, who disputes: {PARTIES}"),
    reason: str = typer.Option(..., help="why, in a few words (no personal data)"),
    as_json: bool = JSON,
) -> None:
    """Dispute a cancellation fee or a no-show: the complaints service opens a case from it."""
    request = o.DisputeChargeRequest(name=resource("orders", order), disputed_by=party(by), reason=reason)
    show_order(ctx, "DisputeCharge", request, as_json)


@app.command("check-in")
def check_in(
    ctx: typer.Context,
    order: str = ORDER,
    card: str = typer.Option(..., help="the worker's service card: its QR code's link or its token"),
    as_json: bool = JSON,
) -> None:
    """The consumer confirms the worker's entry (确认入户) by scanning the worker's service card."""
    show_order(ctx, "CheckIn", o.CheckInRequest(name=resource("orders", order), card_token=card), as_json)


@app.command("check-out")
def check_out(ctx: typer.Context, order: str = ORDER, as_json: bool = JSON) -> None:
    """The service ended: the order is completed."""
    show_order(ctx, "CheckOut", o.CheckOutRequest(name=resource("orders", order)), as_json)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    order: str = ORDER,
    by: str = typer.Option(..., help=f"who cancels: {PARTIES}"),
    reason: str = typer.Option(..., help="why, in a few words (no personal data)"),
    as_json: bool = JSON,
) -> None:
    """Cancel an order before check-in; shows the fee the contract's rules charge."""
    request = o.CancelOrderRequest(name=resource("orders", order), cancelled_by=party(by), reason=reason)
    show_order(ctx, "CancelOrder", request, as_json)


@app.command("no-show")
def no_show(
    ctx: typer.Context,
    order: str = ORDER,
    at_fault: str = typer.Option(..., help=f"the side that did not show up: {PARTIES}"),
    as_json: bool = JSON,
) -> None:
    """Record that one side did not show up; a worker's second within 28 days is a serious breach."""
    request = o.ReportNoShowRequest(name=resource("orders", order), at_fault=party(at_fault))
    show(call(ctx, "ReportNoShow", request), as_json, in_yuan)


@app.command("rate")
def rate(
    ctx: typer.Context,
    order: str = ORDER,
    by: str = typer.Option(..., help=f"the side rating: {PARTIES}"),
    stars: int = typer.Option(..., help="1 to 5"),
    as_json: bool = JSON,
) -> None:
    """Rate a completed order, once by each side."""
    request = o.RateOrderRequest(name=resource("orders", order), rater=party(by), stars=stars)
    show_order(ctx, "RateOrder", request, as_json)
