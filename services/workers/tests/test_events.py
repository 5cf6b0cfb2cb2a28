"""The events workers publishes: subjects keep a worker's events in order, and no personal data
(ID number, name, mobile, photo) is in any of them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from jiazheng.workers.events.v1 import events_pb2 as ev
from libs.common.events import EventEnvelope
from services.workers import domain as d
from services.workers import events
from services.workers.tests.test_domain import USCC, id_born

NOW = datetime(2026, 11, 30, 2, tzinfo=UTC)
COMPANY = uuid.uuid4()
DRAFT = d.WorkerDraft(
    id_born(date(1985, 4, 12)), "王芳", "13912345678", "photos/wang.jpg", ("110105",), (d.Trade.HOUSEKEEPER,)
)
WORKER = d.register_worker(DRAFT, COMPANY, NOW)


def every_worker_event() -> list[EventEnvelope]:
    check = d.HealthCheck(d.HealthTier.LIVE_IN, date(2026, 1, 1), date(2026, 12, 31), "医院", "TJ-1")
    grant = d.grant_consent(WORKER.worker_id, "demo-platform", "consumer-7", NOW)
    return [
        events.worker_registered(WORKER),
        events.worker_transferred(WORKER.worker_id, COMPANY, uuid.uuid4(), NOW),
        events.background_check_recorded(
            WORKER.worker_id, d.BackgroundCheck(True, True, False, False, NOW.date()), NOW
        ),
        events.health_check_recorded(WORKER.worker_id, check, NOW),
        events.training_recorded(WORKER.worker_id, d.Training("课", "机构", 8, NOW.date(), True), NOW),
        events.certificate_recorded(
            WORKER.worker_id,
            d.SkillCertificate(d.Trade.HOUSEKEEPER, d.SkillLevel.LEVEL_4, "C-1", NOW.date()),
            d.SkillLevel.LEVEL_4,
            NOW,
        ),
        events.card_status_changed(
            WORKER.worker_id, d.CardColour.RED, d.CardColour.YELLOW, (d.Reason.SUSPENDED,), NOW
        ),
        events.availability_changed(WORKER.worker_id, d.availability((d.WeeklySlot(1, 480, 720),), ()), NOW),
        events.consent_granted(grant),
        events.consent_revoked(d.revoke_consent(grant, NOW)),
    ]


def test_every_worker_event_is_keyed_by_the_worker() -> None:
    for event in every_worker_event():
        assert event.subject == f"workers/{WORKER.worker_id}"
        assert event.type.startswith("jiazheng.workers.events.v1.")


def test_no_worker_event_carries_personal_data() -> None:
    for event in every_worker_event():
        text = event.data.decode("utf-8", "replace") + repr(event.headers())
        for personal in (DRAFT.id_number, DRAFT.name, DRAFT.mobile, DRAFT.photo_ref):
            assert personal not in text, f"{personal!r} in {event.type}"


def test_a_registration_event_parses_back_to_what_matching_needs() -> None:
    message = ev.WorkerRegistered.FromString(events.worker_registered(WORKER).data)
    assert (message.worker_id, message.company_id) == (str(WORKER.worker_id), str(COMPANY))
    assert list(message.service_districts) == ["110105"]


def test_company_events_are_keyed_by_the_company() -> None:
    company = d.register_company(
        d.CompanyDraft(USCC[0], "好家政", 60, (d.Outlet("网点", "110108"),), d.EmploymentModel.INTERMEDIARY),
        NOW,
    )
    event = events.company_registered(company)
    assert event.subject == f"companies/{company.company_id}"
    assert list(ev.CompanyRegistered.FromString(event.data).outlet_districts) == ["110108"]
