"""gRPC CatalogueService: the service catalogue (服务目录), read by all, changed by operators."""

from __future__ import annotations

from collections.abc import Callable

from jiazheng.orders.v1 import orders_pb2 as pb
from jiazheng.orders.v1 import orders_pb2_grpc
from libs.common.auth import Role
from services.orders import service_layer
from services.orders.api.orders import Context
from services.orders.mapping import catalogue_entry_from_proto, catalogue_entry_to_proto
from services.orders.service_layer import OrdersUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["CatalogueService"]
POLICY = {
    f"/{SERVICE.full_name}/GetCatalogue": frozenset(Role) - {Role.SERVICE},
    f"/{SERVICE.full_name}/UpdateCatalogueEntry": frozenset({Role.OPERATOR}),
}


class CatalogueServicer(orders_pb2_grpc.CatalogueServiceServicer):
    def __init__(self, uow_factory: Callable[[], OrdersUnitOfWork]) -> None:
        self._uow = uow_factory

    async def GetCatalogue(
        self, request: pb.GetCatalogueRequest, context: Context
    ) -> pb.GetCatalogueResponse:
        catalogue = await service_layer.current_catalogue(self._uow())
        entries = [catalogue_entry_to_proto(e) for e in catalogue.entries.values()]
        return pb.GetCatalogueResponse(version=catalogue.version, entries=entries)

    async def UpdateCatalogueEntry(
        self, request: pb.UpdateCatalogueEntryRequest, context: Context
    ) -> pb.UpdateCatalogueEntryResponse:
        entry = catalogue_entry_from_proto(request.entry)
        catalogue = await service_layer.update_catalogue_entry(
            self._uow(), entry, request.expected_version or None
        )
        stored = catalogue.entry(entry.service_type)
        return pb.UpdateCatalogueEntryResponse(
            version=catalogue.version, entry=catalogue_entry_to_proto(stored)
        )
