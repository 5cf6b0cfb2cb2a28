"""A seeded stream of source events that crosses every consumer of the platform, and the effects it
implies, computed here in plain Python (issue 14's kill test, tests/integration/test_kill_each_service.py).

What each part of the stream is for:

- **credit**: orders' bookings, completions, ratings and no-shows, complaints' outcomes, agreement
  follow-ups and suspension requests, the workers' training, certificates and background checks,
  insurance's paid claims, each of them either a ledger entry (of a known kind and magnitude) or
  nothing, by credit's rules (services/credit/handlers.py);
- **workers**: credit levels and suspensions (credit's topic), covers (insurance's) and suspension
  requests (complaints') of workers the workers service knows, whose card colour they decide;
- **orders**: the same credit levels and card colours, kept for matching;
- **complaints**: the orders it keeps (created, assigned) and the cases disputes open (a disputed
  fee or no-show from orders, a contested claim denial from insurance);
- **insurance**: accepted orders (covered by a policy, or not), their check-ins, and complaints'
  compensation awards, each an automatic claim;
- **regulator**: all of it, and generated days (``Activity`` of test_regulator_indicators) in
  districts of their own, whose indicators ``expected`` gives.

Each event has a position in [0, 1): the stream is cut into batches by position, and the events of
one sequence (one worker's covers, one order's lifecycle, one service's day) have increasing
positions, so that they are produced in their order.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from google.protobuf.message import Message

from jiazheng.complaints.events.v1 import events_pb2 as complaints
from jiazheng.complaints.v1 import complaints_pb2 as cpb
from jiazheng.credit.events.v1 import events_pb2 as credit
from jiazheng.insurance.events.v1 import events_pb2 as insurance
from jiazheng.orders.events.v1 import events_pb2 as orders
from jiazheng.orders.v1 import orders_pb2 as opb
from jiazheng.type.v1 import service_type_pb2 as st
from jiazheng.workers.events.v1 import events_pb2 as workers
from jiazheng.workers.v1 import workers_pb2 as wpb
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from tests.integration.test_regulator_indicators import LEVELS, Activity, Produced

PLATFORM = "kills-platform"
ELDERLY = st.SERVICE_TYPE_ELDERLY_CARE
UPHELD = (cpb.OUTCOME_RESULT_SUBSTANTIATED, cpb.OUTCOME_RESULT_PARTLY_SUBSTANTIATED)
LEVEL_LETTERS = {credit.CREDIT_LEVEL_A: "A", credit.CREDIT_LEVEL_B: "B"}
LEVEL_LETTERS |= {credit.CREDIT_LEVEL_C: "C", credit.CREDIT_LEVEL_D: "D"}
COLOURS: dict[int, str] = {wpb.CARD_COLOUR_GREEN: "green", wpb.CARD_COLOUR_YELLOW: "yellow"}


@dataclass(frozen=True)
class Sent:
    """One event of the stream: where it goes and its position."""

    position: float
    topic: str
    event: EventEnvelope


@dataclass(frozen=True)
class Entry:
    """A ledger entry credit records for a source event."""

    event_id: str
    worker_id: str
    kind: str
    magnitude: int


@dataclass
class CardWorker:
    """A worker the workers service knows, and the card-status inputs the stream sets."""

    id: str
    insured_until: date | None = None
    level: str | None = None
    suspended: bool = False
    scored_by_credit: bool = False  # its credit level is credit's own (from the suspension requests)

    @property
    def colour(self) -> str:
        """The colour those inputs give a worker whose checks are in order (docs/workers.md)."""
        if self.suspended or self.level == "D":
            return "red"
        return "green" if self.insured_until is not None else "yellow"


@dataclass(frozen=True)
class InsuredOrder:
    id: str
    worker_id: str
    covered: bool


@dataclass(frozen=True)
class Award:
    """A complaint's compensation against an insurance order: one automatic claim."""

    case_id: str
    order: InsuredOrder
    compensation_fen: int
    worker_at_fault: bool


@dataclass(frozen=True)
class Dispute:
    kind: str  # complaints' CaseKind
    category: str  # complaints' Category
    order_id: str
    district: str


class KillsDay(Activity):
    """A generated day as every service's events, as the real services would write them: the
    workers registered by a company (orders keeps no worker without one) and the orders accepted
    with their service type (insurance covers an order by it)."""

    def __init__(self, seed: int, day: date, districts: list[str], company_id: str) -> None:
        self.company_id = company_id
        super().__init__(seed, day, districts)

    def _worker_events(self) -> Iterator[Produced]:
        for service, subject, message, moment in super()._worker_events():
            if isinstance(message, workers.WorkerRegistered):
                message.company_id = self.company_id
            yield service, subject, message, moment

    def _order_events(self) -> Iterator[Produced]:
        services = {o.id: o.service for o in self.orders}
        for service, subject, message, moment in super()._order_events():
            if isinstance(message, orders.OrderAssigned):
                message.service_type = services[message.order_id]  # type: ignore[assignment]
                message.company_id = self.company_id
            yield service, subject, message, moment

    def assigned(self, district: str) -> int:
        return sum(1 for o in self.orders if o.district == district and o.assigned)


@dataclass
class CrossingStream:
    """The stream and what it implies. ``card_workers`` are known to the workers service (its
    company is ``company_id``); the rest of the workers are new."""

    seed: int
    company_id: str
    card_worker_ids: list[str]
    day: date  # the generated days' (in the past: their window is open, and it is not today)
    day_districts: list[list[str]]
    policy_workers: list[str]  # the test buys their policy before the stream
    insurance_district: str
    dispute_district: str
    total: int = 10_000
    sent: list[Sent] = field(default_factory=list)
    ledger: list[Entry] = field(default_factory=list)
    credit_workers: list[str] = field(default_factory=list)
    card_workers: list[CardWorker] = field(default_factory=list)
    days: list[KillsDay] = field(default_factory=list)
    insured_orders: list[InsuredOrder] = field(default_factory=list)
    awards: list[Award] = field(default_factory=list)
    disputes: list[Dispute] = field(default_factory=list)
    known_orders: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.now = datetime.now(UTC)
        for n, districts in enumerate(self.day_districts):
            self._day(KillsDay(self.seed + n, self.day, districts, self.company_id))
        for worker_id in self.card_worker_ids:
            self._card_worker(worker_id)
        self._insurance()
        self._disputes()
        while len(self.sent) < self.total:
            self._credit_worker(str(uuid.uuid4()))
        self.sent.sort(key=lambda s: s.position)

    # -- producing ----------------------------------------------------------------------------
    def batch(self, n: int, of: int) -> list[Sent]:
        return [s for s in self.sent if n / of <= s.position < (n + 1) / of]

    def _send(
        self, service: str, subject: str, message: Message, position: float, at: datetime | None = None
    ) -> str:
        event = new_event(message, source=f"/jiazheng/{service}", subject=subject, time=at or self.now)
        self.sent.append(Sent(position, events_topic(service), event))
        return event.id

    def _positions(self, n: int, start: float = 0.0, end: float = 1.0) -> list[float]:
        """``n`` increasing positions in [start, end): a sequence produced in its order."""
        return sorted(self.rng.uniform(start, end) for _ in range(n))

    def _expect(self, event_id: str, worker_id: str, kind: str, magnitude: int = 1) -> None:
        self.ledger.append(Entry(event_id, worker_id, kind, magnitude))

    # -- the generated days (the regulator's indicators) ----------------------------------------
    def _day(self, day: KillsDay) -> None:
        self.days.append(day)
        for o in day.orders:
            self.known_orders.add(o.id)
        for service, envelopes in day.events().items():
            for position, envelope in zip(self._positions(len(envelopes)), envelopes, strict=True):
                self.sent.append(Sent(position, events_topic(service), envelope))

    # -- card colours (workers, orders) ---------------------------------------------------------
    def _card_worker(self, worker_id: str) -> None:
        """Covers for every worker; then credit levels and suspensions on credit's topic for a
        third of them, suspension requests from complaints for another third."""
        worker, subject, rng = CardWorker(worker_id), f"workers/{worker_id}", self.rng
        self.card_workers.append(worker)
        group = len(self.card_workers) % 3
        covers = [rng.random() < 0.7 for _ in range(rng.randint(1, 3))]
        for position, covered in zip(self._positions(len(covers)), covers, strict=True):
            until = (self.now + timedelta(days=365)).date() if covered else None
            cover = insurance.WorkerCoverageChanged(
                worker_id=worker_id,
                covered=covered,
                valid_until=until.isoformat() if until else "",
                policy="policies/kills" if covered else "",
                change_time=timestamp(self.now),
            )
            self._send("insurance", subject, cover, position)
            worker.insured_until = until
        if group == 1:
            inputs = rng.randint(1, 4)
            for position in self._positions(inputs):
                if rng.random() < 0.6:
                    level = rng.choice(list(LEVEL_LETTERS))
                    self._send("credit", subject, _level(worker_id, level, self.now), position)
                    worker.level = LEVEL_LETTERS[level]
                else:
                    suspended = rng.random() < 0.5
                    message = credit.WorkerSuspensionChanged(
                        worker_id=worker_id,
                        suspended=suspended,
                        reason="complaint_upheld_severe",
                        change_time=timestamp(self.now),
                    )
                    self._send("credit", subject, message, position)
                    worker.suspended = suspended
        elif group == 2:
            worker.suspended, worker.scored_by_credit = True, True
            for position in self._positions(rng.randint(1, 2)):
                self._suspension_requested(worker_id, position)

    def _suspension_requested(self, worker_id: str, position: float) -> None:
        case_id = str(uuid.uuid4())
        message = complaints.WorkerSuspensionRequested(
            worker_id=worker_id, case_id=case_id, category=cpb.CATEGORY_ABUSE, time=timestamp(self.now)
        )
        event_id = self._send("complaints", f"cases/{case_id}", message, position)
        self._expect(event_id, worker_id, "suspension_requested")

    # -- insurance: covers and automatic claims -------------------------------------------------
    def _insurance(self) -> None:
        """The workers on a policy and as many on none, one elderly-care order each, accepted and
        checked in (batches 0 to 6); compensation awards on most of the covered orders and some of
        the others, as the last batches (insurance must know the orders first, or the claims would
        be filed against unknown ones)."""
        bare = [str(uuid.uuid4()) for _ in self.policy_workers]
        for worker_id in self.policy_workers + bare:
            order = InsuredOrder(str(uuid.uuid4()), worker_id, worker_id in self.policy_workers)
            self.insured_orders.append(order)
            self.known_orders.add(order.id)
            self._accepted_and_checked_in(order)
        covered = [o for o in self.insured_orders if o.covered]
        uncovered = [o for o in self.insured_orders if not o.covered]
        awarded = self.rng.sample(covered, len(covered) * 3 // 4) + self.rng.sample(
            uncovered, len(uncovered) // 3
        )
        for order in awarded:
            self._award(order, self.rng.uniform(0.8, 1.0))

    def _accepted_and_checked_in(self, order: InsuredOrder) -> None:
        subject, district, start = (
            f"orders/{order.id}",
            self.insurance_district,
            self.now + timedelta(minutes=30),
        )
        created = orders.OrderCreated(
            order_id=order.id,
            platform_id=PLATFORM,
            service_type=ELDERLY,
            district_code=district,
            scheduled_start_time=timestamp(start),
            duration_hours=4,
            create_time=timestamp(self.now),
        )
        assigned = orders.OrderAssigned(
            order_id=order.id,
            offer_id=str(uuid.uuid4()),
            worker_id=order.worker_id,
            company_id=self.company_id,
            service_type=ELDERLY,
            district_code=district,
            scheduled_start_time=timestamp(start),
            scheduled_end_time=timestamp(start + timedelta(hours=4)),
            platform_id=PLATFORM,
        )
        checked_in = orders.OrderCheckedIn(
            order_id=order.id,
            worker_id=order.worker_id,
            card_id=str(uuid.uuid4()),
            check_in_time=timestamp(self.now),
            district_code=district,
            service_type=ELDERLY,
        )
        for position, message in zip(
            self._positions(3, 0.0, 0.7), (created, assigned, checked_in), strict=True
        ):
            self._send("orders", subject, message, position)

    def _award(self, order: InsuredOrder, position: float) -> None:
        """A substantiated complaint with compensation against the order's worker (at fault, or
        their company): insurance's automatic claim, and credit's upheld complaint."""
        case_id, rng = str(uuid.uuid4()), self.rng
        at_fault = cpb.PARTY_KIND_WORKER if rng.random() < 0.75 else cpb.PARTY_KIND_COMPANY
        award = Award(case_id, order, rng.randrange(60_000, 300_000, 100), at_fault == cpb.PARTY_KIND_WORKER)
        self.awards.append(award)
        severity = rng.randint(1, 3)
        resolved = complaints.CaseResolved(
            case_id=case_id,
            kind=cpb.CASE_KIND_COMPLAINT,
            category=cpb.CATEGORY_DAMAGE,
            severity=severity,  # type: ignore[arg-type]
            outcome=cpb.Outcome(
                result=rng.choice(UPHELD), at_fault=at_fault, compensation_fen=award.compensation_fen
            ),
            order_id=order.id,
            worker_id=order.worker_id,
            resolved_by="consumer-mediator",
            file_time=timestamp(self.now - timedelta(days=3)),
            time=timestamp(self.now),
        )
        event_id = self._send("complaints", f"cases/{case_id}", resolved, position)
        if award.worker_at_fault:
            self._expect(event_id, order.worker_id, "complaint_upheld", severity)

    # -- complaints: cases from disputes ------------------------------------------------------
    def _disputes(self, fees: int = 200, contests: int = 30) -> None:
        for _ in range(fees):
            order_id, charge = str(uuid.uuid4()), self.rng.choice(["cancellation_fee", "no_show"])
            message = orders.ChargeDisputed(
                order_id=order_id,
                platform_id=PLATFORM,
                charge=charge,
                disputed_by=self.rng.choice([opb.PARTY_CONSUMER, opb.PARTY_WORKER]),
                amount_fen=self.rng.randrange(1_000, 20_000),
                worker_id=str(uuid.uuid4()),
                company_id=self.company_id,
                district_code=self.dispute_district,
                reason="不同意收费",
                time=timestamp(self.now),
            )
            self._send("orders", f"orders/{order_id}", message, self.rng.random())
            category = "fees" if charge == "cancellation_fee" else "no_show"
            self.disputes.append(Dispute("charge_dispute", category, order_id, self.dispute_district))
        for _ in range(contests):
            claim_id = str(uuid.uuid4())
            contested = insurance.ClaimDenialContested(
                claim_id=claim_id,
                worker_id=str(uuid.uuid4()),
                company_id=self.company_id,
                case_id="",
                denial_reason="no cover",
                claimed_fen=self.rng.randrange(10_000, 100_000),
                time=timestamp(self.now),
            )
            self._send("insurance", f"claims/{claim_id}", contested, self.rng.random())
            self.disputes.append(Dispute("claim_dispute", "claim_denied", "", ""))

    # -- credit: every kind of fact, and events that make none ------------------------------------
    def _credit_worker(self, worker_id: str) -> None:
        rng, position = self.rng, self.rng.random
        self.credit_workers.append(worker_id)
        for _ in range(rng.randint(3, 8)):
            order_id = str(uuid.uuid4())
            subject = f"orders/{order_id}"
            self.known_orders.add(order_id)
            booked = orders.OrderCreated(
                order_id=order_id,
                platform_id=PLATFORM,
                worker_id=worker_id,
                service_type=st.SERVICE_TYPE_CLEANING,
            )
            self._expect(self._send("orders", subject, booked, position()), worker_id, "unscored")
            if rng.random() < 0.8:
                done = orders.OrderCompleted(order_id=order_id, worker_id=worker_id, platform_id=PLATFORM)
                self._expect(self._send("orders", subject, done, position()), worker_id, "order_completed")
            if rng.random() < 0.6:
                rater, stars = rng.choice([opb.PARTY_CONSUMER] * 6 + [opb.PARTY_WORKER]), rng.randint(1, 5)
                rated = orders.RatingPosted(order_id=order_id, rater=rater, stars=stars, worker_id=worker_id)
                event_id = self._send("orders", subject, rated, position())
                if rater == opb.PARTY_CONSUMER:
                    self._expect(event_id, worker_id, "rating", stars)
            if rng.random() < 0.1:
                at_fault = rng.choice([opb.PARTY_WORKER, opb.PARTY_WORKER, opb.PARTY_CONSUMER])
                no_show = orders.NoShowReported(order_id=order_id, at_fault=at_fault, worker_id=worker_id)
                event_id = self._send("orders", subject, no_show, position())
                if at_fault == opb.PARTY_WORKER:
                    self._expect(event_id, worker_id, "no_show")
        if rng.random() < 0.3:
            self._outcome(worker_id, position())
        if rng.random() < 0.15:
            self._follow_up(worker_id, position())
        if rng.random() < 0.4:
            self._worker_record(worker_id, position())
        if rng.random() < 0.1:
            self._claim_paid(worker_id, position())
        if rng.random() < 0.05:
            self._suspension_requested(worker_id, position())

    def _outcome(self, worker_id: str, position: float) -> None:
        case_id, rng = str(uuid.uuid4()), self.rng
        result = rng.choice([*UPHELD, cpb.OUTCOME_RESULT_NOT_SUBSTANTIATED])
        at_fault = rng.choice(
            [
                cpb.PARTY_KIND_WORKER,
                cpb.PARTY_KIND_UNSPECIFIED,
                cpb.PARTY_KIND_COMPANY,
                cpb.PARTY_KIND_CONSUMER,
            ]
        )
        severity = rng.randint(1, 3)
        resolved = complaints.CaseResolved(
            case_id=case_id,
            kind=cpb.CASE_KIND_COMPLAINT,
            category=cpb.CATEGORY_QUALITY,
            severity=severity,  # type: ignore[arg-type]
            outcome=cpb.Outcome(result=result, at_fault=at_fault),
            worker_id=worker_id,
            file_time=timestamp(self.now - timedelta(days=2)),
            time=timestamp(self.now),
        )
        event_id = self._send("complaints", f"cases/{case_id}", resolved, position)
        if result in UPHELD and at_fault in (cpb.PARTY_KIND_WORKER, cpb.PARTY_KIND_UNSPECIFIED):
            self._expect(event_id, worker_id, "complaint_upheld", severity)

    def _follow_up(self, worker_id: str, position: float) -> None:
        case_id, performed = str(uuid.uuid4()), self.rng.random() < 0.4
        breached_by = self.rng.choice([cpb.PARTY_KIND_WORKER, cpb.PARTY_KIND_COMPANY])
        followed = complaints.AgreementFollowedUp(
            case_id=case_id,
            performed=performed,
            breached_by=cpb.PARTY_KIND_UNSPECIFIED if performed else breached_by,
            worker_id=worker_id,
            time=timestamp(self.now),
        )
        event_id = self._send("complaints", f"cases/{case_id}", followed, position)
        if not performed and breached_by == cpb.PARTY_KIND_WORKER:
            self._expect(event_id, worker_id, "agreement_breached")

    def _worker_record(self, worker_id: str, position: float) -> None:
        """One of: a training, a skill certificate, a background check."""
        subject, rng = f"workers/{worker_id}", self.rng
        which = rng.choice(["training", "certificate", "background"])
        if which == "training":
            hours, passed = rng.choice([0, 8, 16, 24, 40]), rng.random() < 0.8
            message: Message = workers.TrainingRecorded(
                worker_id=worker_id,
                hours=hours,
                exam_passed=passed,
                completion_date=self.now.date().isoformat(),
            )
            event_id = self._send("workers", subject, message, position)
            if passed and hours > 0:
                self._expect(event_id, worker_id, "training_completed", hours)
        elif which == "certificate":
            level = rng.choice([wpb.SKILL_LEVEL_5, wpb.SKILL_LEVEL_4, wpb.SKILL_LEVEL_3, wpb.SKILL_LEVEL_2])
            message = workers.SkillCertificateRecorded(
                worker_id=worker_id, trade=wpb.TRADE_HOUSEKEEPER, level=level, highest_level=level
            )
            self._expect(
                self._send("workers", subject, message, position), worker_id, "certificate_granted", level
            )
        else:
            passed = rng.random() < 0.5
            flags = [] if passed else rng.sample(["fraud", "violence", "theft"], rng.randint(0, 2))
            message = workers.BackgroundCheckRecorded(
                worker_id=worker_id, passed=passed, flags=flags, check_date=self.now.date().isoformat()
            )
            event_id = self._send("workers", subject, message, position)
            if flags:
                self._expect(event_id, worker_id, "background_flagged", len(flags))

    def _claim_paid(self, worker_id: str, position: float) -> None:
        claim_id, at_fault = str(uuid.uuid4()), self.rng.random() < 0.7
        paid = insurance.ClaimPaid(
            claim_id=claim_id,
            order_id=str(uuid.uuid4()),
            paid_fen=self.rng.randrange(10_000, 150_000),
            worker_at_fault=at_fault,
            worker_id=worker_id,
            time=timestamp(self.now),
        )
        event_id = self._send("insurance", f"claims/{claim_id}", paid, position)
        if at_fault:
            self._expect(event_id, worker_id, "claim_paid_at_fault", paid.paid_fen)

    # -- what it implies -------------------------------------------------------------------------
    def counts(self) -> Counter[str]:
        """The stream's events by type (the short name)."""
        return Counter(s.event.type.rsplit(".", 1)[-1] for s in self.sent)

    def workers_on_the_ledger(self) -> list[str]:
        """Every worker the stream is about: none of them has an entry the stream does not imply."""
        day_workers = [w.id for d in self.days for w in d.workers]
        insured = [o.worker_id for o in self.insured_orders]
        return self.credit_workers + [w.id for w in self.card_workers] + day_workers + insured

    def scored(self) -> set[str]:
        """The workers credit evaluates: those with an entry of a kind that scores."""
        return {e.worker_id for e in self.ledger if e.kind != "unscored"}

    def day_levels_and_colours(self) -> dict[str, tuple[str, str]]:
        """The generated days' workers: their last credit level and card colour (orders keeps them)."""
        return {
            w.id: (LEVELS[w.levels[-1][1]], COLOURS[w.colours[-1][1]]) for d in self.days for w in d.workers
        }


def _level(worker_id: str, level: int, now: datetime) -> credit.CreditLevelChanged:
    return credit.CreditLevelChanged(
        worker_id=worker_id,
        level=level,  # type: ignore[arg-type]
        score=300,
        model_version="kills",
        change_time=timestamp(now),
    )
