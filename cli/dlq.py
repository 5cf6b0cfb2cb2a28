"""``jiazheng dlq``: a consumer's dead letters, listed, and replayed to their topics once the cause
is fixed.

A dead letter (``libs.common.inbox.KafkaDeadLetters``) is the original record (key, value,
headers) followed by four headers: ``dlq_error``, ``dlq_consumer``, ``dlq_original_topic``,
``dlq_attempts``. A replay sends the original key, value and headers (without those four) to the
original topic, where every consumer of that topic reads it again: each is idempotent by event id
(its inbox; the regulator's table of published ids), so one that applied the event already drops
the copy and the one that dead-lettered it applies it now.

What was replayed is recorded on the dead-letter topic itself, by a marker record (header
``dlq_replay_of``: the event's ``ce_id``), so that it holds across machines, needs no other
topic, and ages out with the dead letters. ``replay --all`` skips every event replayed before,
also one that failed again after its replay (a new dead letter with the same ``ce_id``: its cause
is not fixed yet); ``--offset`` replays what it names whatever the markers say. Replaying twice is
harmless anyway (idempotence); the markers only keep ``--all`` from repeating itself.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from rich.table import Table

from cli.rpc import console, fail
from cli.topics import every_partition
from deploy.local.stack import LocalStack, StackError, default_home
from libs.common.beijing import BEIJING
from libs.common.errors import PermanentEventError
from libs.common.events import envelope_from_kafka
from libs.common.kafka import client_options, dlq_topic
from libs.common.settings import ServiceSettings

app = typer.Typer(
    help="A consumer's dead letters (jiazheng.<consumer>.dlq.v1): list them, replay them after a fix.",
    no_args_is_help=True,
)
# What KafkaDeadLetters appends to the original headers, in this order.
DLQ_HEADERS = ("dlq_error", "dlq_consumer", "dlq_original_topic", "dlq_attempts")
# A replay marker's headers: the replayed event's ce_id, the dead letter it came from
# ("<partition>:<offset>"), when, where the copy went ("<topic>:<partition>:<offset>"), by whom.
REPLAY_OF = "dlq_replay_of"
REPLAYED_FROM = "dlq_replayed_from"
REPLAYED_AT = "dlq_replayed_at"
REPLAYED_TO = "dlq_replayed_to"
REPLAYED_BY = "dlq_replayed_by"
ReplayState = Literal["pending", "replayed", "failed_again"]

JSON = typer.Option(False, "--json", help="print JSON for scripts instead of a table")
CONSUMER = typer.Argument(..., help="the consumer: orders, workers, credit, complaints or insurance")
OFFSETS = typer.Option([], "--offset", help="a dead letter as <partition>:<offset> (from `list`); repeatable")


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic: where it is, when it was dead-lettered, the original
    record and why it was given up."""

    partition: int
    offset: int
    dead_lettered_at: datetime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]  # the original record's, without the dlq_* ones
    original_topic: str
    consumer: str
    attempts: int | None
    error: str

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        value = dict(self.headers).get(name)
        return value.decode(errors="replace") if value is not None else None

    @property
    def event_id(self) -> str | None:
        return self.header("ce_id")

    @property
    def event_type(self) -> str | None:
        return self.header("ce_type")

    def not_a_cloud_event(self) -> str | None:
        """Why no consumer could ever apply this record (not a CloudEvent), or None."""
        try:
            envelope_from_kafka(self.headers, self.value)
        except PermanentEventError as exc:
            return str(exc)
        return None


@dataclass(frozen=True)
class Replay:
    """A marker: the event ``event_id`` of dead letter ``dead_letter`` was sent again to ``sent_to``."""

    event_id: str
    dead_letter: str
    at: datetime
    sent_to: str
    by: str


@dataclass
class DeadLetterTopic:
    """What a dead-letter topic holds: its dead letters in order, and the replays of each event."""

    topic: str
    letters: list[DeadLetter] = field(default_factory=list)
    replays: dict[str, list[Replay]] = field(default_factory=dict)
    other: int = 0  # records that are neither (never written by jiazheng)

    def add(
        self,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
    ) -> None:
        at = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        kept = tuple((name, v) for name, v in headers if v is not None)
        letter = dead_letter(partition, offset, at, key, value, kept)
        if letter is not None:
            self.letters.append(letter)
            return
        replay = replay_marker(kept)
        if replay is not None:
            self.replays.setdefault(replay.event_id, []).append(replay)
        else:
            self.other += 1

    def sort(self) -> None:
        self.letters.sort(key=lambda d: (d.dead_lettered_at, d.partition, d.offset))
        for replays in self.replays.values():
            replays.sort(key=lambda r: r.at)

    def state(self, letter: DeadLetter) -> tuple[ReplayState, Replay | None]:
        """Whether ``letter``'s event was replayed: not yet, yes (its last replay), or it was
        replayed and dead-lettered again afterwards (the last replay before this dead letter)."""
        replays = self.replays.get(letter.event_id or "", [])
        if not replays:
            return "pending", None
        last = replays[-1]
        return ("failed_again", last) if letter.dead_lettered_at > last.at else ("replayed", last)


def dead_letter(
    partition: int,
    offset: int,
    at: datetime,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> DeadLetter | None:
    """The dead letter a record of a DLQ topic is, or None (a replay marker, another record)."""
    names = [name for name, _ in headers]
    if names[-len(DLQ_HEADERS) :] == list(DLQ_HEADERS):
        original, appended = tuple(headers[: -len(DLQ_HEADERS)]), dict(headers[-len(DLQ_HEADERS) :])
    elif "dlq_original_topic" in names:  # written otherwise: the last of each name is the DLQ's
        original = tuple((n, v) for n, v in headers if n not in DLQ_HEADERS)
        appended = {n: v for n, v in headers if n in DLQ_HEADERS}
    else:
        return None
    attempts = appended.get("dlq_attempts", b"").decode(errors="replace")
    return DeadLetter(
        partition=partition,
        offset=offset,
        dead_lettered_at=at,
        key=key,
        value=value,
        headers=original,
        original_topic=appended["dlq_original_topic"].decode(errors="replace"),
        consumer=appended.get("dlq_consumer", b"").decode(errors="replace"),
        attempts=int(attempts) if attempts.isdigit() else None,
        error=appended.get("dlq_error", b"").decode(errors="replace"),
    )


def replay_marker(headers: Sequence[tuple[str, bytes]]) -> Replay | None:
    """The replay a marker record records, or None if the record is not one."""
    h = {name: v.decode(errors="replace") for name, v in headers}
    if REPLAY_OF not in h or REPLAYED_AT not in h:
        return None
    try:
        at = datetime.fromisoformat(h[REPLAYED_AT])
    except ValueError:
        return None
    return Replay(h[REPLAY_OF], h.get(REPLAYED_FROM, ""), at, h.get(REPLAYED_TO, ""), h.get(REPLAYED_BY, ""))


def marker_headers(replay: Replay) -> list[tuple[str, bytes]]:
    return [
        (REPLAY_OF, replay.event_id.encode()),
        (REPLAYED_FROM, replay.dead_letter.encode()),
        (REPLAYED_AT, replay.at.isoformat().encode()),
        (REPLAYED_TO, replay.sent_to.encode()),
        (REPLAYED_BY, replay.by.encode()),
    ]


def parse_position(text: str) -> tuple[int, int]:
    """``<partition>:<offset>`` of a dead letter, as ``list`` prints it."""
    partition, sep, offset = text.strip().partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise typer.BadParameter(f"{text!r} is not <partition>:<offset> (e.g. 0:42)")
    return int(partition), int(offset)


def choose(
    dlq: DeadLetterTopic, positions: Sequence[tuple[int, int]] | None, topics: Iterable[str]
) -> tuple[list[DeadLetter], list[tuple[DeadLetter, str]]]:
    """The dead letters to replay (``positions``, or every one not replayed before) and those
    skipped, each with why. A position that is no dead letter is an error (``LookupError``)."""
    existing = set(topics)
    if positions is None:
        wanted = dlq.letters
    else:
        at = {(d.partition, d.offset): d for d in dlq.letters}
        missing = [f"{p}:{o}" for p, o in positions if (p, o) not in at]
        if missing:
            raise LookupError(f"no dead letter at {', '.join(missing)} on {dlq.topic}")
        wanted = sorted({at[p] for p in positions}, key=dlq.letters.index)
    chosen: list[DeadLetter] = []
    skipped: list[tuple[DeadLetter, str]] = []
    replaying: set[str] = set()
    for letter in wanted:
        why = letter.not_a_cloud_event()
        state, last = dlq.state(letter)
        if why is not None:
            skipped.append((letter, f"not a CloudEvent, no consumer can apply it ({why})"))
        elif letter.original_topic not in existing:
            skipped.append((letter, f"its topic {letter.original_topic} does not exist"))
        elif letter.event_id in replaying:
            skipped.append((letter, f"event {letter.event_id} is replayed once already in this run"))
        elif positions is None and last is not None:
            again = " and dead-lettered again since" if state == "failed_again" else ""
            skipped.append((letter, f"replayed at {_time(last.at)}{again}; --offset replays it again"))
        else:
            chosen.append(letter)
            replaying.add(cast(str, letter.event_id))
    return chosen, skipped


def _time(moment: datetime) -> str:
    """Beijing time, to the second, as operators read it."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"(hex) {data.hex()}"


def letter_json(dlq: DeadLetterTopic, letter: DeadLetter) -> dict[str, Any]:
    state, last = dlq.state(letter)
    return {
        "dead_letter": letter.position,
        "partition": letter.partition,
        "offset": letter.offset,
        "dead_lettered_at": letter.dead_lettered_at.astimezone(BEIJING).isoformat(),
        "consumer": letter.consumer,
        "original_topic": letter.original_topic,
        "type": letter.event_type,
        "id": letter.event_id,
        "subject": letter.header("ce_subject"),
        "time": letter.header("ce_time"),
        "key": _text(letter.key),
        "attempts": letter.attempts,
        "error": letter.error,
        "cloud_event": letter.not_a_cloud_event() is None,
        "replay": state,
        "replayed_at": last.at.astimezone(BEIJING).isoformat() if last else None,
    }


def _replay_cell(dlq: DeadLetterTopic, letter: DeadLetter) -> str:
    state, last = dlq.state(letter)
    if last is None:
        return ""
    return f"{'failed again after ' if state == 'failed_again' else ''}replayed {_time(last.at)}"


def _type_cell(letter: DeadLetter) -> str:
    """The message's name (the topic says the package); what the record is when it is no event."""
    if letter.event_type is None:
        return "(not a CloudEvent)"
    return letter.event_type.rpartition(".")[2]


# -- Kafka --------------------------------------------------------------------------------------


def kafka_options(bootstrap: str | None) -> dict[str, Any]:
    """How to reach Kafka: ``--bootstrap`` / JZ_KAFKA_BOOTSTRAP, else the local stack's broker
    (JZ_STACK_HOME, as ``jiazheng up`` started it); the login (SASL, TLS) from the same JZ_KAFKA_*
    settings the services read."""
    if not bootstrap:
        try:
            bootstrap = LocalStack(default_home("dev")).endpoints().kafka_bootstrap
        except StackError as exc:
            fail(f"{exc}: run `make run`, or give --bootstrap (JZ_KAFKA_BOOTSTRAP)")
    return client_options(ServiceSettings(kafka_bootstrap=bootstrap))


class NoTopicError(LookupError):
    pass


async def read_dead_letters(options: Mapping[str, Any], topic: str) -> tuple[DeadLetterTopic, set[str]]:
    """Everything ``topic`` holds now, from its beginning, read without a consumer group (nothing
    is committed, no group's offsets move), and the names of the cluster's topics."""
    # earliest: a partition's position is resolved once, to its beginning (a reset to the latest
    # offset still under way when seek_to_beginning is asked can win over it)
    consumer = AIOKafkaConsumer(
        **options, enable_auto_commit=False, auto_offset_reset="earliest", client_id="jiazheng-dlq"
    )
    try:
        await consumer.start()
        topics = set(await consumer.topics())
        if topic not in topics:
            dlqs = sorted(
                t.removeprefix("jiazheng.").removesuffix(".dlq.v1") for t in topics if t.endswith(".dlq.v1")
            )
            raise NoTopicError(
                f"no topic {topic}; consumers with dead-letter topics: {', '.join(dlqs) or 'none'}"
            )
        partitions = await every_partition(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        dlq = DeadLetterTopic(topic)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*partitions, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp]:
                        dlq.add(tp.partition, r.offset, r.timestamp, r.key, r.value, r.headers)
        dlq.sort()
        return dlq, topics
    finally:
        await consumer.stop()


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def send_again(options: Mapping[str, Any], topic: str, letters: Sequence[DeadLetter]) -> None:
    """Each dead letter's original record to its original topic, then its marker to ``topic``,
    one after the other in the order they were dead-lettered; a line per replay."""
    producer = AIOKafkaProducer(
        **options, enable_idempotence=True, acks="all", linger_ms=0, client_id="jiazheng-dlq-replay"
    )
    try:
        await producer.start()
        by = _who()
        for letter in letters:
            sent = await producer.send_and_wait(
                letter.original_topic, value=letter.value, key=letter.key, headers=list(letter.headers)
            )
            replay = Replay(
                event_id=cast(str, letter.event_id),
                dead_letter=letter.position,
                at=datetime.now(UTC),
                sent_to=f"{sent.topic}:{sent.partition}:{sent.offset}",
                by=by,
            )
            marker = json.dumps({k: str(v) for k, v in vars(replay).items()}).encode()
            await producer.send_and_wait(
                topic, value=marker, key=replay.event_id.encode(), headers=marker_headers(replay)
            )
            typer.echo(
                f"replayed {letter.position} {_type_cell(letter)} {letter.event_id} to {sent.topic} "
                f"partition {sent.partition} offset {sent.offset}"
            )
    finally:
        await producer.stop()


def _read(options: Mapping[str, Any], topic: str) -> tuple[DeadLetterTopic, set[str]]:
    try:
        return asyncio.run(read_dead_letters(options, topic))
    except NoTopicError as exc:
        fail(str(exc))
    except (KafkaError, TimeoutError) as exc:
        fail(f"Kafka at {options['bootstrap_servers']}: {exc!r}")


# -- commands -----------------------------------------------------------------------------------


@app.callback()
def connection(
    ctx: typer.Context,
    bootstrap: str | None = typer.Option(
        None,
        "--bootstrap",
        envvar="JZ_KAFKA_BOOTSTRAP",
        help="Kafka's host:port (default: the local stack's; JZ_KAFKA_SECURITY_PROTOCOL and the "
        "other JZ_KAFKA_* settings log in as the services do)",
    ),
) -> None:
    """Where Kafka is (for every command of the group)."""
    ctx.obj = bootstrap


@app.command("list")
def list_dead_letters(
    ctx: typer.Context,
    consumer: str = CONSUMER,
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the N most recent dead letters"),
    pending: bool = typer.Option(False, "--pending", help="only those whose event was never replayed"),
    as_json: bool = JSON,
) -> None:
    """A consumer's dead letters, oldest first.

    Each with where it is on the DLQ topic (<partition>:<offset>, what `replay --offset` takes),
    when it was dead-lettered (Beijing time), the original topic, the event's type and id, the
    attempts, the error, and whether its event was replayed.
    """
    topic = dlq_topic(consumer)
    dlq, _ = _read(kafka_options(cast(str | None, ctx.obj)), topic)
    letters = [d for d in dlq.letters if not pending or dlq.state(d)[0] != "replayed"]
    shown = letters[-limit:] if limit else letters
    replayed = sum(1 for d in dlq.letters if dlq.state(d)[0] == "replayed")
    summary = f"{topic}: {len(dlq.letters)} dead letters, {replayed} replayed"
    if len(shown) < len(dlq.letters):
        summary += f"; showing {len(shown)}"
    if as_json:
        typer.echo(json.dumps([letter_json(dlq, d) for d in shown], ensure_ascii=False, indent=2))
        typer.echo(summary, err=True)
        return
    columns = ("dead letter", "dead-lettered", "topic", "type", "event id", "attempts", "error", "replay")
    table = Table(*columns, title=summary)
    for d in shown:
        table.add_row(
            d.position,
            _time(d.dead_lettered_at),
            d.original_topic,
            _type_cell(d),
            d.event_id or "",
            str(d.attempts) if d.attempts is not None else "?",
            d.error,
            _replay_cell(dlq, d),
        )
    console.print(table)


@app.command("replay")
def replay(
    ctx: typer.Context,
    consumer: str = CONSUMER,
    offsets: list[str] = OFFSETS,
    replay_all: bool = typer.Option(False, "--all", help="every dead letter whose event was never replayed"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Send dead letters again to their original topics, once their cause is fixed.

    Each goes with its original key, value and headers (without the dlq_* ones), so every consumer
    of the topic reads it again; they are idempotent by event id, so only the one that could not
    apply it does so now. A marker on the DLQ topic records each replay: --all skips the events
    replayed before.
    """
    if bool(offsets) == replay_all:
        raise typer.BadParameter(
            "give --offset <partition>:<offset> (one or more) or --all", param_hint="--offset"
        )
    positions = [parse_position(o) for o in offsets] if offsets else None
    options = kafka_options(cast(str | None, ctx.obj))
    topic = dlq_topic(consumer)
    dlq, topics = _read(options, topic)
    try:
        chosen, skipped = choose(dlq, positions, topics)
    except LookupError as exc:
        fail(str(exc))
    for letter, why in skipped:
        event = f" {letter.event_id}" if letter.event_id else ""
        typer.echo(f"skipped {letter.position}{event}: {why}")
    if not chosen:
        typer.echo(f"nothing to replay from {topic}")
        return
    targets = ", ".join(sorted({d.original_topic for d in chosen}))
    if not yes:
        typer.confirm(f"Replay {len(chosen)} dead letters of {consumer} to {targets}?", abort=True)
    try:
        asyncio.run(send_again(options, topic, chosen))
    except (KafkaError, TimeoutError) as exc:
        fail(f"Kafka at {options['bootstrap_servers']}: {exc!r} (the lines above were replayed)")
    typer.echo(f"replayed {len(chosen)} dead letters of {consumer} to {targets}")
