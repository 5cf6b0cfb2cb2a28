"""The service card's use cases through the fake unit of work: issue, reissue, revoke, QR look-up, verify."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jiazheng.workers.events.v1 import events_pb2 as ev
from libs.common.auth import Principal, Role
from libs.common.card_token import CardCheck, CardClaims, SigningKeyring
from libs.common.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied
from libs.common.pii import mask_name
from libs.common.testing import FixedClock
from services.workers import domain as d
from services.workers import service_layer as sl
from services.workers.tests.fakes import FakeWorkersUnitOfWork
from services.workers.tests.test_domain import USCC, id_born

NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)
COMPANY_ID = uuid.UUID("00000000-0000-4000-8000-00000000c001")
OTHER_ID = uuid.UUID("00000000-0000-4000-8000-00000000c002")
COMPANY = Principal("demo-company", Role.COMPANY, str(COMPANY_ID))
OTHER = Principal("other-company", Role.COMPANY, str(OTHER_ID))
OPERATOR = Principal("operator", Role.OPERATOR, "")
KEYRING = SigningKeyring({"k1": Ed25519PrivateKey.generate()}, "k1")
SIGNER = sl.CardSigner(KEYRING, timedelta(days=365))


class RecordHolders:
    """``CardHolders`` over the fake records (PgCardHolders reads the same from the tables)."""

    def __init__(self, uow: FakeWorkersUnitOfWork) -> None:
        self._records = uow.records

    async def holder(self, card_id: uuid.UUID) -> sl.CardHolder | None:
        card = self._records.cards.get(card_id)
        if card is None:
            return None
        worker = self._records.workers[card.worker_id]
        view = sl.PublicWorkerView(
            worker.photo_ref, mask_name(worker.name), "北京好家政", worker.trades, None, None, None, None
        )
        status = self._records.statuses[card.worker_id]
        return sl.CardHolder(card.worker_id, card.revoked_at is not None, status, view)


@pytest.fixture
def uow() -> FakeWorkersUnitOfWork:
    return FakeWorkersUnitOfWork(FixedClock(NOW))


@pytest.fixture
async def worker(uow: FakeWorkersUnitOfWork) -> uuid.UUID:
    draft = d.CompanyDraft(
        USCC[0], "北京好家政", 60, (d.Outlet("望京", "110105"),), d.EmploymentModel.EMPLOYEE
    )
    await sl.create_company(uow, uuid.uuid4(), draft, COMPANY_ID)
    person = d.WorkerDraft(
        id_born(date(1985, 4, 12)), "王芳", "13912345678", "p.jpg", ("110105",), (d.Trade.HOUSEKEEPER,)
    )
    return await sl.create_worker(uow, COMPANY, uuid.uuid4(), COMPANY_ID, person)


def _published(uow: FakeWorkersUnitOfWork, kind: str) -> list[str]:
    return [p.event.subject for p in uow.published if p.event.type.endswith(f".{kind}")]


async def test_an_issued_card_is_signed_with_the_active_key_and_names_card_worker_and_expiry(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)

    checked = KEYRING.verify(card.token, NOW)
    assert checked.valid
    assert checked.claims == CardClaims(str(card.card_id), str(worker), NOW, NOW + timedelta(days=365))
    assert uow.records.cards[card.card_id] == card
    [issued] = [p.event for p in uow.published if p.event.type.endswith(".CardIssued")]
    message = issued.parse(ev.CardIssued)
    assert (message.worker_id, message.card_id) == (str(worker), str(card.card_id))
    assert message.expire_time.ToDatetime(tzinfo=UTC) == NOW + timedelta(days=365)


async def test_one_person_one_card_a_second_issue_is_failed_precondition_and_changes_nothing(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    await sl.issue_card(uow, COMPANY, SIGNER, worker)
    events_before = len(uow.published)

    with pytest.raises(FailedPrecondition, match="reissue"):
        await sl.issue_card(uow, OPERATOR, SIGNER, worker)

    assert len(uow.records.cards) == 1
    assert len(uow.published) == events_before


async def test_another_company_cannot_issue_revoke_or_print_the_workers_card(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)
    with pytest.raises(PermissionDenied):
        await sl.issue_card(uow, OTHER, SIGNER, worker)
    with pytest.raises(PermissionDenied):
        await sl.revoke_card(uow, OTHER, worker, card.card_id)
    with pytest.raises(PermissionDenied):
        await sl.get_card(uow, OTHER, worker, card.card_id)
    assert uow.records.cards[card.card_id].revoked_at is None


async def test_a_card_named_under_another_worker_is_not_found(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    with pytest.raises(NotFound):
        await sl.revoke_card(uow, COMPANY, worker, uuid.uuid4())


async def test_reissue_revokes_the_old_card_and_issues_a_new_one_in_one_unit_of_work(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    old = await sl.issue_card(uow, COMPANY, SIGNER, worker)
    colour_before = uow.records.statuses[worker]

    new = await sl.reissue_card(uow, COMPANY, SIGNER, worker, old.card_id)

    assert new.card_id != old.card_id
    stored_old = uow.records.cards[old.card_id]
    assert (stored_old.revoked_at, stored_old.revoke_reason) == (NOW, sl.RevokeReason.REISSUED)
    assert uow.records.cards[new.card_id].revoked_at is None
    [revoked] = [
        p.event.parse(ev.CardRevoked) for p in uow.published if p.event.type.endswith(".CardRevoked")
    ]
    assert (revoked.card_id, revoked.reason) == (str(old.card_id), "reissued")
    assert len(_published(uow, "CardIssued")) == 2
    assert uow.records.statuses[worker] == colour_before  # a reissue is no withdrawal


async def test_a_second_reissue_of_the_same_card_is_aborted(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    old = await sl.issue_card(uow, COMPANY, SIGNER, worker)
    await sl.reissue_card(uow, COMPANY, SIGNER, worker, old.card_id)

    with pytest.raises(Aborted, match="already reissued or revoked"):
        await sl.reissue_card(uow, COMPANY, SIGNER, worker, old.card_id)
    assert len(uow.records.cards) == 2


async def test_a_withdrawn_card_makes_the_worker_red_until_a_new_card_is_issued(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)

    await sl.revoke_card(uow, COMPANY, worker, card.card_id)

    status = uow.records.statuses[worker]
    assert status.colour is d.CardColour.RED
    assert d.Reason.CARD_REVOKED in status.reasons
    [revoked] = [
        p.event.parse(ev.CardRevoked) for p in uow.published if p.event.type.endswith(".CardRevoked")
    ]
    assert revoked.reason == "withdrawn"
    with pytest.raises(FailedPrecondition, match="already revoked"):
        await sl.revoke_card(uow, COMPANY, worker, card.card_id)

    await sl.issue_card(uow, COMPANY, SIGNER, worker)
    assert d.Reason.CARD_REVOKED not in uow.records.statuses[worker].reasons


async def test_the_qr_look_up_answers_a_valid_card_and_refuses_a_revoked_one(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)
    assert await sl.get_card(uow, OPERATOR, worker, card.card_id) == card

    await sl.reissue_card(uow, COMPANY, SIGNER, worker, card.card_id)
    with pytest.raises(FailedPrecondition, match="revoked"):
        await sl.get_card(uow, COMPANY, worker, card.card_id)


async def test_a_valid_card_verifies_with_the_stored_colour_reasons_and_masked_view(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)

    verdict = await sl.verify_card(RecordHolders(uow), KEYRING, card.token, NOW + timedelta(days=1))

    status = uow.records.statuses[worker]
    assert (verdict.verdict, verdict.colour, verdict.reasons) == (
        CardCheck.VALID,
        status.colour,
        status.reasons,
    )
    assert verdict.worker is not None
    assert verdict.worker.masked_name == "王*"


async def test_a_revoked_card_verifies_as_revoked_and_red(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)
    await sl.reissue_card(uow, COMPANY, SIGNER, worker, card.card_id)

    verdict = await sl.verify_card(RecordHolders(uow), KEYRING, card.token, NOW)

    assert verdict == sl.CardVerdict(CardCheck.REVOKED, d.CardColour.RED, (d.Reason.CARD_REVOKED,))


@pytest.mark.parametrize(
    ("at", "verdict"),
    [(NOW + timedelta(days=365), CardCheck.EXPIRED), (NOW - timedelta(hours=1), CardCheck.NOT_YET_VALID)],
)
async def test_a_token_outside_its_validity_is_red_without_a_view(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID, at: datetime, verdict: CardCheck
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)

    answer = await sl.verify_card(RecordHolders(uow), KEYRING, card.token, at)

    assert answer == sl.CardVerdict(verdict, d.CardColour.RED)


async def test_a_tampered_or_foreign_token_is_rejected_before_any_look_up(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)
    header, payload, signature = card.token.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'AQ'}"
    foreign = SigningKeyring({"k9": Ed25519PrivateKey.generate()}, "k9").sign(
        CardClaims(str(card.card_id), str(worker), NOW, NOW + timedelta(days=1))
    )

    assert (
        await sl.verify_card(RecordHolders(uow), KEYRING, tampered, NOW)
    ).verdict is CardCheck.BAD_SIGNATURE
    assert (await sl.verify_card(RecordHolders(uow), KEYRING, foreign, NOW)).verdict is CardCheck.UNKNOWN_KEY
    assert (await sl.verify_card(RecordHolders(uow), KEYRING, "x.y", NOW)).verdict is CardCheck.MALFORMED


async def test_a_well_signed_token_of_no_card_on_record_or_of_another_worker_is_revoked(
    uow: FakeWorkersUnitOfWork, worker: uuid.UUID
) -> None:
    card = await sl.issue_card(uow, COMPANY, SIGNER, worker)
    unknown = KEYRING.sign(CardClaims(str(uuid.uuid4()), str(worker), NOW, NOW + timedelta(days=1)))
    misnamed = KEYRING.sign(CardClaims(str(card.card_id), str(uuid.uuid4()), NOW, NOW + timedelta(days=1)))

    for token in (unknown, misnamed):
        assert (await sl.verify_card(RecordHolders(uow), KEYRING, token, NOW)).verdict is CardCheck.REVOKED
