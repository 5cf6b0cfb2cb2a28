"""Identity documents checked by their check characters: resident ID numbers (GB 11643),
unified social credit codes (GB 32100), mainland mobile numbers, and Beijing's district codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from libs.common.districts import BEIJING_DISTRICTS
from libs.common.errors import InvalidArgument

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(f"^[{_USCC_ALPHABET}]{{18}}$")

_MOBILE_SHAPE = re.compile(r"^1[3-9]\d{9}$")


@dataclass(frozen=True)
class ResidentId:
    """An 18-character resident identity card number (居民身份证号码, GB 11643)."""

    number: str
    birth_date: date

    def age_on(self, day: date) -> int:
        before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - before_birthday


def resident_id(raw: str, field: str = "id_number") -> ResidentId:
    """``raw`` as a checked resident ID number; a lower-case ``x`` check character is accepted."""
    number = raw.strip().upper()
    if not _ID_SHAPE.match(number):
        raise InvalidArgument(field, "must be 17 digits followed by a digit or X")
    if id_check_character(number[:17]) != number[17]:
        raise InvalidArgument(field, "check character does not match (GB 11643)")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidArgument(field, "digits 7-14 are not a real birth date") from None
    return ResidentId(number, born)


def id_check_character(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def social_credit_code(raw: str, field: str = "social_credit_code") -> str:
    """``raw`` as a checked unified social credit code (统一社会信用代码, GB 32100)."""
    code = raw.strip().upper()
    if not _USCC_SHAPE.match(code):
        raise InvalidArgument(field, "must be 18 characters from 0-9 and A-Y without I, O, S, V, Z")
    if uscc_check_character(code[:17]) != code[17]:
        raise InvalidArgument(field, "check character does not match (GB 32100)")
    return code


def uscc_check_character(first17: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def mobile_number(raw: str, field: str = "mobile") -> str:
    """A mainland mobile number: 1, then 3-9, then nine digits."""
    number = raw.strip()
    if not _MOBILE_SHAPE.match(number):
        raise InvalidArgument(field, "must be a mainland mobile number (11 digits starting 13-19)")
    return number


def district(code: str, field: str = "district_code") -> str:
    if code not in BEIJING_DISTRICTS:
        raise InvalidArgument(field, "must be the GB/T 2260 code of one of Beijing's 16 districts")
    return code
