import base64

import faust
from pydantic import SecretStr

from services.regulator.app import RegulatorSettings, broker_credentials, buffer_limits

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


def test_the_worker_bounds_what_it_buffers_while_catching_up() -> None:
    settings = RegulatorSettings(pseudonym_key=SecretStr(KEY))
    conf = faust.App("regulator-test", **buffer_limits(settings)).conf
    assert conf.stream_buffer_maxsize == settings.stream_buffer == 1024
    assert conf.consumer_max_fetch_size == settings.fetch_bytes == 256 * 1024
    assert conf.broker_max_poll_records == settings.poll_records == 500
