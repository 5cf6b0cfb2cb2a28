from cli.orders import in_yuan
from jiazheng.orders.v1 import orders_pb2 as o


def test_a_contracts_cancellation_clause_reads_as_fees_and_its_amounts_in_yuan() -> None:
    fees = [o.CancellationFee(notice_hours=2, percent=20), o.CancellationFee(notice_hours=24, percent=10)]
    terms = o.ContractTerms(
        wage_fen=19_200,
        cancellation=o.CancellationTerms(consumer=fees, worker=fees[:1]),
    )
    rows = dict(in_yuan(o.Contract(name="orders/x/contracts/y", terms=terms)))
    assert rows == {
        "name": "orders/x/contracts/y",
        "terms.wage": "¥192.00",
        "terms.cancellation.consumer": "10 % under 24 h' notice; 20 % under 2 h' notice",
        "terms.cancellation.worker": "20 % under 2 h' notice",
    }
