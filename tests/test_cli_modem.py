"""`tsunagu sim`, `tsunagu sim-ctl` and `tsunagu modem` as a person runs them: separate
processes talking over a real pty and the control socket."""
from __future__ import annotations

import json
import os
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
    assert f"SMS {pdu.count(text).parts}通" in result.stdout
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


@pytest.mark.parametrize("language, labels", [
    ("ja", ("ポート", "ネットワーク登録", "電波", "通信事業者")),
    ("en", ("port", "registration", "signal", "operator")),
])
def test_modem_status_speaks_the_language_of_the_appliances_config(sim_process, tmp_path,
                                                                   language, labels):
    """The command opens the port itself and takes no --config; it still speaks what the
    appliance's configuration says (found as every command finds it)."""
    link, _ = sim_process
    config = tmp_path / "tsunagu.toml"
    config.write_text(f'database = "t.db"\nlanguage = "{language}"\n[[modem]]\nname = "m0"\n'
                      f'port = "{link}"\n', encoding="utf-8")
    result = subprocess.run([*TSUNAGU, "modem", "status", "--port", str(link)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TSUNAGU_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:1]] == [labels[0]]
    for label in labels:
        assert any(line.startswith(label) for line in lines), (label, result.stdout)


def test_modem_send_to_a_landline_says_why_in_words_not_a_code(sim_process):
    link, log = sim_process
    result = tsunagu("modem", "send", "--port", str(link), "03-1234-5678", "テスト")
    assert result.returncode == 2
    assert "固定電話" in result.stderr and "landline" not in result.stderr, result.stderr
