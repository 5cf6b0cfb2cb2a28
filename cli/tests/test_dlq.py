"""How `jiazheng dlq` reads a dead-letter topic and chooses what to replay: the original record
without the dlq_* headers, replay markers, and --all skipping the events replayed before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from cli.dlq import DeadLetterTopic, Replay, choose, dead_letter, marker_headers, parse_position

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ORDERS = "jiazheng.orders.events.v1"


def event_headers(event_id: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_type", b"jiazheng.orders.events.v1.OrderCreated"),
        ("ce_source", b"/orders"),
        ("ce_subject", b"orders/o-1"),
        ("ce_time", b"2026-03-01T07:59:00Z"),
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ]


def dlq_headers(error: str = "RaiseError: boom", attempts: int = 3) -> list[tuple[str, bytes]]:
    return [
        ("dlq_error", error.encode()),
        ("dlq_consumer", b"credit"),
        ("dlq_original_topic", ORDERS.encode()),
        ("dlq_attempts", str(attempts).encode()),
    ]


def topic_with(*records: tuple[int, int, timedelta, list[tuple[str, bytes]]]) -> DeadLetterTopic:
    dlq = DeadLetterTopic("jiazheng.credit.dlq.v1")
    for partition, offset, after, headers in records:
        at_ms = int((T0 + after).timestamp() * 1000)
        dlq.add(partition, offset, at_ms, b"orders/o-1", b"\x0a\x03o-1", headers)
    dlq.sort()
    return dlq


def marker(event_id: str, after: timedelta) -> list[tuple[str, bytes]]:
    return marker_headers(Replay(event_id, "0:0", T0 + after, f"{ORDERS}:1:7", "ops@host"))


def test_a_dead_letter_is_the_original_record_and_why_it_was_given_up() -> None:
    original = event_headers("e-1")
    letter = dead_letter(2, 41, T0, b"orders/o-1", b"payload", [*original, *dlq_headers()])
    assert letter is not None
    assert letter.headers == tuple(original)
    assert (letter.position, letter.original_topic, letter.consumer) == ("2:41", ORDERS, "credit")
    assert (letter.attempts, letter.error) == (3, "RaiseError: boom")
    assert (letter.event_id, letter.event_type) == ("e-1", "jiazheng.orders.events.v1.OrderCreated")
    assert letter.not_a_cloud_event() is None


def test_an_original_header_named_like_a_dlq_one_is_kept() -> None:
    original = [*event_headers("e-1"), ("dlq_error", b"the producer's own")]
    letter = dead_letter(0, 0, T0, None, b"", [*original, *dlq_headers()])
    assert letter is not None
    assert letter.headers == tuple(original)
    assert letter.error == "RaiseError: boom"


def test_a_record_without_cloudevents_headers_is_listed_but_never_replayed() -> None:
    dlq = topic_with((0, 5, timedelta(0), [*dlq_headers("PermanentEventError: not a CloudEvent", 1)]))
    [letter] = dlq.letters
    assert letter.event_id is None
    assert letter.not_a_cloud_event()
    chosen, [(skipped, why)] = choose(dlq, None, [ORDERS])
    assert chosen == []
    assert skipped == letter
    assert "not a CloudEvent" in why


def test_markers_are_not_dead_letters_and_say_what_was_replayed() -> None:
    dlq = topic_with(
        (0, 0, timedelta(0), [*event_headers("e-1"), *dlq_headers()]),
        (1, 0, timedelta(minutes=5), marker("e-1", timedelta(minutes=5))),
    )
    [letter] = dlq.letters
    state, last = dlq.state(letter)
    assert state == "replayed"
    assert last is not None
    assert (last.sent_to, last.by, last.at) == (f"{ORDERS}:1:7", "ops@host", T0 + timedelta(minutes=5))


def test_all_replays_each_event_once_and_skips_those_replayed_before() -> None:
    dlq = topic_with(
        (0, 0, timedelta(0), [*event_headers("e-1"), *dlq_headers()]),
        (1, 0, timedelta(seconds=1), [*event_headers("e-2"), *dlq_headers()]),
        # e-2 dead-lettered by a second process of the same consumer
        (2, 0, timedelta(seconds=2), [*event_headers("e-2"), *dlq_headers()]),
        (0, 1, timedelta(seconds=3), [*event_headers("e-3"), *dlq_headers()]),
        (1, 1, timedelta(minutes=1), marker("e-1", timedelta(minutes=1))),
        # e-3 replayed, then dead-lettered again: its cause is not fixed
        (2, 1, timedelta(minutes=2), marker("e-3", timedelta(minutes=2))),
        (2, 2, timedelta(minutes=3), [*event_headers("e-3"), *dlq_headers()]),
    )
    assert [dlq.state(d)[0] for d in dlq.letters] == [
        "replayed",
        "pending",
        "pending",
        "replayed",
        "failed_again",
    ]
    chosen, skipped = choose(dlq, None, [ORDERS])
    assert [(d.position, d.event_id) for d in chosen] == [("1:0", "e-2")]
    assert [(d.position, why.split(" ")[0]) for d, why in skipped] == [
        ("0:0", "replayed"),
        ("2:0", "event"),  # e-2 once only
        ("0:1", "replayed"),
        ("2:2", "replayed"),
    ]
    assert "dead-lettered again since" in skipped[-1][1]


def test_an_offset_given_is_replayed_whatever_the_markers_say() -> None:
    dlq = topic_with(
        (0, 0, timedelta(0), [*event_headers("e-1"), *dlq_headers()]),
        (1, 0, timedelta(minutes=1), marker("e-1", timedelta(minutes=1))),
    )
    chosen, skipped = choose(dlq, [(0, 0)], [ORDERS])
    assert [d.event_id for d in chosen] == ["e-1"]
    assert skipped == []


def test_an_offset_that_is_no_dead_letter_is_an_error() -> None:
    dlq = topic_with(
        (0, 0, timedelta(0), [*event_headers("e-1"), *dlq_headers()]),
        (1, 0, timedelta(minutes=1), marker("e-1", timedelta(minutes=1))),
    )
    with pytest.raises(LookupError, match="no dead letter at 1:0, 3:9"):
        choose(dlq, [(0, 0), (1, 0), (3, 9)], [ORDERS])


def test_a_dead_letter_whose_topic_is_gone_is_skipped() -> None:
    dlq = topic_with((0, 0, timedelta(0), [*event_headers("e-1"), *dlq_headers()]))
    chosen, [(_, why)] = choose(dlq, None, ["jiazheng.credit.events.v1"])
    assert chosen == []
    assert why == f"its topic {ORDERS} does not exist"


@pytest.mark.parametrize("text", ["0:42", " 0:42 "])
def test_a_position_is_partition_colon_offset(text: str) -> None:
    assert parse_position(text) == (0, 42)


@pytest.mark.parametrize("text", ["42", "a:1", "1:-2", "1:2:3", ""])
def test_anything_else_is_a_bad_parameter(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="<partition>:<offset>"):
        parse_position(text)
