"""`make run`'s path: the CLI brings up a stack of its own and all five services, runs the demo,
reports status, and stops everything it started."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.services import SERVICES
from deploy.local.stack import ROOT

CLI = Path(sys.executable).with_name("jiazheng")


@pytest.fixture
def cli_home() -> Iterator[Path]:
    home = ROOT / ".stack" / f"cli-test-{uuid.uuid4().hex[:8]}"
    yield home
    if home.exists():
        subprocess.run([str(CLI), "down"], env=env_for(home), check=False, capture_output=True)
        shutil.rmtree(home)


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "JZ_STACK_HOME": str(home), "COLUMNS": "200"}


def jiazheng(home: Path, *args: str) -> str:
    result = subprocess.run([str(CLI), *args], env=env_for(home), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_up_demo_status_down(cli_home: Path) -> None:
    started = jiazheng(cli_home, "up")
    assert all(name in started for name in SERVICES)

    demo = jiazheng(cli_home, "demo", "--worker-id", "cli-worker")
    assert "credit ledger entry: workers/cli-worker/ledgerEntries/" in demo

    status = jiazheng(cli_home, "status")
    health = {w[0]: w[-1] for w in map(str.split, status.splitlines()) if w and w[0] in SERVICES}
    assert health == dict.fromkeys(SERVICES, "SERVING")

    jiazheng(cli_home, "down")
    after = jiazheng(cli_home, "status")
    assert after.count('"running": false') == 2
    assert "SERVING" not in after
