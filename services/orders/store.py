"""Orders persistence on asyncpg: the repositories and the service's unit of work.

Personal data (the consumer's contact and the address, the contract's content) is sealed here on
its way into the tables (libs.common.pii) beside the masked forms responses show; only the
contract reads it back, to render the document for the order's platform.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg
from google.protobuf.json_format import MessageToDict, ParseDict

from jiazheng.orders.v1.orders_pb2 import CatalogueEntry as CatalogueEntryProto
from libs.common.db import PgSealingUnitOfWork
from libs.common.pii import Keyring, mask_address, mask_name, mask_phone
from services.orders import domain
from services.orders.domain.catalogue import DEFAULT_CATALOGUE, Catalogue
from services.orders.domain.contract import Contract, contract_from_canonical
from services.orders.eligibility_store import PgEligibilityRepository
from services.orders.mapping import catalogue_entry_from_proto, catalogue_entry_to_proto
from services.orders.service_layer.ports import StoredContract, StoredOrder

CONTACT = "orders.order.contact"
ADDRESS = "orders.order.address"
CONTRACT = "orders.contract.content"
REQUEST = "orders.order.request"


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def stored_order(row: asyncpg.Record) -> StoredOrder:
    draft = domain.OrderDraft(
        service_type=domain.ServiceType(row["service_type"]),
        district_code=row["district_code"],
        consumer_ref=row["consumer_ref"],
        worker_id=row["worker_id"],
        scheduled_start=row["scheduled_start"],
        duration_hours=row["duration_hours"],
        contact=domain.Contact(row["name_masked"], row["mobile_masked"]),
        address=row["address_masked"],
        price_fen=row["price_fen"],
        special_needs=tuple(domain.SpecialNeed(n) for n in row["special_needs"]),
    )
    order = domain.Order(
        order_id=row["order_id"],
        platform_id=row["platform_id"],
        draft=draft,
        state=domain.OrderState(row["state"]),
        created_at=row["created_at"],
        price_fen=row["price_fen"],
        catalogue_version=row["catalogue_version"],
        assigned_worker_id=row["assigned_worker_id"],
        contract_id=row["contract_id"],
        pending_offer_id=row["pending_offer_id"],
        check_in_at=row["check_in_at"],
        check_out_at=row["check_out_at"],
        card_id=row["card_id"],
        ended_by=_optional(row["ended_by"], domain.Party),
        ended_at=row["ended_at"],
        cancellation_fee_fen=row["cancellation_fee_fen"],
        consumer_rating=row["consumer_rating"],
        worker_rating=row["worker_rating"],
        charge_disputed=row["charge_disputed"],
    )
    return StoredOrder(order, row["request_fingerprint"])


_INSERT_ORDER = (
    "INSERT INTO orders (order_id, platform_id, request_id, request_fingerprint, service_type,"
    " district_code, consumer_ref, worker_id, scheduled_start, duration_hours, state, created_at,"
    " contact_sealed, name_masked, mobile_masked, address_sealed, address_masked, price_fen, special_needs,"
    " catalogue_version)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    " ON CONFLICT (platform_id, request_id) DO NOTHING RETURNING true"
)
_UPDATE_ORDER = (
    "UPDATE orders SET state = $2, assigned_worker_id = $3, contract_id = $4, pending_offer_id = $5,"
    " check_in_at = $6, check_out_at = $7, card_id = $8, ended_by = $9, ended_at = $10,"
    " cancellation_fee_fen = $11, consumer_rating = $12, worker_rating = $13, charge_disputed = $14"
    " WHERE order_id = $1"
)


class PgOrderRepository:
    def __init__(self, conn: asyncpg.Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    def fingerprint(self, draft: domain.OrderDraft) -> str:
        return self._keyring.lookup_hash(draft.fingerprint(), REQUEST).hex()

    async def add_once(self, order: domain.Order, request_id: uuid.UUID) -> StoredOrder | None:
        d = order.draft
        contact = d.contact or domain.Contact("", "")
        seal = self._keyring.seal
        inserted = await self._conn.fetchval(
            _INSERT_ORDER,
            order.order_id,
            order.platform_id,
            request_id,
            self.fingerprint(d),
            d.service_type,
            d.district_code,
            d.consumer_ref,
            d.worker_id,
            d.scheduled_start,
            d.duration_hours,
            order.state,
            order.created_at,
            seal(json.dumps([contact.full_name, contact.mobile], ensure_ascii=False), CONTACT),
            mask_name(contact.full_name),
            mask_phone(contact.mobile),
            seal(d.address, ADDRESS),
            mask_address(d.address),
            order.price_fen,
            list(d.special_needs),
            order.catalogue_version,
        )
        if inserted:
            return None
        return await self.find_by_request(order.platform_id, request_id)

    async def find_by_request(self, platform_id: str, request_id: uuid.UUID) -> StoredOrder | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM orders WHERE platform_id = $1 AND request_id = $2", platform_id, request_id
        )
        return stored_order(row) if row else None

    async def get(self, order_id: uuid.UUID) -> domain.Order | None:
        row = await self._conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", order_id)
        return stored_order(row).order if row else None

    async def get_for_update(self, order_id: uuid.UUID) -> domain.Order | None:
        row = await self._conn.fetchrow("SELECT * FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
        return stored_order(row).order if row else None

    async def update(self, order: domain.Order) -> None:
        await self._conn.execute(
            _UPDATE_ORDER,
            order.order_id,
            order.state,
            order.assigned_worker_id,
            order.contract_id,
            order.pending_offer_id,
            order.check_in_at,
            order.check_out_at,
            order.card_id,
            order.ended_by,
            order.ended_at,
            order.cancellation_fee_fen,
            order.consumer_rating,
            order.worker_rating,
            order.charge_disputed,
        )

    async def particulars(self, order_id: uuid.UUID) -> tuple[domain.Contact, str]:
        row = await self._conn.fetchrow(
            "SELECT contact_sealed, address_sealed FROM orders WHERE order_id = $1", order_id
        )
        name, mobile = json.loads(self._keyring.open(row["contact_sealed"], CONTACT))
        return domain.Contact(name, mobile), self._keyring.open(row["address_sealed"], ADDRESS)

    async def worker_no_shows_since(self, worker_id: str, since: datetime) -> int:
        count: int = await self._conn.fetchval(
            "SELECT count(*) FROM orders WHERE assigned_worker_id = $1 AND state = 'no_show'"
            " AND ended_by = 'worker' AND ended_at >= $2",
            worker_id,
            since,
        )
        return count


def _offer(row: asyncpg.Record) -> domain.Offer:
    return domain.Offer(
        offer_id=row["offer_id"],
        order_id=row["order_id"],
        worker_id=row["worker_id"],
        state=domain.OfferState(row["state"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        rank=row["rank"],
        score=row["score"],
    )


class PgOfferRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, offer: domain.Offer) -> None:
        await self._conn.execute(
            "INSERT INTO offers (offer_id, order_id, worker_id, state, rank, score, created_at, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            offer.offer_id,
            offer.order_id,
            offer.worker_id,
            offer.state,
            offer.rank,
            offer.score,
            offer.created_at,
            offer.expires_at,
        )

    async def get(self, offer_id: uuid.UUID) -> domain.Offer | None:
        row = await self._conn.fetchrow("SELECT * FROM offers WHERE offer_id = $1", offer_id)
        return _offer(row) if row else None

    async def update(self, offer: domain.Offer) -> None:
        await self._conn.execute(
            "UPDATE offers SET state = $2 WHERE offer_id = $1", offer.offer_id, offer.state
        )

    async def offered_workers(self, order_id: uuid.UUID) -> set[str]:
        rows = await self._conn.fetch("SELECT DISTINCT worker_id FROM offers WHERE order_id = $1", order_id)
        return {r["worker_id"] for r in rows}


class PgContractRepository:
    def __init__(self, conn: asyncpg.Connection, keyring: Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    async def add(self, contract: Contract) -> None:
        content = contract.canonical_json().decode()
        await self._conn.execute(
            "INSERT INTO contracts (contract_id, order_id, worker_id, content_sealed, content_sha256,"
            " replaces, trial_ends_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            contract.contract_id,
            contract.order_id,
            contract.parties.worker_id,
            self._keyring.seal(content, CONTRACT),
            contract.content_hash(),
            contract.replaces_contract_id,
            contract.trial_ends_at,
            contract.created_at,
        )

    async def get(self, contract_id: uuid.UUID) -> StoredContract | None:
        row = await self._conn.fetchrow("SELECT * FROM contracts WHERE contract_id = $1", contract_id)
        if row is None:
            return None
        content = self._keyring.open(row["content_sealed"], CONTRACT).encode()
        return StoredContract(contract_from_canonical(content), row["content_sha256"], row["ended_at"])

    async def end(self, contract_id: uuid.UUID, at: datetime) -> None:
        await self._conn.execute(
            "UPDATE contracts SET ended_at = $2 WHERE contract_id = $1 AND ended_at IS NULL", contract_id, at
        )


class PgCatalogueRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def current(self) -> Catalogue:
        row = await self._conn.fetchrow("SELECT * FROM catalogue_versions ORDER BY version DESC LIMIT 1")
        if row is None:
            return DEFAULT_CATALOGUE
        entries = [
            catalogue_entry_from_proto(ParseDict(e, CatalogueEntryProto()))
            for e in json.loads(row["entries"])
        ]
        return Catalogue(row["version"], {e.service_type: e for e in entries})

    async def add(self, catalogue: Catalogue, at: datetime) -> bool:
        entries = json.dumps([MessageToDict(catalogue_entry_to_proto(e)) for e in catalogue.entries.values()])
        added = await self._conn.fetchval(
            "INSERT INTO catalogue_versions (version, entries, created_at) VALUES ($1, $2::jsonb, $3)"
            " ON CONFLICT (version) DO NOTHING RETURNING true",
            catalogue.version,
            entries,
            at,
        )
        return bool(added)


class PgOrdersUnitOfWork(PgSealingUnitOfWork):
    orders: PgOrderRepository
    offers: PgOfferRepository
    contracts: PgContractRepository
    catalogue: PgCatalogueRepository
    eligibility: PgEligibilityRepository

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.orders = PgOrderRepository(conn, self._keyring)
        self.offers = PgOfferRepository(conn)
        self.contracts = PgContractRepository(conn, self._keyring)
        self.catalogue = PgCatalogueRepository(conn)
        self.eligibility = PgEligibilityRepository(conn)

    async def commit(self) -> None:
        await self.eligibility.flush()  # writes still held are sent, never dropped by a commit
        await super().commit()
