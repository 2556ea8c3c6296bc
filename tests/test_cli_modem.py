"""`tsunagu sim`, `tsunagu sim-ctl` and `tsunagu modem` as a person runs them: separate
processes talking over a real pty and the control socket."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from modem import pdu
from tests.helpers import network_log, wait_for

TSUNAGU = [sys.executable, "-m", "appliance.cli"]


def tsunagu(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*TSUNAGU, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def sim_process(tmp_path):
    link, log = tmp_path / "modem0", tmp_path / "net.jsonl"
    process = subprocess.Popen([*TSUNAGU, "sim", "--link", str(link), "--log", str(log)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: link.exists() and (tmp_path / "modem0.ctl").exists(),
                 message="the simulated modem to start")
        yield link, log
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_modem_status_json_describes_the_simulated_modem(sim_process):
    link, _ = sim_process
    result = tsunagu("modem", "status", "--port", str(link), "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["identity"]["manufacturer"] == "Quectel"
    assert status["sim"] == "ready" and status["registration"]["registered"]
    assert status["signal"]["bars"] == 4 and status["operator"] == "NTT DOCOMO"


def test_modem_send_normalises_the_number_and_the_network_gets_the_text(sim_process):
    link, log = sim_process
    text = "停電のため本日の透析は中止です。𠮷田様、ご自宅で待機してください。" * 3
    result = tsunagu("modem", "send", "--port", str(link), "０９０-１２３４-５６７８", text)
    assert result.returncode == 0, result.stderr
    assert "+819012345678" in result.stdout
    assert f"{pdu.count(text).parts} part(s)" in result.stdout
    messages = network_log(log, until=lambda events: any(
        e["event"] == "message" for e in events))
    whole = [m for m in messages if m["event"] == "message"]
    assert whole[-1]["to"] == "+819012345678" and whole[-1]["text"] == text


@pytest.mark.parametrize("number, text, complaint", [
    ("03-1234-5678", "テスト", "NUMBER"),       # a landline cannot receive SMS
    ("090-1234-5678", "あ" * 671, "TEXT"),     # 11 parts
    ("090-1234-5678", "   ", "TEXT"),
])
def test_modem_send_refuses_bad_input_before_touching_the_port(tmp_path, number, text,
                                                                complaint):
    result = tsunagu("modem", "send", "--port", str(tmp_path / "no-such-port"), number, text)
    assert result.returncode == 2
    assert complaint in result.stderr and "no-such-port" not in result.stderr


def test_modem_status_of_a_missing_port_says_so(tmp_path):
    result = tsunagu("modem", "status", "--port", str(tmp_path / "absent"))
    assert result.returncode == 1 and "cannot open" in result.stderr


def test_sim_ctl_injects_a_reply_and_sets_faults(sim_process):
    link, log = sim_process
    assert tsunagu("sim-ctl", "--link", str(link), "inject-sms", "090-1234-5678",
                   "１ 行けます").returncode == 0
    inbound = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    assert inbound[-1] == {**inbound[-1], "event": "inbound", "from": "+819012345678",
                           "text": "１ 行けます"}
    assert tsunagu("sim-ctl", "--link", str(link), "set-signal", "3").returncode == 0
    assert tsunagu("sim-ctl", "--link", str(link), "fail-sends", "331", "--count",
                   "1").returncode == 0
    status = json.loads(tsunagu("sim-ctl", "--link", str(link), "status").stdout)
    assert status["csq"] == 3 and status["faults"][0]["code"] == 331
    refused = tsunagu("sim-ctl", "--link", str(link), "set-signal", "40")
    assert refused.returncode == 1 and "0-31 or 99" in refused.stderr


def test_sim_ctl_without_a_running_modem_says_none_answers(tmp_path):
    result = tsunagu("sim-ctl", "--link", str(tmp_path / "nothing"), "status")
    assert result.returncode == 1 and "no simulated modem answers" in result.stderr
