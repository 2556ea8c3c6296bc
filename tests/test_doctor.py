"""`tsunagu modem doctor`: each diagnosis the field meets, against the simulated modem (both
models), with the Japanese advice on the failing line; --fix applies only the safe settings."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from appliance.cli.modem import doctor_command


def doctor(sim, *args: str):
    result = CliRunner().invoke(doctor_command, ["--port", str(sim.link), "--timeout", "10",
                                                 *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def lines(result) -> dict:
    return {line["key"]: line for line in json.loads(result.output)["lines"]}


def test_a_healthy_modem_is_all_green_and_its_loop_back_comes_back(sim_modem):
    result = doctor(sim_modem)
    assert result.exit_code == 0, result.output
    assert "問題ありません" in result.output and "✖" not in result.output
    assert "loop-back SMS to" in result.output and "came back" in result.output
    found = lines(doctor(sim_modem, "--json"))
    assert set(found) >= {"identity", "sim", "sms_centre", "registration", "signal", "ims",
                          "bearer", "network_time", "loopback"}
    assert sim_modem.model.model in found["identity"]["summary"]
    assert "RSRP" in found["signal"]["summary"]


def test_ims_not_registered_says_sms_over_lte_fails_and_what_to_ask(sim_modem):
    sim_modem.set_ims(False)
    result = doctor(sim_modem)
    assert result.exit_code == 2
    assert "IMSに登録されていません。日本のLTEではSMSがIMS経由のため送信に失敗します" in result.output
    assert "テストSMSが戻ってきませんでした" in result.output or "テスト送信に失敗しました" in result.output


@pytest.mark.parametrize("modem_model", ["ec25"])
def test_a_wrong_carrier_profile_is_found_and_fix_sets_it_automatic(sim_modem):
    sim_modem.set_carrier_profile("Commercial-KDDI")   # a docomo SIM
    found = lines(doctor(sim_modem, "--json"))
    assert found["carrier_profile"]["status"] == "fail"
    assert "Commercial-DCM" in found["carrier_profile"]["summary"]
    assert "キャリア設定がSIMの通信事業者と合っていません" in found["carrier_profile"]["advice"]
    fixed = lines(doctor(sim_modem, "--fix", "--json"))["carrier_profile"]["fixed"]
    assert "automatic" in fixed and sim_modem.mbn_autosel == 1
    assert doctor(sim_modem).exit_code == 0            # after the restart it applied


def test_an_empty_sms_centre_is_found_and_fix_restores_it_from_the_sim(sim_modem):
    sim_modem.clear_smsc()
    result = doctor(sim_modem)
    assert result.exit_code == 2 and "SMSセンター番号が空のため送信できません" in result.output
    fixed = doctor(sim_modem, "--fix")
    assert "修正しました: SMS centre restored from the SIM: +819030101950" in fixed.output
    assert fixed.exit_code == 0 and sim_modem.smsc == "+819030101950"


def test_a_denied_registration_gives_the_networks_reason_in_japanese(sim_modem):
    sim_modem.set_registration("denied")
    sim_modem.set_reject_cause(7)
    result = doctor(sim_modem)
    assert result.exit_code == 2
    assert "ネットワークに登録を拒否されました：このSIMはLTE（EPS）の利用が許可されていません" \
        in result.output
    assert sim_modem.creg_n["CEREG"] == 1             # the daemon's notices left as they were


def test_a_weak_signal_is_a_warning_with_where_to_put_the_antenna(sim_modem):
    sim_modem.set_signal(3)
    result = doctor(sim_modem, "--json")
    signal = lines(result)["signal"]
    assert signal["status"] == "warning" and "アンテナを窓際や高い所へ" in signal["advice"]
    assert result.exit_code == 1


def test_a_lost_loop_back_fails_with_what_to_check(sim_modem):
    sim_modem.set_outcome(sim_modem.card.identity.number, "failed")  # it never comes back
    result = doctor(sim_modem, "--timeout", "2")
    assert result.exit_code == 2
    assert "テストSMSが戻ってきませんでした" in result.output


@pytest.mark.parametrize("modem_model", ["ec25"])  # IMS is switched with AT+QCFG on a Quectel
def test_fix_turns_ims_on_when_it_was_switched_off(sim_modem):
    sim_modem.ims_mode = 2                                # someone switched IMS off
    assert lines(doctor(sim_modem, "--json"))["ims"]["status"] == "fail"
    fixed = lines(doctor(sim_modem, "--fix", "--json"))["ims"]["fixed"]
    assert "IMS turned on" in fixed and sim_modem.ims_mode == 1


def test_either_port_or_modem_is_required():
    result = CliRunner().invoke(doctor_command, [])
    assert result.exit_code == 2 and "--port P か --modem NAME" in result.output, result.output


def test_through_the_daemon_when_it_owns_the_port(rig_factory):
    import subprocess

    from tests.daemon_harness import tsunagu_command, wait_until
    rig = rig_factory()
    rig.daemon.start()
    wait_until(lambda: rig.db.conn.execute("SELECT ready FROM modem_status").fetchone(), 30,
               "the daemon to open the modem")
    result = subprocess.run([*tsunagu_command(), "modem", "doctor", "--modem", "modem0",
                             "--config", str(rig.config_path), "--json", "--timeout", "20"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "ok"
    assert {line["key"]: line["status"] for line in report["lines"]}["loopback"] == "ok"


def test_doctor_says_whether_the_modem_took_the_etws_subscription(sim_modem):
    sim_modem.set_cell_broadcasts(False)       # a model without cell broadcasts
    found = lines(doctor(sim_modem, "--json"))["cell_broadcasts"]
    assert found["status"] == "warning" and "not subscribed" in found["summary"]
    assert "緊急地震速報・津波警報（ETWS）の受信設定を受け付けませんでした" in found["advice"]
    sim_modem.set_cell_broadcasts(True)
    found = lines(doctor(sim_modem, "--json"))["cell_broadcasts"]
    assert found["status"] == "ok" and "4352-4359 subscribed" in found["summary"]
    assert "4355" in found["advice"]
