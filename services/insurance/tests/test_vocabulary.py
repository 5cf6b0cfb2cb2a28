"""The domain's enums carry the protos' numbers, so the wire and the domain never drift apart."""

from __future__ import annotations

from enum import IntEnum

import pytest
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from jiazheng.insurance.v1 import cover_pb2
from jiazheng.type.v1 import service_type_pb2
from services.insurance.domain.claims import Decision
from services.insurance.domain.cover import CoverKind, Exclusion
from services.insurance.domain.vocabulary import JOB_CLASS, ServiceType, job_class_needed


@pytest.mark.parametrize(
    ("domain_enum", "proto_enum", "prefix"),
    [
        (ServiceType, service_type_pb2.ServiceType, "SERVICE_TYPE_"),
        (CoverKind, cover_pb2.CoverKind, "COVER_KIND_"),
        (Exclusion, cover_pb2.Exclusion, "EXCLUSION_"),
        (Decision, cover_pb2.ClaimDecision, "CLAIM_DECISION_"),
    ],
)
def test_domain_enum_numbers_equal_the_protos(
    domain_enum: type[IntEnum], proto_enum: EnumTypeWrapper, prefix: str
) -> None:
    on_the_wire = {name.removeprefix(prefix): number for name, number in proto_enum.items() if number}
    assert {member.name: member.value for member in domain_enum} == on_the_wire


def test_every_service_type_has_a_job_class() -> None:
    assert set(JOB_CLASS) == set(ServiceType)
    assert set(JOB_CLASS.values()) == {1, 2, 3}


def test_the_job_class_needed_is_the_highest_of_the_service_types() -> None:
    assert job_class_needed([ServiceType.MATERNITY, ServiceType.CLEANING]) == 2
    assert job_class_needed([ServiceType.MATERNITY, ServiceType.APPLIANCE_CLEANING]) == 3
    assert job_class_needed([]) == 1
