import base64

import faust
from pydantic import SecretStr

from services.regulator.app import RegulatorSettings, broker_credentials

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
