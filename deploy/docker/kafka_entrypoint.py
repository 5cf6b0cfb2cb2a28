"""Entry point of the test stack's Kafka image: formats a fresh single-node KRaft log and runs the
broker on KAFKA_PORT (controller on KAFKA_CONTROLLER_PORT), as deploy/local/stack.py does locally."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from deploy.local.stack import KAFKA_LIBS, _cluster_id, _java, _server_properties

HOME = Path("/tmp/kafka")


def main() -> None:
    cluster_id = _cluster_id()
    kafka = {
        "port": int(os.environ["KAFKA_PORT"]),
        "controller_port": int(os.environ["KAFKA_CONTROLLER_PORT"]),
        "cluster_id": cluster_id,
    }
    HOME.mkdir(parents=True, exist_ok=True)
    props = HOME / "server.properties"
    props.write_text(_server_properties(HOME / "data", kafka))
    java = _java(KAFKA_LIBS)
    storage_format = ["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id]
    subprocess.run([*java, *storage_format, "-c", str(props)], check=True, stdout=subprocess.DEVNULL)
    os.execvp(java[0], [*java, "kafka.Kafka", str(props)])


if __name__ == "__main__":
    main()
