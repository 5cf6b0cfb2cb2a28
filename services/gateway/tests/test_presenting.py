from jiazheng.regulator.v1 import regulator_pb2
from services.gateway.presenting import dashboard_series


def day(date: str, district: str, **counts: int) -> regulator_pb2.DistrictDay:
    indicators = regulator_pb2.DistrictDay(date=date, district_code=district)
    for name, count in counts.items():
        setattr(indicators, name, count)
    return indicators


def test_counts_add_up_over_districts_and_shares_are_of_the_totals() -> None:
    days = [
        day(
            "2026-11-02",
            "110105",
            orders_placed=30,
            complaints_filed=3,
            orders_dispatched=10,
            dispatched_green=9,
        ),
        day(
            "2026-11-02",
            "110108",
            orders_placed=10,
            complaints_filed=1,
            orders_dispatched=10,
            dispatched_green=10,
        ),
        day("2026-11-01", "110105", orders_placed=0, orders_insured=3, orders_uninsured=1),
    ]
    series = dashboard_series(days)
    assert series["dates"] == ["2026-11-01", "2026-11-02"]
    assert series["orders_placed"] == [0, 40]
    assert series["complaints_per_thousand"] == [None, 100.0]
    assert series["green_share"] == [None, 95.0]
    assert series["insured_share"] == [75.0, None]
    assert [d["name"] for d in series["districts"]] == ["朝阳", "海淀"]


def test_medians_and_credit_levels_stay_per_district() -> None:
    first = day("2026-11-02", "110105", median_first_response_seconds=7200)
    first.credit_levels.add(level="A", workers=4)
    second = day("2026-11-02", "110108")
    second.credit_levels.add(level="D", workers=1)
    series = dashboard_series([first, second])
    assert series["first_response_hours"] == {"朝阳": [2.0], "海淀": [None]}
    assert series["credit_levels"] == {
        "districts": ["朝阳", "海淀"],
        "levels": {"A": [4, 0], "B": [0, 0], "C": [0, 0], "D": [0, 1]},
    }


def test_no_days_is_an_empty_dashboard() -> None:
    series = dashboard_series([])
    assert series["dates"] == []
    assert series["credit_levels"]["districts"] == []
