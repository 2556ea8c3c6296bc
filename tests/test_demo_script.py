"""./scripts/demo as a person runs it: it starts, serves the login page, and Ctrl-C stops
everything it started."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request

import pytest

from tests.daemon_harness import ROOT
from tests.helpers import free_port, wait_for


def _login_page_served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False  # not listening yet: wait_for asks again


def _text(path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is stopped: it only waits for its parent (gone) to be reaped by init.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _children_started_for(demo_dir) -> list[int]:
    """The sim, daemon and web processes of this demo, found by its directory."""
    out = subprocess.run(["pgrep", "-f", f"tsunagu .*{demo_dir}"], capture_output=True,
                         text=True).stdout
    return [int(pid) for pid in out.split()]


@pytest.mark.skipif(not os.path.exists("/proc"), reason="needs /proc to see the processes")
def test_ctrl_c_stops_the_sim_daemon_and_web_ui_the_demo_started(tmp_path):
    port = free_port()
    env = {**os.environ, "TSUNAGU_DEMO_DIR": str(tmp_path / "demo"),
           "TSUNAGU_DEMO_PORT": str(port)}
    output = tmp_path / "demo.out"
    with open(output, "w") as out:
        # As from a terminal: SIGINT not ignored, the script leading its own process group
        # (the terminal's foreground group, which Ctrl-C signals as a whole).
        demo = subprocess.Popen(["./scripts/demo"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for(lambda: _login_page_served(f"http://127.0.0.1:{port}/login"), timeout=180,
                 message="the demo's web UI")
        # In use, as a person finds it: the daemon has the simulated modem open.
        wait_for(lambda: "modem0: ready" in _text(tmp_path / "demo" / "daemon.log"),
                 timeout=60, message="the daemon to open the simulated modem")
        children = wait_for(lambda: len(_children_started_for(tmp_path)) == 3
                            and _children_started_for(tmp_path), message="sim, daemon, web")
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=60) == 0
        wait_for(lambda: not any(_running(pid) for pid in children), timeout=30,
                 message="every process the demo started to stop")
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        for pid in _children_started_for(tmp_path):
            os.kill(pid, signal.SIGKILL)
    said = output.read_text(encoding="utf-8")
    assert "==> stopping" in said and "a demo process exited" not in said
    # The login is the last thing the demo says before it waits, inside its closing box
    # (issue 11, finding 16: pip's warnings buried it).
    before_stop = said.split("==> stopping")[0].rstrip().splitlines()
    assert before_stop[-1].strip().startswith("=====")
    box = before_stop[before_stop.index(next(line for line in reversed(before_stop[:-1])
                                              if line.strip().startswith("====="))):]
    login = next(line for line in box if "Log in:" in line)
    assert re.search(r"Log in:\s+nurse / \S+", login), login
