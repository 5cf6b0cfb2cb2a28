"""IdempotentConsumer semantics through the fake unit of work: exactly once in effect, order kept,
a bad event isolated and dead-lettered, an outage waited out without dead-lettering anything."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import pytest
from google.protobuf.wrappers_pb2 import Int32Value, StringValue

from libs.common.events import EventEnvelope, event_type_of, new_event
from libs.common.inbox import Effect, IdempotentConsumer, KafkaRecord, SettledEffects
from libs.common.telemetry import current_traceparent, trace_id_of
from libs.common.testing import FakeDeadLetters, FakeUnitOfWork

INT = event_type_of(Int32Value())
STRING = event_type_of(StringValue())


class Journal:
    def __init__(self) -> None:
        self.applied: list[tuple[str, list[str]]] = []


class JournalUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.journal = Journal()

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.journal]


class Effects:
    """Journals what it applies; raises for the values in ``poison`` and while ``outage`` lasts."""

    def __init__(self, poison: frozenset[str] = frozenset(), outage: int = 0) -> None:
        self.poison = poison
        self.outage = outage
        self.calls = 0

    async def __call__(self, uow: JournalUnitOfWork, events: Sequence[EventEnvelope]) -> None:
        self.calls += 1
        uow.journal.applied.append((events[0].type, [e.subject for e in events]))
        if self.outage:
            self.outage -= 1
            raise ConnectionError("connection refused")
        if any(e.subject in self.poison for e in events):
            raise ValueError("cannot apply")


class Probe:
    """The database "answers" once ``down`` probes have said it does not."""

    def __init__(self, down: int = 0) -> None:
        self.down = down
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        if self.down:
            self.down -= 1
            return False
        return True


def _int(subject: str) -> EventEnvelope:
    return new_event(Int32Value(value=1), source="/test", subject=subject)


def _string(subject: str) -> EventEnvelope:
    return new_event(StringValue(value="x"), source="/test", subject=subject)


def _records(*events: EventEnvelope) -> list[KafkaRecord]:
    return [KafkaRecord("t", e.key, e.data, e.kafka_headers()) for e in events]


def _consumer(
    uow: JournalUnitOfWork,
    effects: Effects,
    dead: FakeDeadLetters | None = None,
    probe: Probe | None = None,
    max_attempts: int = 3,
) -> IdempotentConsumer[JournalUnitOfWork]:
    table: dict[str, Effect[JournalUnitOfWork]] = {INT: effects, STRING: effects}
    return IdempotentConsumer(
        "test", lambda: uow, table, dead or FakeDeadLetters(), probe or Probe(), max_attempts, backoff_s=0
    )


@pytest.fixture
def uow() -> JournalUnitOfWork:
    return JournalUnitOfWork()


async def test_runs_of_one_type_are_applied_together_in_order(uow: JournalUnitOfWork) -> None:
    events = [_int("a/1"), _int("a/2"), _string("b/1"), _int("a/3")]

    assert await _consumer(uow, Effects()).handle_batch(_records(*events)) == ["applied"] * 4

    assert uow.journal.applied == [(INT, ["a/1", "a/2"]), (STRING, ["b/1"]), (INT, ["a/3"])]
    assert uow.commits == 1


async def test_an_event_twice_in_a_poll_or_redelivered_is_applied_once(uow: JournalUnitOfWork) -> None:
    event = _int("a/1")
    consumer = _consumer(uow, Effects())

    assert await consumer.handle_batch(_records(event, event)) == ["applied", "duplicate"]
    assert await consumer.handle_batch(_records(event)) == ["duplicate"]

    assert uow.journal.applied == [(INT, ["a/1"])]


async def test_unknown_types_are_ignored_and_garbage_is_dead_lettered_at_once(uow: JournalUnitOfWork) -> None:
    unknown = new_event(Int32Value(), source="/t", subject="x")
    unknown = EventEnvelope(unknown.id, "other.Type", unknown.source, "x", unknown.time, unknown.data)
    garbage = KafkaRecord("t", b"k", b"not a cloudevent", [])
    dead = FakeDeadLetters()

    outcomes = await _consumer(uow, Effects(), dead).handle_batch([garbage, *_records(unknown)])

    assert outcomes == ["dead_lettered", "ignored"]
    [(record, error, attempts)] = dead.sent
    assert (record, attempts) == (garbage, 1)
    assert error.startswith("PermanentEventError")
    assert uow.journal.applied == []


async def test_a_failing_event_is_isolated_and_dead_lettered_after_its_attempts(
    uow: JournalUnitOfWork,
) -> None:
    events = [_int("a/1"), _int("bad"), _int("a/3")]
    dead = FakeDeadLetters()
    effects = Effects(poison=frozenset({"bad"}))

    outcomes = await _consumer(uow, effects, dead).handle_batch(_records(*events))

    assert outcomes == ["applied", "dead_lettered", "applied"]
    assert uow.journal.applied == [(INT, ["a/1"]), (INT, ["a/3"])]  # the failed attempts rolled back
    assert [(r.key, a) for r, _, a in dead.sent] == [(b"bad", 3)]
    assert dead.sent[0][1] == "ValueError: cannot apply"
    assert effects.calls == 1 + 1 + 3 + 1  # the batch, then a/1, three tries of bad, a/3
    assert await _consumer(uow, Effects(), dead).handle_batch(_records(events[1])) == [
        "applied"
    ]  # not in the inbox


async def test_an_outage_is_waited_out_without_counting_attempts_or_dead_lettering(
    uow: JournalUnitOfWork,
) -> None:
    events = [_int("a/1"), _int("a/2")]
    dead = FakeDeadLetters()
    probe = Probe(down=4)
    effects = Effects(outage=4)

    outcomes = await _consumer(uow, effects, dead, probe, max_attempts=1).handle_batch(_records(*events))

    assert outcomes == ["applied", "applied"]
    assert dead.sent == []
    assert probe.calls == 4
    assert uow.journal.applied == [(INT, ["a/1", "a/2"])]
    assert uow.commits == 1


async def test_a_failure_while_the_database_answers_counts_even_if_it_looks_like_an_outage(
    uow: JournalUnitOfWork,
) -> None:
    dead = FakeDeadLetters()

    outcomes = await _consumer(uow, Effects(outage=99), dead, Probe(down=0)).handle_batch(
        _records(_int("a/1"))
    )

    assert outcomes == ["dead_lettered"]
    assert [(a, e) for _, e, a in dead.sent] == [(3, "ConnectionError: connection refused")]


async def test_an_unreachable_dead_letter_topic_is_waited_out(uow: JournalUnitOfWork) -> None:
    dead = FakeDeadLetters(failures=3)

    outcomes = await _consumer(uow, Effects(), dead).handle_batch([KafkaRecord("t", None, b"", [])])

    assert outcomes == ["dead_lettered"]
    assert len(dead.sent) == 1
    assert dead.failures == 0


def _traced(event: EventEnvelope, trace_id: str) -> EventEnvelope:
    return dataclasses.replace(event, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")


class TraceJournal:
    """Journals the trace id current while each run of events is applied."""

    def __init__(self) -> None:
        self.traces: list[tuple[list[str], str]] = []

    async def __call__(self, uow: JournalUnitOfWork, events: Sequence[EventEnvelope]) -> None:
        self.traces.append(([e.subject for e in events], trace_id_of(current_traceparent())))


async def test_a_run_of_one_trace_in_a_batch_is_applied_within_that_trace(uow: JournalUnitOfWork) -> None:
    first, second = "1" * 32, "2" * 32
    events = [
        _traced(_int("a/1"), first),
        _traced(_string("b/1"), second),
        _traced(_int("a/2"), first),
        _traced(_int("a/3"), second),
        _int("a/4"),
    ]
    journal = TraceJournal()
    consumer = IdempotentConsumer(
        "test", lambda: uow, {INT: journal, STRING: journal}, FakeDeadLetters(), Probe()
    )

    assert await consumer.handle_batch(_records(*events)) == ["applied"] * 5

    [(one, in_first), (other, in_second), (mixed, in_batch)] = journal.traces
    assert (one, in_first) == (["a/1"], first)
    assert (other, in_second) == (["b/1"], second)
    assert mixed == ["a/2", "a/3", "a/4"]
    assert in_batch not in (first, second)  # several traces: the batch's own


SETTLE = "settle"


class Settling(SettledEffects[JournalUnitOfWork]):
    """``Effects`` for both types, and a settle step that journals itself in the unit of work and
    keeps the trace id current while it ran."""

    def __init__(self, effects: Effects) -> None:
        self._effects = effects
        self.traces: list[str] = []

    def __getitem__(self, event_type: str) -> Effect[JournalUnitOfWork]:
        if event_type not in (INT, STRING):
            raise KeyError(event_type)
        return self._effects

    def __iter__(self) -> Iterator[str]:
        return iter((INT, STRING))

    def __len__(self) -> int:
        return 2

    async def settle(self, uow: JournalUnitOfWork) -> None:
        uow.journal.applied.append((SETTLE, []))
        self.traces.append(trace_id_of(current_traceparent()))


def _settling(
    uow: JournalUnitOfWork, effects: Settling, dead: FakeDeadLetters | None = None
) -> IdempotentConsumer[JournalUnitOfWork]:
    return IdempotentConsumer("test", lambda: uow, effects, dead or FakeDeadLetters(), Probe(), backoff_s=0)


async def test_the_settle_step_runs_once_after_a_polls_effects_in_its_unit_of_work(
    uow: JournalUnitOfWork,
) -> None:
    events = [_int("a/1"), _string("b/1"), _int("a/2")]
    consumer = _settling(uow, Settling(Effects()))

    assert await consumer.handle_batch(_records(*events)) == ["applied"] * 3
    assert await consumer.handle_batch(_records(*events)) == ["duplicate"] * 3

    assert uow.journal.applied == [(INT, ["a/1"]), (STRING, ["b/1"]), (INT, ["a/2"]), (SETTLE, [])]
    assert uow.commits == 2  # the duplicates' unit of work settled nothing


async def test_each_record_applied_alone_is_settled_in_its_own_unit_of_work(uow: JournalUnitOfWork) -> None:
    events = [_int("a/1"), _int("bad"), _int("a/3")]
    dead = FakeDeadLetters()
    consumer = _settling(uow, Settling(Effects(poison=frozenset({"bad"}))), dead)

    assert await consumer.handle_batch(_records(*events)) == ["applied", "dead_lettered", "applied"]

    # The batch's unit of work and bad's rolled back, their settle steps with them.
    assert uow.journal.applied == [(INT, ["a/1"]), (SETTLE, []), (INT, ["a/3"]), (SETTLE, [])]


async def test_a_batch_of_one_trace_is_settled_within_that_trace(uow: JournalUnitOfWork) -> None:
    first, second = "1" * 32, "2" * 32
    effects = Settling(Effects())
    consumer = _settling(uow, effects)

    await consumer.handle_batch(_records(_traced(_int("a/1"), first), _traced(_string("b/1"), first)))
    await consumer.handle_batch(_records(_traced(_int("a/2"), first), _traced(_int("a/3"), second)))

    [one, mixed] = effects.traces
    assert one == first
    assert mixed not in (first, second)  # several traces: the batch's own
