"""Batched sending keeps Kafka's key → partition mapping."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner

from libs.common.kafka import partition_for


@pytest.mark.parametrize("count", [1, 3, 7, 12])
def test_a_key_goes_where_kafkas_default_partitioner_sends_it(count: int) -> None:
    partitions = list(range(count))
    keys = [f"orders/{uuid.uuid4()}".encode() for _ in range(300)] + [b"", b"x", "工人".encode()]

    assert [partition_for(k, partitions) for k in keys] == [
        DefaultPartitioner()(k, partitions, partitions) for k in keys
    ]


def test_a_key_asked_again_goes_to_the_same_partition() -> None:
    assert partition_for(b"orders/1", [0, 1, 2]) == partition_for(b"orders/1", [0, 1, 2])
