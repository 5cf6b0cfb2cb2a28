"""An order (订单) and its lifecycle: created → offered → assigned (contract made) → checked in by
the card scan (确认入户) → completed → rated; or cancelled, no-show, or back to waiting for a worker
when an offer ends or the worker is replaced (换阿姨).

Each transition is a function from the order (and what it needs) to the next order; a step the
state does not allow raises ``FailedPrecondition`` naming the current state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from libs.common.errors import Aborted, FailedPrecondition, InvalidArgument
from services.orders.domain.catalogue import Catalogue
from services.orders.domain.contract import DEFAULT_CANCELLATION, Contract, cancellation_percent, share_of
from services.orders.domain.vocabulary import ServiceType

# The price a platform may set, as a multiple of the catalogue price; above it is a typo.
MAX_PRICE_FACTOR = 10
NO_SHOW_WINDOW = timedelta(days=28)
SERIOUS_NO_SHOWS = 2  # a worker's second no-show within 28 days is a serious breach (DOMAIN §6)


@dataclass(frozen=True)
class BookingWindow:
    """When a service may start, seen from the moment it is booked (our default, configurable).

    A start slightly in the past is allowed (clock skew, immediate starts).
    """

    start_tolerance: timedelta = timedelta(hours=1)
    max_advance: timedelta = timedelta(days=366)


class OrderState(StrEnum):
    CREATED = "created"  # waiting for a worker
    OFFERED = "offered"
    ASSIGNED = "assigned"  # a worker accepted; the contract is made
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class SpecialNeed(StrEnum):
    """Special needs of a service (特殊需求) the worker should know of."""

    ELDERLY_CLIENT = "elderly_client"
    STAIRS_NO_LIFT = "stairs_no_lift"
    PETS = "pets"
    INFANT = "infant"
    DISABILITY = "disability"
    DEMENTIA = "dementia"


class Party(StrEnum):
    """A side of an order: the consumer (through the platform) or the worker (or their company)."""

    CONSUMER = "consumer"
    WORKER = "worker"


@dataclass(frozen=True)
class Contact:
    """The consumer's name and mobile number: personal data, sealed by the store."""

    full_name: str
    mobile: str


@dataclass(frozen=True)
class OrderDraft:
    """What a platform asks for when it books a service. ``price_fen`` 0: the catalogue price."""

    service_type: ServiceType
    district_code: str
    consumer_ref: str
    worker_id: str | None
    scheduled_start: datetime
    duration_hours: int
    contact: Contact | None = None
    address: str = ""
    price_fen: int = 0
    special_needs: tuple[SpecialNeed, ...] = ()

    def fingerprint(self) -> str:
        """Same draft, same fingerprint: tells a retry from a different request under one request id.

        It covers personal data, so the store keeps only a keyed hash of it.
        """
        contact = self.contact or Contact("", "")
        canonical = "|".join(
            [
                self.service_type,
                self.district_code,
                self.consumer_ref,
                self.worker_id or "",
                self.scheduled_start.isoformat(),
                str(self.duration_hours),
                contact.full_name,
                contact.mobile,
                self.address,
                str(self.price_fen),
                ",".join(self.special_needs),
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def scheduled_end(self) -> datetime:
        return self.scheduled_start + timedelta(hours=self.duration_hours)


@dataclass(frozen=True)
class Order:
    """An order with where it is now. ``consumer_rating`` is the stars the consumer gave the
    worker, ``worker_rating`` the worker's for the consumer (None: not rated)."""

    order_id: uuid.UUID
    platform_id: str
    draft: OrderDraft
    state: OrderState
    created_at: datetime
    price_fen: int
    catalogue_version: int
    assigned_worker_id: str | None = None
    contract_id: uuid.UUID | None = None
    pending_offer_id: uuid.UUID | None = None
    check_in_at: datetime | None = None
    check_out_at: datetime | None = None
    card_id: str | None = None
    ended_by: Party | None = None
    ended_at: datetime | None = None
    cancellation_fee_fen: int = 0
    consumer_rating: int | None = None
    worker_rating: int | None = None
    charge_disputed: bool = False

    @property
    def name(self) -> str:
        return f"orders/{self.order_id}"

    def require(self, *states: OrderState, doing: str) -> None:
        if self.state not in states:
            allowed = " or ".join(states)
            raise FailedPrecondition(f"cannot {doing} an order that is {self.state} (needs {allowed})")


def create_order(
    draft: OrderDraft,
    platform_id: str,
    now: datetime,
    catalogue: Catalogue,
    window: BookingWindow = BookingWindow(),
) -> Order:
    """A new order, priced from ``catalogue`` when the platform gave no price."""
    _check_window(draft, now, window)
    version, price = _priced(draft, catalogue)
    return Order(
        order_id=uuid.uuid4(),
        platform_id=platform_id,
        draft=draft,
        state=OrderState.CREATED,
        created_at=now,
        price_fen=price,
        catalogue_version=version,
    )


def _check_window(draft: OrderDraft, now: datetime, window: BookingWindow) -> None:
    if draft.scheduled_start < now - window.start_tolerance:
        raise InvalidArgument("order.scheduled_start_time", "must not be in the past")
    if draft.scheduled_start > now + window.max_advance:
        raise InvalidArgument(
            "order.scheduled_start_time", f"must be within {window.max_advance.days} days from now"
        )


def check_particulars(draft: OrderDraft) -> None:
    """The consumer's contact and the address are required on a new order."""
    missing = [
        (field, "is required")
        for field, value in (
            ("order.contact.full_name", draft.contact and draft.contact.full_name.strip()),
            ("order.contact.mobile", draft.contact and draft.contact.mobile),
            ("order.address", draft.address.strip()),
        )
        if not value
    ]
    if missing:
        raise InvalidArgument(*missing[0], *missing[1:])


def _priced(draft: OrderDraft, catalogue: Catalogue) -> tuple[int, int]:
    entry = catalogue.entry(draft.service_type)
    if draft.duration_hours > entry.max_hours:
        raise InvalidArgument(
            "order.duration_hours", f"{draft.service_type} may book at most {entry.max_hours} hours"
        )
    listed = entry.price_fen(draft.duration_hours)
    if draft.price_fen > MAX_PRICE_FACTOR * listed:
        raise InvalidArgument(
            "order.price_fen", f"must be at most {MAX_PRICE_FACTOR} × the catalogue price of {listed} fen"
        )
    return catalogue.version, draft.price_fen or listed


# -- offers and acceptance --------------------------------------------------------------------


class OfferState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Offer:
    """An order offered to one worker, who accepts or declines before ``expires_at``. ``rank`` is
    the worker's place among the candidates (0: named by the platform)."""

    offer_id: uuid.UUID
    order_id: uuid.UUID
    worker_id: str
    state: OfferState
    created_at: datetime
    expires_at: datetime
    rank: int = 0
    score: int = 0

    @property
    def name(self) -> str:
        return f"orders/{self.order_id}/offers/{self.offer_id}"


def make_offer(
    order: Order, worker_id: str, now: datetime, timeout: timedelta, rank: int = 0, score: int = 0
) -> tuple[Order, Offer]:
    order.require(OrderState.CREATED, doing="offer")
    offer = Offer(
        uuid.uuid4(), order.order_id, worker_id, OfferState.PENDING, now, now + timeout, rank, score
    )
    return dataclasses.replace(order, state=OrderState.OFFERED, pending_offer_id=offer.offer_id), offer


def _check_pending(order: Order, offer: Offer, doing: str) -> None:
    if doing == "accept" and offer.state is OfferState.ACCEPTED:
        raise Aborted("the offer was accepted by another request")
    if offer.state is not OfferState.PENDING:
        raise FailedPrecondition(f"cannot {doing} an offer that is {offer.state}")
    order.require(OrderState.OFFERED, doing=doing)


def accept_offer(order: Order, offer: Offer, contract_id: uuid.UUID) -> tuple[Order, Offer]:
    """The worker accepted: the order is theirs, under ``contract_id``."""
    _check_pending(order, offer, "accept")
    accepted = dataclasses.replace(
        order,
        state=OrderState.ASSIGNED,
        assigned_worker_id=offer.worker_id,
        contract_id=contract_id,
        pending_offer_id=None,
    )
    return accepted, dataclasses.replace(offer, state=OfferState.ACCEPTED)


def end_offer(order: Order, offer: Offer, state: OfferState) -> tuple[Order, Offer]:
    """The offer was declined, expired or withdrawn: the order waits for a worker again."""
    _check_pending(order, offer, {OfferState.DECLINED: "decline"}.get(state, "end"))
    waiting = dataclasses.replace(order, state=OrderState.CREATED, pending_offer_id=None)
    return waiting, dataclasses.replace(offer, state=state)


# -- the visit --------------------------------------------------------------------------------


def replace_worker(order: Order) -> Order:
    """换阿姨: the worker leaves, the contract ends, and the order waits for the next worker."""
    order.require(OrderState.ASSIGNED, OrderState.CHECKED_IN, doing="replace the worker of")
    return dataclasses.replace(
        order, state=OrderState.CREATED, assigned_worker_id=None, check_in_at=None, card_id=None
    )


def check_in(order: Order, worker_id: str, card_id: str, now: datetime) -> Order:
    """确认入户: the consumer scanned the card of ``worker_id``, who must be the assigned worker."""
    order.require(OrderState.ASSIGNED, doing="check in")
    if worker_id != order.assigned_worker_id:
        raise FailedPrecondition("the card scanned is not the card of the worker assigned to this order")
    return dataclasses.replace(order, state=OrderState.CHECKED_IN, check_in_at=now, card_id=card_id)


def check_out(order: Order, now: datetime) -> Order:
    order.require(OrderState.CHECKED_IN, doing="complete")
    return dataclasses.replace(order, state=OrderState.COMPLETED, check_out_at=now)


def cancellation_fee(order: Order, by: Party, now: datetime, contract: Contract | None = None) -> int:
    """What cancelling at ``now`` costs ``by``: nothing before a worker is assigned; for an assigned
    order, the share of the price its contract's cancellation clause sets for that side at the
    notice given (half up to the fen). No contract, or one drafted before contracts carried the
    clause: the default clause (10 % within 24 hours of the start, 20 % within 2 or after it)."""
    if order.state is not OrderState.ASSIGNED:
        return 0
    clause = (contract.terms.cancellation if contract else None) or DEFAULT_CANCELLATION
    fees = clause.consumer if by is Party.CONSUMER else clause.worker
    return share_of(order.price_fen, cancellation_percent(fees, order.draft.scheduled_start - now))


def cancel(order: Order, by: Party, now: datetime, contract: Contract | None = None) -> Order:
    """Cancelled before check-in by ``by``, who pays the fee of ``cancellation_fee``; ``contract``
    is the order's contract in force (None before a worker accepts)."""
    order.require(OrderState.CREATED, OrderState.OFFERED, OrderState.ASSIGNED, doing="cancel")
    if contract is not None and contract.contract_id != order.contract_id:
        raise ValueError(f"contract {contract.contract_id} is not the contract of {order.name}")
    fee = cancellation_fee(order, by, now, contract)
    return dataclasses.replace(
        order,
        state=OrderState.CANCELLED,
        ended_by=by,
        ended_at=now,
        cancellation_fee_fen=fee,
        pending_offer_id=None,
    )


@dataclass(frozen=True)
class NoShow:
    """A no-show with the worker's count within 28 days (this one included) when they were at fault."""

    order: Order
    worker_no_shows_28d: int

    @property
    def serious_breach(self) -> bool:
        return self.worker_no_shows_28d >= SERIOUS_NO_SHOWS


def report_no_show(order: Order, at_fault: Party, now: datetime, earlier_worker_no_shows_28d: int) -> NoShow:
    """One side did not show up; only after the scheduled start of an assigned order."""
    order.require(OrderState.ASSIGNED, doing="report a no-show for")
    if now < order.draft.scheduled_start:
        raise FailedPrecondition("a no-show can be reported only after the scheduled start")
    ended = dataclasses.replace(order, state=OrderState.NO_SHOW, ended_by=at_fault, ended_at=now)
    count = earlier_worker_no_shows_28d + 1 if at_fault is Party.WORKER else 0
    return NoShow(ended, count)


def rate(order: Order, rater: Party, stars: int) -> Order:
    """A rating of 1–5 stars after completion, once by each side."""
    order.require(OrderState.COMPLETED, doing="rate")
    if not 1 <= stars <= 5:
        raise InvalidArgument("stars", "must be 1 to 5")
    given = order.consumer_rating if rater is Party.CONSUMER else order.worker_rating
    if given is not None:
        raise FailedPrecondition(f"the {rater} has already rated this order")
    if rater is Party.CONSUMER:
        return dataclasses.replace(order, consumer_rating=stars)
    return dataclasses.replace(order, worker_rating=stars)


def dispute_charge(order: Order, by: Party) -> tuple[Order, str]:
    """The side charged disputes it, once: the fee of a cancellation it made, or a no-show it was
    found at fault for. The charge disputed: ``cancellation_fee`` or ``no_show``."""
    order.require(OrderState.CANCELLED, OrderState.NO_SHOW, doing="dispute a charge of")
    if order.charge_disputed:
        raise FailedPrecondition("this order's charge is already disputed")
    if order.ended_by is not by:
        raise FailedPrecondition(f"only the side charged ({order.ended_by}) disputes it")
    if order.state is OrderState.CANCELLED and order.cancellation_fee_fen == 0:
        raise FailedPrecondition("this cancellation charged no fee")
    charge = "cancellation_fee" if order.state is OrderState.CANCELLED else "no_show"
    return dataclasses.replace(order, charge_disputed=True), charge
