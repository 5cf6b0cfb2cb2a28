"""Use cases: the electronic home-visit service card (居家上门服务证): issue, reissue, revoke, verify.

One person, one card: a worker holds at most one card that is not revoked. The card's token
(libs/common/card_token.py) names the card and the worker's pseudonymous id; whether it was revoked, and the
worker's colour now, are answered here from the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from libs.common.auth import Principal
from libs.common.card_token import CardCheck, CardClaims, SigningKeyring
from libs.common.errors import Aborted, FailedPrecondition, NotFound
from services.workers import domain as d
from services.workers import events
from services.workers.service_layer.workers import (
    StoredStatus,
    WorkersUnitOfWork,
    refresh_status,
    worker_company,
)


class RevokeReason(StrEnum):
    REISSUED = "reissued"  # replaced by a new card (lost, damaged)
    WITHDRAWN = "withdrawn"  # taken away: the worker is RED until a new card is issued


@dataclass(frozen=True)
class Card:
    """A worker's service card and its signed token (the QR code's content, no personal data)."""

    card_id: uuid.UUID
    worker_id: uuid.UUID
    token: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoke_reason: RevokeReason | None = None


@dataclass(frozen=True)
class CardSigner:
    """Signs new cards with the keyring's active key, valid for ``validity``."""

    keyring: SigningKeyring
    validity: timedelta

    def new_card(self, worker_id: uuid.UUID, now: datetime) -> Card:
        card_id = uuid.uuid4()
        claims = CardClaims(str(card_id), str(worker_id), now, now + self.validity)
        # The token holds whole seconds; the stored card says what the token says.
        return Card(card_id, worker_id, self.keyring.sign(claims), claims.issued_at, claims.expires_at)


class CardRepository(Protocol):
    async def add(self, card: Card) -> None:
        """Store a new card; FailedPrecondition when the worker holds a card not revoked."""
        ...

    async def card(self, card_id: uuid.UUID, for_update: bool = False) -> Card | None:
        """The card, locked until the unit of work ends when ``for_update``."""
        ...

    async def revoke(self, card_id: uuid.UUID, reason: RevokeReason, at: datetime) -> None: ...


class CardsUnitOfWork(WorkersUnitOfWork, Protocol):
    @property
    def cards(self) -> CardRepository: ...


async def issue_card(
    uow: CardsUnitOfWork, principal: Principal, signer: CardSigner, worker_id: uuid.UUID
) -> Card:
    """A worker's first card, or a new one after the last was withdrawn."""
    async with uow:
        await worker_company(uow, principal, worker_id)
        card = await _add_card(uow, signer, worker_id)
        await refresh_status(uow, worker_id)  # a withdrawn card's RED ends with the new card
        await uow.commit()
        return card


async def reissue_card(
    uow: CardsUnitOfWork, principal: Principal, signer: CardSigner, worker_id: uuid.UUID, card_id: uuid.UUID
) -> Card:
    """Revoke ``card_id`` and issue its replacement at once; of concurrent reissues one wins."""
    async with uow:
        old = await _managed_card(uow, principal, worker_id, card_id)
        if old.revoked_at is not None:
            raise Aborted(f"workers/{worker_id}/cards/{card_id} was already reissued or revoked")
        await _revoke(uow, old, RevokeReason.REISSUED)
        card = await _add_card(uow, signer, worker_id)
        await uow.commit()
        return card


async def revoke_card(
    uow: CardsUnitOfWork, principal: Principal, worker_id: uuid.UUID, card_id: uuid.UUID
) -> None:
    """Withdraw a card: the worker is RED (card_revoked) until a new card is issued."""
    async with uow:
        card = await _managed_card(uow, principal, worker_id, card_id)
        if card.revoked_at is not None:
            raise FailedPrecondition(f"workers/{worker_id}/cards/{card_id} is already revoked")
        await _revoke(uow, card, RevokeReason.WITHDRAWN)
        await refresh_status(uow, worker_id)
        await uow.commit()


async def get_card(
    uow: CardsUnitOfWork, principal: Principal, worker_id: uuid.UUID, card_id: uuid.UUID
) -> Card:
    """A card of a worker the caller manages (for its QR code); a revoked card is no card to print."""
    async with uow:
        card = await _managed_card(uow, principal, worker_id, card_id, for_update=False)
    if card.revoked_at is not None:
        raise FailedPrecondition(f"workers/{worker_id}/cards/{card_id} is revoked")
    return card


async def _managed_card(
    uow: CardsUnitOfWork,
    principal: Principal,
    worker_id: uuid.UUID,
    card_id: uuid.UUID,
    for_update: bool = True,
) -> Card:
    """The card of a worker the caller manages, locked for the unit of work unless ``for_update`` is off."""
    await worker_company(uow, principal, worker_id)
    card = await uow.cards.card(card_id, for_update)
    if card is None or card.worker_id != worker_id:
        raise NotFound(f"workers/{worker_id}/cards/{card_id}")
    return card


async def _add_card(uow: CardsUnitOfWork, signer: CardSigner, worker_id: uuid.UUID) -> Card:
    card = signer.new_card(worker_id, uow.clock.now())
    await uow.cards.add(card)
    await uow.add_event(
        events.TOPIC, events.card_issued(worker_id, card.card_id, card.expires_at, card.issued_at)
    )
    return card


async def _revoke(uow: CardsUnitOfWork, card: Card, reason: RevokeReason) -> None:
    now = uow.clock.now()
    await uow.cards.revoke(card.card_id, reason, now)
    await uow.add_event(events.TOPIC, events.card_revoked(card.worker_id, card.card_id, reason, now))


@dataclass(frozen=True)
class PublicWorkerView:
    """What a consumer at the door may see about a card's holder: nothing unmasked."""

    photo_ref: str
    masked_name: str
    company_name: str
    trades: tuple[d.Trade, ...]
    skill_level: d.SkillLevel | None
    health_check_valid_until: date | None
    insured_until: date | None
    credit_level: str | None


@dataclass(frozen=True)
class CardHolder:
    """A stored card as verification needs it: whose, whether revoked, the holder's colour now."""

    worker_id: uuid.UUID
    revoked: bool
    status: StoredStatus
    view: PublicWorkerView


class CardHolders(Protocol):
    async def holder(self, card_id: uuid.UUID) -> CardHolder | None: ...


@dataclass(frozen=True)
class CardVerdict:
    """VerifyCard's answer: RED and no view unless the verdict is VALID."""

    verdict: CardCheck
    colour: d.CardColour
    reasons: tuple[str, ...] = ()
    worker: PublicWorkerView | None = None


async def verify_card(
    holders: CardHolders, keyring: SigningKeyring, token: str, now: datetime
) -> CardVerdict:
    """Signature, key and validity period offline, then revocation and the colour from the records.

    A well-signed token of a card not on record (or naming another worker) cannot be honoured
    and is answered as REVOKED.
    """
    checked = keyring.verify(token, now)
    if not checked.valid or checked.claims is None:
        return CardVerdict(checked.check, d.CardColour.RED)
    try:
        holder = await holders.holder(uuid.UUID(checked.claims.card_id))
    except ValueError:
        return CardVerdict(CardCheck.MALFORMED, d.CardColour.RED)
    if holder is None or holder.revoked or str(holder.worker_id) != checked.claims.worker_ref:
        return CardVerdict(CardCheck.REVOKED, d.CardColour.RED, (d.Reason.CARD_REVOKED,))
    return CardVerdict(CardCheck.VALID, holder.status.colour, tuple(holder.status.reasons), holder.view)
