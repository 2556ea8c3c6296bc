"""The error policy: for every code in the table, what happens to the recipient and what
staff read (TS 27.005 3.2.5, TS 24.011 annex E.2, TS 23.040 9.2.3.15/9.2.3.22)."""
from __future__ import annotations

import re

import pytest

from appliance import error_policy as ep
from modem.errors import CmeError, CmsError, CommandError, error_from

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.mark.parametrize("code", sorted(ep.CMS))
def test_every_cms_code_has_an_action_and_a_japanese_reason(code):
    verdict = ep.for_send_error(error_from(f"+CMS ERROR: {code}"))
    action, ja, en, give_up, personal = ep.CMS[code]
    assert (verdict.action, verdict.key, verdict.give_up) == (action, f"cms:{code}", give_up)
    assert verdict.personal == personal and (personal or not give_up)
    assert JAPANESE.search(verdict.ja) and verdict.en
    assert ep.describe(verdict.key, "ja") == ja and ep.describe(verdict.key, "en") == en
    if action != ep.RETRY:
        assert not give_up  # give_up only means something for a retry


@pytest.mark.parametrize("code", sorted(ep.CME))
def test_every_cme_code_during_a_send_is_the_equipment_never_the_recipient(code):
    verdict = ep.for_send_error(error_from(f"+CME ERROR: {code}"))
    assert verdict.action in (ep.RETRY, ep.ELSEWHERE) and verdict.key == f"cme:{code}"
    assert JAPANESE.search(ep.describe(verdict.key, "ja"))


@pytest.mark.parametrize("status", sorted(ep.REPORT))
def test_every_failed_status_report_fails_the_recipient_with_a_reason(status):
    verdict = ep.for_report(status)
    assert verdict.action == ep.FAIL and verdict.key == f"report:{status:#04x}"
    assert "電話で連絡" in ep.describe(verdict.key, "ja")


@pytest.mark.parametrize("code", [38, 41, 42, 47, 17, 22, 27, 192, 194, 332])
def test_what_an_earthquake_brings_is_retried_until_sent_never_given_up(code):
    verdict = ep.for_send_error(CmsError(f"+CMS ERROR: {code}", code))
    assert verdict.action == ep.RETRY and not verdict.give_up
    assert "自動で送り直します" in verdict.ja
    assert verdict.personal == (code == 27)  # only a phone out of service is the patient's


@pytest.mark.parametrize("code", [1, 8, 10, 28, 30, 195, 196])
def test_a_number_that_cannot_get_sms_fails_at_once_for_a_phone_call(code):
    verdict = ep.for_send_error(CmsError(f"+CMS ERROR: {code}", code))
    assert verdict.action == ep.FAIL and "電話で連絡" in verdict.ja


@pytest.mark.parametrize("code", [50, 310, 313, 330, 331, 512])
def test_a_problem_of_this_modem_or_sim_goes_to_another_modem(code):
    assert ep.for_send_error(CmsError(f"+CMS ERROR: {code}", code)).action == ep.ELSEWHERE


def test_an_unknown_code_is_retried_a_limited_number_of_times():
    verdict = ep.for_send_error(CmsError("+CMS ERROR: 999", 999))
    assert verdict.action == ep.RETRY and verdict.give_up and verdict.key == "cms:999"
    assert JAPANESE.search(ep.describe("cms:999", "ja"))
    plain = ep.for_send_error(CommandError("ERROR"))
    assert plain.action == ep.RETRY and plain.give_up


def test_a_send_that_never_reached_the_modem_is_not_sent_and_goes_again():
    for what in ("no_prompt", "port_gone_before"):
        verdict = ep.for_driver(what)
        assert verdict.action == ep.ELSEWHERE and "送っていません" in verdict.ja


def test_notes_and_unknown_keys_read_well_in_both_languages():
    assert "届いたか分かりません" in ep.describe("uncertain", "ja")
    assert ep.describe(None) is None
    assert "モデム" in ep.describe("something-new", "ja")
    assert "(something-new)" in ep.describe("something-new", "en")
    assert ep.describe("report:0x7f", "ja")  # a TP-ST the table does not name
    assert isinstance(ep.for_send_error(CmeError("+CME ERROR: 99", 99)), ep.Verdict)
