import uuid
from datetime import date

import pytest

from libs.common.errors import InvalidArgument
from libs.common.protoutil import calendar_date, request_uuid


def test_a_calendar_date_is_read_only_as_yyyy_mm_dd() -> None:
    assert calendar_date("2028-02-29", "start_date") == date(2028, 2, 29)
    for text in ("20240101", "2024-W01-1", "2024-1-01", "2027-02-29", "2024-01-01 ", "", "２０２４-01-01"):
        with pytest.raises(InvalidArgument) as refused:
            calendar_date(text, "start_date")
        assert refused.value.field == "start_date"


def test_a_request_uuid_names_its_field() -> None:
    made = uuid.uuid4()
    assert request_uuid(str(made)) == made
    with pytest.raises(InvalidArgument) as refused:
        request_uuid("not-a-uuid", "page_token")
    assert refused.value.field == "page_token"
