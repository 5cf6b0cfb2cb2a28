"""How the CLI spells enum values, both ways, and shows a message to a person."""

from __future__ import annotations

import pytest
import typer

from cli.rpc import console, enum_number, enum_word, enum_words, show
from jiazheng.workers.v1 import workers_pb2 as pb


@pytest.mark.parametrize("word", ["family_carer", "family-carer", "FAMILY_CARER", " Family-Carer "])
def test_a_value_is_read_however_a_person_spells_it(word: str) -> None:
    assert enum_number(pb.Trade.DESCRIPTOR, word) == pb.TRADE_FAMILY_CARER


@pytest.mark.parametrize("word", ["unspecified", "gardener", ""])
def test_unspecified_and_unknown_values_are_bad_parameters_listing_the_choices(word: str) -> None:
    with pytest.raises(typer.BadParameter, match="maternity_nurse, housekeeper, family_carer"):
        enum_number(pb.Trade.DESCRIPTOR, word)


def test_values_are_written_without_their_enum_prefix() -> None:
    assert enum_word(pb.SkillLevel.DESCRIPTOR, pb.SKILL_LEVEL_4) == "4"
    assert enum_words(pb.CardColour.DESCRIPTOR) == ["green", "yellow", "red"]


def test_a_message_is_shown_with_enum_words_and_nested_fields_flattened() -> None:
    reply = pb.VerifyCardResponse(
        verdict=pb.TOKEN_VERDICT_VALID,
        colour=pb.CARD_COLOUR_YELLOW,
        reasons=["health_check_expired", "uninsured"],
        worker=pb.PublicWorkerView(masked_full_name="王*", trades=[pb.TRADE_HOUSEKEEPER]),
    )
    with console.capture() as captured:
        show(reply, as_json_text=False)
    lines = [line.split() for line in captured.get().splitlines()]
    assert ["verdict", "valid"] in lines
    assert ["colour", "yellow"] in lines
    assert ["reasons", "health_check_expired,", "uninsured"] in lines
    assert ["worker.masked_full_name", "王*"] in lines
    assert ["worker.trades", "housekeeper"] in lines
