"""gRPC CardService: the electronic home-visit service card (居家上门服务证), protobuf ↔ use cases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from jiazheng.workers.v1 import workers_pb2 as pb
from jiazheng.workers.v1 import workers_pb2_grpc
from libs.common.auth import Role, current_principal
from libs.common.card_token import CardCheck
from libs.common.protoutil import timestamp
from libs.common.uow import Clock
from services.workers import card_qr, service_layer
from services.workers.api.workers import Context, resource_id
from services.workers.mapping import CARD_COLOUR, SKILL_LEVEL, TRADE
from services.workers.service_layer import Card, CardHolders, CardSigner, CardsUnitOfWork, PublicWorkerView

SERVICE = pb.DESCRIPTOR.services_by_name["CardService"]
_MANAGERS = frozenset({Role.COMPANY, Role.OPERATOR})
_ANYONE = frozenset(Role)  # every authenticated caller: a card is checked at any door
POLICY = {
    f"/{SERVICE.full_name}/{method}": roles
    for method, roles in {
        "IssueCard": _MANAGERS,
        "ReissueCard": _MANAGERS,
        "RevokeCard": _MANAGERS,
        "VerifyCard": _ANYONE,
        "GetCardKeys": _ANYONE,
        "GetCardQrCode": _MANAGERS,
    }.items()
}
VERDICT = {v: pb.TokenVerdict.Value(f"TOKEN_VERDICT_{v.name}") for v in CardCheck}


def card_name(name: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The worker and card ids of ``workers/{worker_id}/cards/{card_id}``."""
    worker, _, card = name.partition("/cards/")
    return resource_id(worker, "workers", "name"), resource_id(card, "", "name")


def public_view(view: PublicWorkerView) -> pb.PublicWorkerView:
    return pb.PublicWorkerView(
        photo_ref=view.photo_ref,
        masked_full_name=view.masked_name,
        company_display_name=view.company_name,
        trades=[TRADE[t] for t in view.trades],
        skill_level=SKILL_LEVEL[view.skill_level] if view.skill_level else pb.SKILL_LEVEL_UNSPECIFIED,
        health_check_valid_until=view.health_check_valid_until.isoformat()
        if view.health_check_valid_until
        else "",
        insurance_valid_until=view.insured_until.isoformat() if view.insured_until else "",
        credit_level=view.credit_level or "",
    )


class CardServicer(workers_pb2_grpc.CardServiceServicer):
    def __init__(
        self,
        uow_factory: Callable[[], CardsUnitOfWork],
        holders: CardHolders,
        signer: CardSigner,
        verify_base_url: str,
        clock: Clock,
    ) -> None:
        self._uow = uow_factory
        self._holders = holders
        self._signer = signer
        self._verify_base_url = verify_base_url
        self._clock = clock

    async def IssueCard(self, request: pb.IssueCardRequest, context: Context) -> pb.IssueCardResponse:
        worker_id = resource_id(request.worker, "workers", "worker")
        card = await service_layer.issue_card(self._uow(), current_principal(), self._signer, worker_id)
        return pb.IssueCardResponse(card=self._card(card))

    async def ReissueCard(self, request: pb.ReissueCardRequest, context: Context) -> pb.ReissueCardResponse:
        worker_id, card_id = card_name(request.name)
        card = await service_layer.reissue_card(
            self._uow(), current_principal(), self._signer, worker_id, card_id
        )
        return pb.ReissueCardResponse(card=self._card(card))

    async def RevokeCard(self, request: pb.RevokeCardRequest, context: Context) -> pb.RevokeCardResponse:
        worker_id, card_id = card_name(request.name)
        await service_layer.revoke_card(self._uow(), current_principal(), worker_id, card_id)
        return pb.RevokeCardResponse()

    async def VerifyCard(self, request: pb.VerifyCardRequest, context: Context) -> pb.VerifyCardResponse:
        verdict = await service_layer.verify_card(
            self._holders, self._signer.keyring, request.token, self._clock.now()
        )
        reply = pb.VerifyCardResponse(
            verdict=VERDICT[verdict.verdict],
            colour=CARD_COLOUR[verdict.colour],
            reasons=list(verdict.reasons),
        )
        if verdict.worker is not None:
            reply.worker.CopyFrom(public_view(verdict.worker))
        return reply

    async def GetCardKeys(self, request: pb.GetCardKeysRequest, context: Context) -> pb.GetCardKeysResponse:
        jwks = self._signer.keyring.jwks()
        keys = [pb.CardKey(kid=k["kid"], kty=k["kty"], crv=k["crv"], x=k["x"]) for k in jwks["keys"]]
        return pb.GetCardKeysResponse(keys=keys, jwks_json=json.dumps(jwks))

    async def GetCardQrCode(
        self, request: pb.GetCardQrCodeRequest, context: Context
    ) -> pb.GetCardQrCodeResponse:
        worker_id, card_id = card_name(request.name)
        card = await service_layer.get_card(self._uow(), current_principal(), worker_id, card_id)
        url = card_qr.verification_url(self._verify_base_url, card.token)
        if request.format == pb.QR_FORMAT_SVG:
            return pb.GetCardQrCodeResponse(
                content_type="image/svg+xml", image=card_qr.card_svg(url).encode()
            )
        return pb.GetCardQrCodeResponse(content_type="image/png", image=card_qr.card_png(url))

    def _card(self, card: Card) -> pb.Card:
        return pb.Card(
            name=f"workers/{card.worker_id}/cards/{card.card_id}",
            token=card.token,
            verification_url=card_qr.verification_url(self._verify_base_url, card.token),
            create_time=timestamp(card.issued_at),
            expire_time=timestamp(card.expires_at),
        )
