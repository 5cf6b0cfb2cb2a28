"""``jiazheng``: the operator's and newcomer's command line."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import time
import uuid
from pathlib import Path

import grpc
import typer
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console

from cli import cards, complaints, credit, dlq, insurance, orders, report, workers
from cli.topics import every_partition
from deploy.local.services import SERVICES, LocalServices, health_status
from deploy.local.stack import ROOT, LocalStack, StackError, default_home
from libs.common.errors import PermanentEventError
from libs.common.events import envelope_from_kafka

app = typer.Typer(help="jiazheng household-services platform: local stack and tools.", no_args_is_help=True)
console = Console()
app.add_typer(workers.app, name="workers")
app.add_typer(cards.app, name="card")
app.add_typer(orders.app, name="orders")
app.add_typer(complaints.app, name="complaints")
app.add_typer(complaints.mediation_app, name="mediation")
app.add_typer(credit.app, name="credit")
app.add_typer(insurance.app, name="insurance")
app.add_typer(dlq.app, name="dlq")
app.command("report")(report.report)


def _stack() -> tuple[LocalStack, LocalServices]:
    home = default_home("dev")
    return LocalStack(home), LocalServices(home)


@app.command()
def up() -> None:
    """Start Kafka, PostgreSQL and every service and the regulator (reusing whatever already runs)."""
    stack, services = _stack()
    try:
        with console.status("starting Kafka and PostgreSQL..."):
            endpoints = stack.up()
        with console.status("starting services..."):
            state = services.up(endpoints)
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print("[bold]jiazheng is running[/bold]")
    rows = [
        ("kafka", endpoints.kafka_bootstrap, stack.kafka_dir / "kafka.log"),
        ("postgres", f"{endpoints.pg_host}:{endpoints.pg_port}", stack.pg_dir / "postgres.log"),
    ]
    rows += [
        (name, f"grpc 127.0.0.1:{s['grpc_port']}  metrics :{s['metrics_port']}/metrics", services.log(name))
        for name, s in ((n, state[n]) for n in SERVICES)
    ]
    for name, address, log in rows:
        console.print(f"  {name:<11} {address:<44} log {_short(log)}", soft_wrap=True)
    console.print(f"API keys for trying it: {_short(services.keys_file)}", soft_wrap=True)
    web = f"http://127.0.0.1:{state['gateway']['http_port']}"
    console.print(f"Web: card page {web}/v?t=<token>   regulator dashboard {web}/regulator", soft_wrap=True)
    console.print("Try it: [bold].venv/bin/jiazheng demo[/bold]   Stop: [bold]make stop[/bold]")


def _short(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


@app.command()
def down() -> None:
    """Stop the services, Kafka and PostgreSQL that `up` started (data is kept)."""
    stack, services = _stack()
    services.down()
    stack.down()
    console.print("stopped")


@app.command()
def status() -> None:
    """Show what runs, each service's process, restarts and gRPC health."""
    stack, services = _stack()
    console.print_json(json.dumps(stack.status()))
    for row in services.status():
        try:
            health = asyncio.run(health_status(row.grpc_port))
        except grpc.aio.AioRpcError as exc:
            health = f"unreachable ({exc.code().name})"
        pid = row.child_pid or "-"
        last_exit = "" if row.last_exit is None else f"(last exit {row.last_exit}) "
        supervisor = "" if row.supervised else "supervisor stopped "
        console.print(
            f"{row.name:<11} grpc 127.0.0.1:{row.grpc_port:<6} pid {pid:<8} restarts {row.restarts:<3} "
            f"{last_exit}{supervisor}{health}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def demo(worker_id: str = typer.Option("demo-worker-1", help="worker to book")) -> None:
    """Book an order as the demo platform and show the credit ledger entry it produces."""
    _, services = _stack()
    state = services.state()
    keys = {k.principal: k.key for k in services.api_keys()}
    if not {"orders", "credit"} <= state.keys():
        console.print("[red]services are not running: run `make run` first[/red]")
        raise typer.Exit(1)
    asyncio.run(_demo(state["orders"]["grpc_port"], state["credit"]["grpc_port"], keys, worker_id))


async def _demo(orders_port: int, credit_port: int, keys: dict[str, str], worker_id: str) -> None:
    from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
    from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
    from jiazheng.type.v1 import service_type_pb2

    start = Timestamp()
    start.FromSeconds(int(time.time()) + 24 * 3600)
    request = orders_pb2.CreateOrderRequest(
        request_id=str(uuid.uuid4()),
        order=orders_pb2.Order(
            service_type=service_type_pb2.SERVICE_TYPE_ELDERLY_CARE,
            district_code="110105",
            consumer_ref="demo-consumer",
            worker_id=worker_id,
            scheduled_start_time=start,
            duration_hours=4,
            contact=orders_pb2.Contact(full_name="王芳", mobile="13900001111"),
            address="北京市朝阳区建国路1号",
        ),
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{orders_port}") as channel:
        created = await orders_pb2_grpc.OrderServiceStub(channel).CreateOrder(
            request, metadata=[("authorization", f"Bearer {keys['demo-platform']}")]
        )
    console.print(f"created {created.order.name} for worker {worker_id}")
    query = credit_pb2.ListLedgerEntriesRequest(parent=f"workers/{worker_id}", page_size=1000)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{credit_port}") as channel:
        stub = credit_pb2_grpc.CreditServiceStub(channel)
        for _ in range(300):
            reply = await stub.ListLedgerEntries(
                query, metadata=[("authorization", f"Bearer {keys['operator']}")]
            )
            mine = [e for e in reply.ledger_entries if created.order.name.split("/")[1] in e.reason]
            if mine:
                entry = mine[0]
                console.print(f"credit ledger entry: {entry.name}", soft_wrap=True)
                console.print(f"  {entry.reason}, trace {entry.trace_id}", soft_wrap=True)
                return
            await asyncio.sleep(0.1)
    console.print("[red]no ledger entry after 30 s: see the credit log[/red]")
    raise typer.Exit(1)


events = typer.Typer(help="Read the services' Kafka topics.", no_args_is_help=True)
app.add_typer(events, name="events")


@events.command("tail")
def events_tail(
    topic: str = typer.Argument(..., help="e.g. jiazheng.orders.events.v1"),
    from_end: bool = typer.Option(False, "--from-end", help="skip what the topic holds already"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep reading new records (Ctrl-C stops)"),
    max_records: int | None = typer.Option(None, "--max", min=1, help="stop after this many records"),
) -> None:
    """Print a topic's records: key, CloudEvents attributes, payload decoded by its ce_type.

    Reads the dev stack's Kafka (JZ_STACK_HOME overrides) without joining a consumer group.
    """
    stack, _ = _stack()
    try:
        bootstrap = stack.endpoints().kafka_bootstrap
    except StackError as exc:
        console.print(f"[red]{exc}: run `make run` first[/red]")
        raise typer.Exit(1) from None
    _import_event_modules()
    try:
        asyncio.run(_tail(bootstrap, topic, from_end, follow, max_records))
    except (KafkaError, TimeoutError) as exc:
        console.print(f"[red]Kafka at {bootstrap}: {exc!r}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


def _import_event_modules() -> None:
    """Load every generated event module, so that each event type is in the default descriptor pool."""
    gen = ROOT / "gen"
    for module in sorted(gen.glob("jiazheng/**/events/v1/*_pb2.py")):
        importlib.import_module(".".join(module.relative_to(gen).with_suffix("").parts))


async def _tail(bootstrap: str, topic: str, from_end: bool, follow: bool, limit: int | None) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="latest" if from_end else "earliest",
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            console.print(f"[red]no topic {topic}[/red]")
            raise typer.Exit(1)
        partitions = await every_partition(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            await consumer.position(tp)  # fixes where reading starts before saying so
        where = "the end" if from_end else "the beginning"
        typer.echo(f"reading {topic} ({len(partitions)} partitions) from {where}", err=True)
        printed = 0
        while limit is None or printed < limit:
            if not follow and all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                return
            batch = await consumer.getmany(timeout_ms=1000, max_records=limit - printed if limit else None)
            for records in batch.values():
                for record in records:
                    typer.echo("\n".join(describe_record(record)) + "\n")
                printed += len(records)
    finally:
        await consumer.stop()


def describe_record(record: ConsumerRecord[bytes, bytes]) -> list[str]:
    """A record as lines of text; never raises on what the record holds."""
    key = _text(record.key) if record.key is not None else "(none)"
    lines = [f"{record.topic} partition {record.partition} offset {record.offset} key {key}"]
    value = record.value or b""
    try:
        envelope = envelope_from_kafka(record.headers, value)
    except PermanentEventError as exc:
        lines.append(f"  not a CloudEvent ({exc}); the raw record:")
        lines += [f"  header {name} {_text(v) if v is not None else '(null)'}" for name, v in record.headers]
        return [*lines, f"  value (base64) {base64.b64encode(value).decode()}"]
    attributes = {
        "ce_type": envelope.type,
        "ce_id": envelope.id,
        "ce_time": envelope.time.isoformat(),
        "ce_subject": envelope.subject,
        "traceparent": envelope.traceparent or "(none)",
    }
    lines += [f"  {name} {v}" for name, v in attributes.items()]
    try:
        payload = _decode(envelope.type, envelope.data)
    except KeyError:
        return [*lines, _undecoded(f"no message type {envelope.type} in gen/", value)]
    except DecodeError as exc:
        return [*lines, _undecoded(f"undecodable: {exc}", value)]
    return [*lines, *("  " + line for line in payload.splitlines())]


def _undecoded(reason: str, value: bytes) -> str:
    return f"  payload not decoded ({reason}); value (base64) {base64.b64encode(value).decode()}"


def _decode(type_name: str, data: bytes) -> str:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    message = message_factory.GetMessageClass(descriptor)()
    message.ParseFromString(data)
    return json_format.MessageToJson(message, preserving_proto_field_name=True, ensure_ascii=False)


def _text(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"(hex) {data.hex()}"
