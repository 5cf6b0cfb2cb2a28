"""``jiazheng card``: the electronic home-visit service card (居家上门服务证): issue, verify, QR."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.rpc import console, enum_number, enum_words, show
from cli.workers import JSON, call, connection, resource
from jiazheng.workers.v1 import workers_pb2 as pb

app = typer.Typer(help="Service cards (居家上门服务证): issue, verify, QR images.", no_args_is_help=True)
app.callback()(connection)

QR_OUT = typer.Option(..., "--out", dir_okay=False, writable=True, help="the image file to write")


@app.command("issue")
def issue(ctx: typer.Context, worker: str, as_json: bool = JSON) -> None:
    """Issue a worker's card; prints its name, token and verification link."""
    show(call(ctx, "IssueCard", pb.IssueCardRequest(worker=resource("workers", worker))).card, as_json)


@app.command("verify")
def verify(ctx: typer.Context, token: str, as_json: bool = JSON) -> None:
    """Verify a card's token: the verdict, the colour now with its reasons, the masked public view.

    Exit code 1 unless the token is valid.
    """
    reply: pb.VerifyCardResponse = call(ctx, "VerifyCard", pb.VerifyCardRequest(token=token))
    show(reply, as_json)
    if reply.verdict != pb.TOKEN_VERDICT_VALID:
        raise typer.Exit(1)


@app.command("qr")
def qr(
    ctx: typer.Context,
    card: str = typer.Argument(..., help="workers/<worker id>/cards/<card id>"),
    image_format: str = typer.Option(
        "png", "--format", help=f"{', '.join(enum_words(pb.QrFormat.DESCRIPTOR))}"
    ),
    out: Path = QR_OUT,
) -> None:
    """Write the QR code of a card's verification link as an image."""
    request = pb.GetCardQrCodeRequest(
        name=card, format=pb.QrFormat.ValueType(enum_number(pb.QrFormat.DESCRIPTOR, image_format))
    )
    reply: pb.GetCardQrCodeResponse = call(ctx, "GetCardQrCode", request)
    out.write_bytes(reply.image)
    console.print(f"wrote {out} ({reply.content_type}, {len(reply.image)} bytes)", highlight=False)
