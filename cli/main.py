"""``jiazheng``: the operator's and newcomer's command line."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import grpc
import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console

from deploy.local.services import SERVICES, LocalServices, health_status
from deploy.local.stack import LocalStack, StackError, default_home

app = typer.Typer(help="jiazheng household-services platform: local stack and tools.", no_args_is_help=True)
console = Console()


def _stack() -> tuple[LocalStack, LocalServices]:
    home = default_home("dev")
    return LocalStack(home), LocalServices(home)


@app.command()
def up() -> None:
    """Start Kafka, PostgreSQL and the five services (reusing whatever already runs)."""
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
    """Show what runs and whether each service answers its gRPC health check."""
    stack, services = _stack()
    console.print_json(json.dumps(stack.status()))
    for name, info in services.state().items():
        try:
            health = asyncio.run(health_status(info["grpc_port"]))
        except grpc.aio.AioRpcError as exc:
            health = f"unreachable ({exc.code().name})"
        console.print(f"{name:<11} grpc 127.0.0.1:{info['grpc_port']:<6} {health}")


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
