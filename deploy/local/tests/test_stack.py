import subprocess
import sys
import time
from pathlib import Path

from deploy.local.stack import LISTEN_PORTS_FROM, free_port, pid_alive

# The main thread ends (pthread_exit) while another thread keeps the process, its files and its
# sockets: the leader shows as a zombie until that thread is done.
LEADER_EXITS_FIRST = """
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(1.5,)).start()
print("ready", flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]


def test_a_process_whose_leader_exited_first_is_alive_until_its_last_thread_ends() -> None:
    proc = subprocess.Popen([sys.executable, "-c", LEADER_EXITS_FIRST], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 1
    while _state(proc.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    leader_was_zombie = _state(proc.pid) == "Z"
    alive_then = pid_alive(proc.pid)
    proc.wait(timeout=10)
    assert leader_was_zombie
    assert alive_then
    assert not pid_alive(proc.pid)


def test_a_finished_but_unreaped_process_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while pid_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(proc.pid) == "Z"
    assert not pid_alive(proc.pid)
    proc.wait()


def test_ports_picked_before_any_server_binds_are_all_different() -> None:
    """As when a stack's five services and their metrics ports are picked before one binds."""
    picked = [free_port() for _ in range(2000)]
    assert len(set(picked)) == len(picked)
    assert all(LISTEN_PORTS_FROM <= port < 65536 for port in picked)
