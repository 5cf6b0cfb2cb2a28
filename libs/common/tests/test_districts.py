from libs.common.districts import BEIJING_DISTRICTS


def test_beijing_has_sixteen_districts_by_their_gb_t_2260_codes() -> None:
    assert len(BEIJING_DISTRICTS) == 16
    assert all(code.startswith("1101") and len(code) == 6 for code in BEIJING_DISTRICTS)
    assert BEIJING_DISTRICTS["110105"] == "朝阳"
    assert len(set(BEIJING_DISTRICTS.values())) == 16
