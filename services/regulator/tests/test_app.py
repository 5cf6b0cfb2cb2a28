import base64
from typing import Any

import faust
from prometheus_client import REGISTRY
from pydantic import SecretStr

from services.regulator.app import RegulatorSettings, broker_credentials, make_app

KEY = base64.b64encode(bytes(32)).decode()


def test_faust_logs_in_to_kafka_as_the_services_clients_do() -> None:
    assert broker_credentials(RegulatorSettings(pseudonym_key=SecretStr(KEY))) is None

    settings = RegulatorSettings(
        pseudonym_key=SecretStr(KEY),
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="regulator",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("regulator", "s3cret")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_PLAINTEXT"


async def test_the_keys_each_table_holds_are_a_gauge_read_at_each_scrape() -> None:
    app = make_app(RegulatorSettings(pseudonym_key=SecretStr(KEY)))
    projected: Any = app.tables["projected-orders"]  # faust's CollectionT does not declare its store
    before = {t: REGISTRY.get_sample_value("jz_regulator_table_keys", {"table": t}) for t in app.tables}
    assert set(before.values()) == {0}

    projected.data["event-1"] = True
    projected.data["event-2"] = True

    assert REGISTRY.get_sample_value("jz_regulator_table_keys", {"table": "projected-orders"}) == 2
    assert REGISTRY.get_sample_value("jz_regulator_table_keys", {"table": "indicator-counted"}) == 0
