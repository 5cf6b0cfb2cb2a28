"""gRPC RegulatorService: the regulator topics as a resumable stream (the feed) and the indicators
per district and Beijing day; regulators and operators only (docs/regulators.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping
from datetime import date
from typing import Any

import grpc

from jiazheng.regulator.v1 import regulator_pb2 as pb
from libs.common.auth import Role
from libs.common.errors import InvalidArgument
from libs.common.kafka import client_options
from libs.common.settings import ServiceSettings
from services.regulator.api.convert import START, date_range, district_day_to_proto, subscribe_response
from services.regulator.domain.indicators import DistrictDay
from services.regulator.feed import FeedEvent, Positions, Ready, Start, decode_cursor, read_feed
from services.regulator.topics import INDICATORS_TOPIC, REGULATOR_TOPICS

SERVICE = pb.DESCRIPTOR.services_by_name["RegulatorService"]
_WATCHERS = frozenset({Role.REGULATOR, Role.OPERATOR})
POLICY = {f"/{SERVICE.full_name}/{method.name}": _WATCHERS for method in SERVICE.methods}
# The topics Subscribe streams by default: the events'. The indicators' is streamed only when asked
# for (a dashboard follows it to know when ListIndicators has new figures).
EVENT_TOPICS = tuple(sorted(REGULATOR_TOPICS.values()))
FEED_TOPICS = (*EVENT_TOPICS, INDICATORS_TOPIC)

Context = grpc.aio.ServicerContext[Any, Any]
IndicatorsQuery = Callable[[date, date, frozenset[str]], list[DistrictDay]]
Feed = Callable[
    [Mapping[str, Any], Collection[str], Positions | None, Start, Ready],
    AsyncIterator[tuple[FeedEvent, str]],
]


class RegulatorServicer:
    """``query`` answers the indicators of a date range and districts (empty: all of them);
    ``feed`` reads the regulator topics (Kafka's, by default)."""

    def __init__(self, settings: ServiceSettings, query: IndicatorsQuery, feed: Feed = read_feed) -> None:
        self._kafka = client_options(settings)
        self._query = query
        self._feed = feed

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Context
    ) -> AsyncIterator[pb.SubscribeResponse]:
        """The events from the cursor on (or the start position), each with the cursor after it,
        until the client goes (its call is cancelled, which closes the reader). The response's
        initial metadata is sent once the reader is positioned: a client of ``LATEST`` gets every
        event published after it received them."""
        topics = subscribed_topics(request.topics)
        resume = decode_cursor(request.cursor, topics) if request.cursor else None

        async def positioned() -> None:
            await context.send_initial_metadata(())

        feed = self._feed(self._kafka, topics, resume, START[request.start], positioned)
        async for event, cursor in feed:
            yield subscribe_response(event, cursor)

    async def ListIndicators(
        self, request: pb.ListIndicatorsRequest, context: Context
    ) -> pb.ListIndicatorsResponse:
        start, end = date_range(request)
        days = self._query(start, end, frozenset(request.district_codes))
        ordered = sorted(days, key=lambda d: (d.date, d.district_code))
        return pb.ListIndicatorsResponse(days=[district_day_to_proto(d) for d in ordered])


def subscribed_topics(asked: Collection[str]) -> tuple[str, ...]:
    """The topics asked for, or every events topic; one that is not a regulator topic is
    INVALID_ARGUMENT naming it."""
    for i, topic in enumerate(asked):
        if topic not in FEED_TOPICS:
            raise InvalidArgument(f"topics[{i}]", f"not a regulator topic; one of {', '.join(FEED_TOPICS)}")
    return tuple(dict.fromkeys(asked)) or EVENT_TOPICS
