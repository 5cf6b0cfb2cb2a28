"""Keep one service process running, as an orchestrator would: restart it whenever it exits.

Run as ``python -m deploy.local.supervisor --name NAME --state FILE -- COMMAND...``. The command
inherits this process's environment (the service's fixed gRPC and metrics ports among it) and its
stdout and stderr (the service's log), so every restart answers on the same ports and appends to
the same log. Restarts follow any exit, clean or not, after a back-off that doubles from 0.5 s
to 15 s while the service keeps dying soon after start, and starts again from 0.5 s once it has
run for 30 s. The state file (JSON, replaced atomically) says which child runs now and how many
restarts there were. SIGTERM or SIGINT stops the child (SIGTERM, then SIGKILL after ``--grace``
seconds) and then the supervisor. Should the supervisor itself be killed, the kernel sends the
child SIGTERM (``PR_SET_PDEATHSIG``), so no service outlives its supervisor.

Standard library only: it runs beside every service and should stay small.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

PR_SET_PDEATHSIG = 1
POLL_S = 0.2


@dataclass(frozen=True)
class Backoff:
    """How long to wait before starting a service again."""

    first_s: float = 0.5
    cap_s: float = 15.0
    healthy_after_s: float = 30.0

    def quick_exits(self, previous: int, ran_s: float) -> int:
        """Exits in a row that came soon after a start, counting the one after ``ran_s`` seconds."""
        return 1 if ran_s >= self.healthy_after_s else previous + 1

    def delay_s(self, quick_exits: int) -> float:
        exponent = min(max(quick_exits - 1, 0), 32)  # past the cap long before; keeps the float finite
        return min(self.cap_s, self.first_s * 2.0**exponent)


@dataclass(frozen=True)
class SupervisorState:
    """What the state file holds."""

    name: str
    supervisor_pid: int
    child_pid: int | None  # None between an exit and the next start
    restarts: int
    last_exit: int | None  # the last child's return code; negative: killed by that signal

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> SupervisorState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _die_with_parent(parent: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)

    def in_child() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


class Supervisor:
    def __init__(
        self, name: str, command: Sequence[str], state: Path, grace_s: float, backoff: Backoff
    ) -> None:
        self.name = name
        self.command = list(command)
        self.state = state
        self.grace_s = grace_s
        self.backoff = backoff
        self.stopping = False
        self.restarts = 0
        self.last_exit: int | None = None

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        self.state.parent.mkdir(parents=True, exist_ok=True)
        quick_exits = 0
        while not self.stopping:
            started = time.monotonic()
            child = subprocess.Popen(self.command, preexec_fn=_die_with_parent(os.getpid()))
            self._save(child.pid)
            code = self._wait(child)
            self.last_exit = self._stop(child) if code is None else code
            self._save(None)
            if code is None:
                break
            quick_exits = self.backoff.quick_exits(quick_exits, time.monotonic() - started)
            delay = self.backoff.delay_s(quick_exits)
            self._log("WARNING", "service exited; restarting", exit_code=code, restart_in_s=delay)
            if self._sleep(delay):
                self.restarts += 1
        return 0

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _wait(self, child: subprocess.Popen[bytes]) -> int | None:
        """The child's return code, or None if the supervisor was asked to stop first."""
        while not self.stopping:
            code = child.poll()
            if code is not None:
                return code
            time.sleep(POLL_S)
        return None

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop; True if the whole time passed."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(POLL_S, deadline - time.monotonic()))
        return not self.stopping

    def _stop(self, child: subprocess.Popen[bytes]) -> int:
        child.terminate()
        try:
            code = child.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            self._log("WARNING", "service ignored SIGTERM; killing it", grace_s=self.grace_s)
            child.kill()
            code = child.wait()
        self._log("INFO", "service stopped", exit_code=code)
        return code

    def _save(self, child_pid: int | None) -> None:
        SupervisorState(self.name, os.getpid(), child_pid, self.restarts, self.last_exit).write(self.state)

    def _log(self, level: str, msg: str, **fields: object) -> None:
        """A JSON line like the service's own, into the same log."""
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "service": self.name,
            "logger": "supervisor",
            "msg": msg,
            **fields,
        }
        print(json.dumps(entry), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.supervisor", description=__doc__)
    parser.add_argument("--name", required=True, help="the service's name, for the log and the state")
    parser.add_argument("--state", required=True, type=Path, help="JSON file: child pid, restarts")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the service's command line")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise")
    return Supervisor(args.name, command, args.state, args.grace, Backoff()).run()


if __name__ == "__main__":
    sys.exit(main())
