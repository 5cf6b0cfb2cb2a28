from services.gateway.sealed import Sealer


def test_a_sealed_value_opens_only_for_its_cookie_under_its_key_before_it_expires() -> None:
    sealer = Sealer(b"a" * 32)
    sealed = sealer.seal("jz_session", {"k": "secret"}, ttl_s=60)
    assert sealer.open("jz_session", sealed) == {"k": "secret"}
    assert "secret" not in sealed
    assert sealer.open("jz_order", sealed) is None
    assert Sealer(b"b" * 32).open("jz_session", sealed) is None
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert sealer.open("jz_session", flipped) is None
    assert sealer.open("jz_session", "not base64 at all!") is None
    assert sealer.open("jz_session", None) is None


def test_an_expired_value_does_not_open() -> None:
    sealer = Sealer(b"a" * 32)
    sealed = sealer.seal("jz_session", {"k": "v"}, ttl_s=-1)
    assert sealer.open("jz_session", sealed) is None
