"""Personal data: sealing with key rotation, lookup hashes, masks, keys from settings, log masking."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.common.logs import JsonFormatter, PersonalDataFilter, configure_logging
from libs.common.pii import Keyring, PersonalDataError, mask_id_number, mask_in_text, mask_name, mask_phone
from libs.common.settings import ServiceSettings

ID_NUMBER = "11010519491231002X"
ID_FIELD = "workers.worker.id_number"
KEY_1, KEY_2, HMAC_KEY = (bytes([n]) * 32 for n in (1, 2, 3))


def _keyring(active: str = "k1", hmac_key: bytes = HMAC_KEY, **keys: bytes) -> Keyring:
    return Keyring(keys or {"k1": KEY_1}, active, hmac_key)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_a_sealed_value_opens_to_itself_and_does_not_contain_it() -> None:
    keyring = _keyring()

    sealed = keyring.seal(ID_NUMBER, ID_FIELD)

    assert ID_NUMBER.encode() not in sealed
    assert keyring.open(sealed, ID_FIELD) == ID_NUMBER


def test_format_names_version_and_key_id_and_each_seal_has_its_own_nonce() -> None:
    keyring = _keyring()

    first, second = keyring.seal("张三", "f"), keyring.seal("张三", "f")

    assert first[:4] == bytes([1, 2]) + b"k1"
    assert first[4:16] != second[4:16]
    assert len(first) == 4 + 12 + len("张三".encode()) + 16


def test_after_rotation_old_values_open_and_new_ones_use_the_new_key() -> None:
    before = _keyring("k1", k1=KEY_1)
    old = before.seal(ID_NUMBER, ID_FIELD)
    after = _keyring("k2", k1=KEY_1, k2=KEY_2)

    new = after.seal(ID_NUMBER, ID_FIELD)

    assert after.active_key_id == "k2"
    assert after.open(old, ID_FIELD) == ID_NUMBER
    assert new[2:4] == b"k2"
    assert after.open(new, ID_FIELD) == ID_NUMBER


def test_a_value_sealed_with_a_key_the_keyring_lacks_names_the_key() -> None:
    sealed = _keyring("k2", k2=KEY_2).seal(ID_NUMBER, ID_FIELD)

    with pytest.raises(PersonalDataError, match="'k2'") as caught:
        _keyring("k1", k1=KEY_1).open(sealed, ID_FIELD)
    assert ID_NUMBER not in str(caught.value)


@pytest.mark.parametrize("position", [0, 1, 2, 5, 20, -1])
def test_any_altered_byte_is_refused(position: int) -> None:
    keyring = _keyring()
    sealed = bytearray(keyring.seal(ID_NUMBER, ID_FIELD))
    sealed[position] ^= 0x01

    with pytest.raises(PersonalDataError) as caught:
        keyring.open(bytes(sealed), ID_FIELD)
    assert ID_NUMBER not in str(caught.value)


def test_a_tampered_ciphertext_fails_authentication() -> None:
    keyring = _keyring()
    sealed = bytearray(keyring.seal(ID_NUMBER, ID_FIELD))
    sealed[-1] ^= 0x80

    with pytest.raises(PersonalDataError, match="authentication failed"):
        keyring.open(bytes(sealed), ID_FIELD)


def test_a_value_copied_into_another_field_does_not_open() -> None:
    keyring = _keyring()
    sealed = keyring.seal(ID_NUMBER, ID_FIELD)

    with pytest.raises(PersonalDataError, match="authentication failed"):
        keyring.open(sealed, "workers.worker.phone")


@pytest.mark.parametrize("sealed", [b"", b"\x01", b"\x02\x02k1" + bytes(40), b"\x01\x02k1" + bytes(20)])
def test_truncated_or_unknown_format_is_refused(sealed: bytes) -> None:
    with pytest.raises(PersonalDataError):
        _keyring().open(sealed, ID_FIELD)


def test_lookup_hash_is_stable_and_normalised() -> None:
    keyring = _keyring()

    digest = keyring.lookup_hash(ID_NUMBER, ID_FIELD)

    assert len(digest) == 32
    assert _keyring().lookup_hash(ID_NUMBER, ID_FIELD) == digest
    assert keyring.lookup_hash(f"  {ID_NUMBER.lower()} ", ID_FIELD) == digest
    assert keyring.lookup_hash("１１０１０５１９４９１２３１００２ｘ", ID_FIELD) == digest  # full-width input


def test_lookup_hash_differs_per_purpose_value_and_key() -> None:
    digest = _keyring().lookup_hash(ID_NUMBER, ID_FIELD)

    assert _keyring().lookup_hash(ID_NUMBER, "workers.worker.phone") != digest
    assert _keyring().lookup_hash("110105194912310021", ID_FIELD) != digest
    assert _keyring(hmac_key=bytes([4]) * 32).lookup_hash(ID_NUMBER, ID_FIELD) != digest


@pytest.mark.parametrize(
    ("keys", "active", "hmac_key", "complaint"),
    [
        ({"k1": KEY_1}, "k9", HMAC_KEY, "'k9' is not among"),
        ({"k1": bytes(16)}, "k1", HMAC_KEY, "32 bytes"),
        ({"bad id": KEY_1}, "bad id", HMAC_KEY, "must match"),
        ({"k1": KEY_1}, "k1", bytes(31), "at least 32"),
    ],
)
def test_an_invalid_keyring_is_refused(
    keys: dict[str, bytes], active: str, hmac_key: bytes, complaint: str
) -> None:
    with pytest.raises(PersonalDataError, match=complaint):
        Keyring(keys, active, hmac_key)


def test_keyring_repr_names_key_ids_only() -> None:
    assert repr(_keyring()) == "Keyring(key_ids=['k1'], active_key_id='k1')"


@pytest.mark.parametrize(
    ("masked", "expected"),
    [
        (mask_id_number("11010519491231002X"), "110***********002X"),
        (mask_id_number(" 110105194912310021 "), "110***********0021"),
        (mask_id_number("12345678"), "123*5678"),
        (mask_id_number("1234567"), "*******"),
        (mask_id_number(""), ""),
        (mask_phone("13800138000"), "138****8000"),
        (mask_phone("+8613800138000"), "+86*******8000"),
        (mask_phone("1380"), "****"),
        (mask_name("张三"), "张*"),
        (mask_name("欧阳娜娜"), "欧***"),
        (mask_name("欧阳修"), "欧**"),
        (mask_name(" 张 "), "*"),
        (mask_name(""), ""),
    ],
)
def test_masks(masked: str, expected: str) -> None:
    assert masked == expected


def test_mask_in_text_masks_id_and_mobile_shapes_only() -> None:
    text = f"id {ID_NUMBER}, tel 13800138000; order 123456789012345678901, amount 19912345678000"

    assert mask_in_text(text) == (
        "id 110***********002X, tel 138****8000; order 123456789012345678901, amount 19912345678000"
    )


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JZ_PII_KEYS", json.dumps({"k1": _b64(KEY_1), "k2": _b64(KEY_2)}))
    monkeypatch.setenv("JZ_PII_ACTIVE_KEY", "k2")
    monkeypatch.setenv("JZ_PII_HMAC_KEY", _b64(HMAC_KEY))

    keyring = Keyring.from_settings(ServiceSettings())

    assert keyring.active_key_id == "k2"
    assert keyring.open(_keyring().seal("张三", "f"), "f") == "张三"
    assert keyring.lookup_hash("x", "p") == _keyring().lookup_hash("x", "p")


def test_a_keys_file_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pii-keys.json"
    secret.write_text(
        json.dumps({"keys": {"k2": _b64(KEY_2)}, "active_key": "k2", "hmac_key": _b64(HMAC_KEY)})
    )
    monkeypatch.setenv("JZ_PII_KEYS", json.dumps({"k1": _b64(KEY_1)}))
    monkeypatch.setenv("JZ_PII_ACTIVE_KEY", "k1")
    monkeypatch.setenv("JZ_PII_KEYS_FILE", str(secret))

    keyring = Keyring.from_settings(ServiceSettings())

    assert keyring.active_key_id == "k2"
    assert keyring.open(_keyring("k2", k2=KEY_2).seal("张三", "f"), "f") == "张三"


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({}, "not configured"),
        ({"pii_keys": "{", "pii_active_key": "k1", "pii_hmac_key": _b64(HMAC_KEY)}, "not valid JSON"),
        ({"pii_keys": '{"k1": "***"}', "pii_active_key": "k1", "pii_hmac_key": _b64(HMAC_KEY)}, "base64"),
        ({"pii_keys": "[]", "pii_active_key": "k1", "pii_hmac_key": _b64(HMAC_KEY)}, "need keys"),
        ({"pii_keys_file": "/nonexistent/pii.json"}, "cannot read"),
    ],
)
def test_a_missing_or_invalid_configuration_is_a_clear_error(
    settings: dict[str, str], complaint: str
) -> None:
    with pytest.raises(PersonalDataError, match=complaint):
        Keyring.from_settings(ServiceSettings.model_validate(settings))


def test_settings_never_show_the_secrets() -> None:
    settings = ServiceSettings(
        pii_keys=json.dumps({"k1": _b64(KEY_1)}),
        pii_active_key="k1",
        pii_hmac_key=_b64(HMAC_KEY),
    )

    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert _b64(KEY_1) not in shown
    assert _b64(HMAC_KEY) not in shown
    assert "k1" in shown  # the key id is not a secret


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(PersonalDataFilter())
    logger = logging.getLogger("test_pii")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)


def test_the_log_filter_masks_ids_and_phones_in_messages_and_fields(captured: io.StringIO) -> None:
    fields = {"who": ID_NUMBER, "tel": 13800138000, "nested": {"tels": ["13912345678"]}, "n": 7}

    logging.getLogger("test_pii").info(
        "worker %s calls from %s", ID_NUMBER, "13800138000", extra={"fields": fields}
    )

    entry = json.loads(captured.getvalue())
    assert entry["msg"] == "worker 110***********002X calls from 138****8000"
    assert entry["who"] == "110***********002X"
    assert entry["tel"] == "138****8000"
    assert entry["nested"] == {"tels": ["139****5678"]}
    assert entry["n"] == 7
    assert ID_NUMBER not in captured.getvalue()


def test_the_log_filter_leaves_trace_ids_whole_and_masks_a_phone_under_their_key(
    captured: io.StringIO,
) -> None:
    trace_id = "27918bb16447422899e260802e3e695e"  # "16447422899" is shaped like a mobile number
    fields = {"trace_id": trace_id, "span_id": "16447422899e2608", "event_id": trace_id}
    logging.getLogger("test_pii").info("traced", extra={"fields": fields})
    logging.getLogger("test_pii").info("not a trace", extra={"fields": {"trace_id": "13800138000"}})

    traced, other = (json.loads(line) for line in captured.getvalue().splitlines())
    assert (traced["trace_id"], traced["span_id"]) == (trace_id, "16447422899e2608")
    assert traced["event_id"] == "27918bb164****2899e260802e3e695e"  # only trace and span ids are exempt
    assert other["trace_id"] == "138****8000"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_configure_logging_installs_the_filter(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test")

    logging.getLogger("test_pii.configured").warning("call 13800138000")

    assert json.loads(capsys.readouterr().out)["msg"] == "call 138****8000"
