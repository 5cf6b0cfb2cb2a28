"""Batched sending keeps Kafka's key → partition mapping."""

from __future__ import annotations

import ssl
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import SecretStr

from libs.common.kafka import client_options, partition_for
from libs.common.settings import ServiceSettings


@pytest.mark.parametrize("count", [1, 3, 7, 12])
def test_a_key_goes_where_kafkas_default_partitioner_sends_it(count: int) -> None:
    partitions = list(range(count))
    keys = [f"orders/{uuid.uuid4()}".encode() for _ in range(300)] + [b"", b"x", "工人".encode()]

    assert [partition_for(k, partitions) for k in keys] == [
        DefaultPartitioner()(k, partitions, partitions) for k in keys
    ]


def test_a_key_asked_again_goes_to_the_same_partition() -> None:
    assert partition_for(b"orders/1", [0, 1, 2]) == partition_for(b"orders/1", [0, 1, 2])


def test_clients_log_in_only_when_a_security_protocol_asks_for_it() -> None:
    local = client_options(ServiceSettings(kafka_bootstrap="k:9092"))
    assert local == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}

    scram = ServiceSettings(
        kafka_bootstrap="k:9092",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="orders",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    assert client_options(scram) == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "orders",
        "sasl_plain_password": "s3cret",
    }


def test_sasl_over_tls_verifies_the_brokers_certificates() -> None:
    settings = ServiceSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="orders")
    options = client_options(settings)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
