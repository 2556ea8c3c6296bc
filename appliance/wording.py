"""One list of words, in Japanese and English, for the states and actions staff meet.

The web UI, the CLI and `tsunagu check` all take their names for a state, an action or a
reason from here, so one thing has one name everywhere ("送信済み" meant two different counts
on two pages before this list). Each entry is (Japanese, English); `word(table, key, lang)`
picks one, and an unknown key comes back as it is rather than failing a page.

`recipient_note` shows what the daemon stored about a recipient (its last_error, written
in English for the log) in the reader's language: the one place a table of send errors
plugs into.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

LANGS = ("ja", "en")

# A recipient message's state (and a broadcast's, which shares some of the names).
STATES: dict[str, tuple[str, str]] = {
    "queued": ("送信待ち", "Waiting"),
    "budget_wait": ("上限待ち", "Waiting for the daily limit"),
    "sending": ("送信中", "Sending"),
    "submitted": ("配達確認待ち", "Awaiting report"),
    "delivered": ("配達済み", "Delivered"),
    "failed": ("届かず", "Failed"),
    "uncertain": ("送信不明", "Uncertain"),
    "cancelled": ("中止", "Cancelled"),
    "scheduled": ("予約", "Scheduled"),
    "done": ("完了", "Finished"),
}

# What each state means, for the hover/tap help on the broadcast page and `--help` texts.
STATE_MEANINGS: dict[str, tuple[str, str]] = {
    "queued": ("順番を待っています。まだ送っていません。",
               "Waiting for its turn; not sent yet."),
    "budget_wait": ("SIMの1日の送信上限に達したため、上限が戻る時刻まで待っています。",
                    "The SIMs' daily limit is reached: it waits until the limit allows it."),
    "sending": ("いまモデムから送っています。", "The modem is sending it now."),
    "submitted": ("携帯電話会社に渡しました。相手の電話に届いたという知らせを待っています。",
                  "Handed to the mobile network; waiting for the report that it arrived."),
    "delivered": ("相手の携帯電話に届きました。", "It reached the phone."),
    "failed": ("届けられませんでした。理由は備考にあります。電話で連絡してください。",
               "It could not be delivered (see the note). Phone this person."),
    "uncertain": ("送信中に止まったため、届いたか分かりません。電話で確かめてください。",
                  "Sending was interrupted; it may or may not have arrived. Phone to check."),
    "cancelled": ("送信を中止したため、送っていません。", "Not sent: the broadcast was cancelled."),
    "scheduled": ("予約した時刻に送ります。", "It will be sent at the scheduled time."),
    "done": ("全員への送信が終わりました。", "Sending to everyone has finished."),
}

# Counts the pages and the CLI show beside the states.
COUNTS: dict[str, tuple[str, str]] = {
    "people": ("人数", "People"),
    "acknowledged": ("返信あり", "Replied"),
    "not_yet_sent": ("未送信", "Not yet sent"),
    "unhandled": ("未対応", "Unhandled"),
    "parts": ("通", "parts"),
}

# A personal reminder's state, why it waits or did not go, and what an appointments import
# does with a row: the reminders page and `tsunagu reminders` both name them from here.
REMINDER_STATES: dict[str, tuple[str, str]] = {
    "pending": ("送信時刻待ち", "Waiting for its time"),
    "queued": ("送信中", "Being sent"),
    "sent": ("送信済み", "Sent"),
    "failed": ("失敗", "Failed"),
    "withdrawn": ("取り消し", "Withdrawn"),
    "missed": ("間に合わず未送信", "Could not go in time"),
}
REMINDER_REASONS: dict[str, tuple[str, str]] = {
    "quiet": ("送信しない時間帯のため、明けてから送ります", "quiet hours: goes when they end"),
    "budget": ("SIMの1日の送信上限のため待っています", "waiting for the SIMs' daily limit"),
    "late": ("予約時刻までに送れませんでした", "not sent in time before the appointment"),
    "no_time": ("予約時刻までに送信してよい時間帯が残っていませんでした",
                "no time outside the quiet hours was left before the appointment"),
    "cancelled": ("予約が取り消されました", "the appointment was cancelled"),
    "broadcast_cancelled": ("職員が送信を中止しました", "cancelled by staff"),
    "contact_inactive": ("連絡先が送信停止中です", "the contact is deactivated"),
    "uncertain": ("送信されたか不明です", "may or may not have been sent"),
    "kind_disabled": ("この種類のお知らせは停止中です", "its kind is paused"),
}
REMINDER_IMPORT_ACTIONS: dict[str, tuple[str, str]] = {
    "new": ("新規", "new"), "changed": ("日時の変更", "time changed"),
    "unchanged": ("変更なし", "unchanged"), "withdraw": ("取り消し（キャンセル）", "withdrawn (cancelled)"),
    "past": ("過去の予約（取り込みません）", "past: ignored"),
}

# What an API token may do and what a webhook tells (their names are the API's own).
API_SCOPES: dict[str, tuple[str, str]] = {
    "send": ("一斉送信をする", "send broadcasts"),
    "read": ("送信状況・受信箱・状態を見る", "read states, the inbox and status"),
    "contacts": ("連絡先を登録・更新する", "add and update contacts"),
    "reminders": ("予約のお知らせを登録する", "appointments for reminders"),
}
WEBHOOK_EVENTS: dict[str, tuple[str, str]] = {
    "message.sent": ("メッセージを送信した", "a message was sent"),
    "message.delivered": ("メッセージが届いた", "a message was delivered"),
    "message.failed": ("メッセージが届かなかった", "a message failed"),
    "reply.received": ("返信が届いた", "a reply arrived"),
    "modem.state": ("モデムが送信可能・不可能になった", "a modem became ready or not"),
    "broadcast.finished": ("一斉送信が終わった", "a broadcast finished"),
}

# A webhook delivery's state (the API page and `tsunagu api-token deliveries`).
WEBHOOK_STATES: dict[str, tuple[str, str]] = {
    "pending": ("送信待ち", "Waiting"), "delivered": ("配達済み", "Delivered"),
    "failed": ("失敗", "Failed"),
}

PRIORITIES: dict[str, tuple[str, str]] = {
    "emergency": ("緊急", "Emergency"),
    "routine": ("通常", "Routine"),
}

# The readiness check's three levels (also the exit status of `tsunagu check`).
CHECK_STATUS: dict[int, tuple[str, str]] = {0: ("正常", "OK"), 1: ("注意", "WARNING"),
                                            2: ("異常", "CRITICAL")}

# Why a modem cannot send (modem_status.reason).
MODEM_REASONS: dict[str, tuple[str, str]] = {
    "port_missing": ("モデムが接続されていません", "the modem is not connected"),
    "not_answering": ("モデムが応答しません", "the modem does not answer"),
    "no_sim": ("SIMカードがありません", "no SIM card"),
    "sim_pin": ("SIMのPINが必要です", "the SIM needs its PIN"),
    "not_registered": ("ネットワークに登録されていません（圏外）", "not registered on the network"),
    "weak_signal": ("電波が弱い", "weak signal"),
    "unknown": ("まだ確認されていません", "not checked yet"),
    "stale": ("デーモンが最近確認していません", "the daemon has not checked it recently"),
    "awaiting_answer": ("送信への応答を待っています（通信の混雑か、モデムの不調）。応答がなければ自動で"
                        "回復を試みます",
                        "waiting for the answer to a send (a congested network, or a stuck "
                        "modem); without one it recovers by itself"),
}

# Why someone is on the call list (broadcasts.call_list).
CALL_REASONS: dict[str, tuple[str, str]] = {
    "asked": ("返信", "Replied"),
    "free_text": ("選択肢以外の返信", "A reply outside the choices"),
    "not_reached": ("届かなかった", "Not reached"),
    "uncertain": ("届いたか不明", "Maybe not received"),
    "budget_wait": ("上限待ち", "Waiting for the daily limit"),
    "not_sent": ("未送信", "Not sent"),
    "no_reply": ("返信なし", "No reply"),
}

# What came of a phone call (call_outcomes.outcome).
CALL_OUTCOMES: dict[str, tuple[str, str]] = {
    "reached": ("連絡がついた", "Reached"),
    "no_answer": ("出なかった", "No answer"),
    "message_left": ("留守電に伝えた", "Left a message"),
}

# The config's resend_uncertain policy, as the settings page explains it.
RESEND_UNCERTAIN: dict[str, tuple[str, str]] = {
    "emergency": ("緊急の送信だけ自動で送り直す（通常の送信は「送信不明」として残す）",
                  "resend emergency messages; leave routine ones as 'uncertain'"),
    "always": ("すべて自動で送り直す", "always resend"),
    "never": ("送り直さず「送信不明」として残す", "never resend; leave them as 'uncertain'"),
}

# A CSV file's encoding, as people know it.
ENCODINGS: dict[str, tuple[str, str]] = {
    "cp932": ("Shift_JIS（Excelの標準）", "Shift_JIS (Excel's default)"),
    "utf-8": ("UTF-8", "UTF-8"), "utf-8-sig": ("UTF-8（BOM付き）", "UTF-8 with BOM"),
}

ROLES: dict[str, tuple[str, str]] = {"admin": ("管理者", "admin"), "office": ("事務", "office"),
                                     "staff": ("職員", "staff")}

# Why a login was refused (audit rows' reason) and how one was completed (their method).
LOGIN_REASONS: dict[str, tuple[str, str]] = {
    "bad_password": ("パスワードの誤り", "wrong password"),
    "unknown_user": ("登録のないユーザー名", "unknown user name"),
    "inactive": ("無効なアカウント", "account deactivated"),
    "bad_code": ("確認コードの誤り", "wrong verification code"),
    "throttled": ("試行が多いため待機中", "too many attempts: made to wait"),
}
LOGIN_METHODS: dict[str, tuple[str, str]] = {
    "password": ("パスワード", "password"),
    "totp": ("パスワードと確認コード", "password and verification code"),
    "recovery_code": ("パスワードと回復コード", "password and recovery code"),
    "totp_enrolment": ("2段階認証の設定", "two-step verification set up"),
    "emergency": ("緊急用コード", "emergency code"),
}

WEEKDAYS: dict[str, tuple[str, str]] = {
    "mon": ("月", "Mon"), "tue": ("火", "Tue"), "wed": ("水", "Wed"), "thu": ("木", "Thu"),
    "fri": ("金", "Fri"), "sat": ("土", "Sat"), "sun": ("日", "Sun"),
}
WEEKDAY_ORDER = tuple(WEEKDAYS)

# Audit log actions, as the audit page shows them.
AUDIT_ACTIONS: dict[str, tuple[str, str]] = {
    "login": ("ログイン", "Logged in"),
    "login_failed": ("ログイン失敗", "Login failed"),
    "user_locked": ("ログインをロック", "Login locked"),
    "logout": ("ログアウト", "Logged out"),
    "login_throttle_clear": ("端末の待ち時間を解除", "Device let try again"),
    "emergency_login": ("緊急用コードでログイン", "Emergency login"),
    "emergency_login_failed": ("緊急用コードの誤り", "Emergency code refused"),
    "emergency_codes_new": ("緊急用コードを発行", "Emergency codes issued"),
    "two_factor_enable": ("2段階認証を設定", "Two-step verification set up"),
    "two_factor_disable": ("2段階認証をオフ", "Two-step verification turned off"),
    "two_factor_reset": ("2段階認証をリセット", "Two-step verification reset"),
    "recovery_codes_new": ("回復コードを作り直し", "New recovery codes"),
    "recovery_code_used": ("回復コードを使用", "Recovery code used"),
    "password_change": ("自分のパスワードを変更", "Own password changed"),
    "user_create": ("ユーザーを追加", "User added"),
    "user_role": ("役割を変更", "Role changed"),
    "user_password": ("パスワードを変更", "Password changed"),
    "user_unlock": ("ロックを解除", "User unlocked"),
    "user_deactivate": ("ユーザーを無効化", "User deactivated"),
    "user_activate": ("ユーザーを有効化", "User activated"),
    "broadcast_create": ("一斉送信を作成", "Broadcast created"),
    "broadcast_cancel": ("一斉送信を中止", "Broadcast cancelled"),
    "broadcast_retry": ("失敗分を再送", "Failed messages retried"),
    "call_list_view": ("電話リストを表示", "Call list opened"),
    "broadcast_view": ("一斉送信の宛先を表示", "Broadcast recipients opened"),
    "inbox_view": ("受信箱を表示", "Inbox opened"),
    "api_read": ("APIで患者の情報を取得", "Patient data read through the API"),
    "recipient_reached_by_phone": ("電話で連絡済み", "Reached by phone"),
    "call_outcome": ("電話の結果を記録", "Call recorded"),
    "call_outcome_undone": ("電話の記録を取り消し", "Call record undone"),
    "recipient_resent": ("自動で再送", "Resent automatically"),
    "recipient_uncertain": ("送信不明", "Uncertain"),
    "recipient_partial_send": ("一部だけ送信", "Partly sent"),
    "inbound_handled": ("返信を対応済みに", "Reply handled"),
    "inbound_reply": ("受信箱から返信", "Replied from the inbox"),
    "template_create": ("テンプレートを作成", "Template created"),
    "template_update": ("テンプレートを変更", "Template changed"),
    "template_delete": ("テンプレートを削除", "Template deleted"),
    "schedule_add": ("定期送信を追加", "Schedule added"),
    "schedule_enable": ("定期送信を再開", "Schedule resumed"),
    "schedule_disable": ("定期送信を停止", "Schedule paused"),
    "schedule_delete": ("定期送信を削除", "Schedule deleted"),
    "schedule_missed": ("定期送信の時刻を逃した", "Schedule run missed"),
    "schedule_failed": ("定期送信に失敗", "Schedule run failed"),
    "clock_set": ("時計を携帯電話網の時刻に合わせた", "Clock set from the cellular network"),
    "api_token_create": ("外部連携のトークンを作成", "API token made"),
    "api_token_revoke": ("外部連携のトークンを無効化", "API token revoked"),
    "api_webhook_set": ("通知先（ウェブフック）を設定", "Webhook set"),
    "api_webhook_remove": ("通知先（ウェブフック）を削除", "Webhook removed"),
    "api_webhook_resend": ("通知を再送", "Webhook deliveries re-sent"),
    "api_webhook_gave_up": ("通知を届けられずに終了", "Webhook deliveries given up"),
    "reminder_add": ("お知らせを登録", "Reminder added"),
    "reminder_change": ("お知らせの予約日時などを変更", "Reminder changed"),
    "reminder_reopen": ("取り消したお知らせを再登録", "Reminder reopened"),
    "reminder_kind_add": ("お知らせの種類を追加", "Reminder kind added"),
    "reminder_kind_change": ("お知らせの種類を変更", "Reminder kind changed"),
    "reminder_withdraw": ("お知らせを取り消し", "Reminder withdrawn"),
    "reminder_failed": ("お知らせを送れなかった", "Reminder could not be sent"),
    "reminder_missed": ("お知らせが間に合わなかった", "Reminder missed its time"),
    "reminders_import": ("予約を取り込み", "Appointments imported"),
    "reminders_import_refused": ("予約の取り込みを中止（問題あり）", "Appointments import refused"),
    "contact_add": ("連絡先を追加", "Contact added"),
    "contact_update": ("連絡先を変更", "Contact changed"),
    "contact_deactivate": ("連絡先を無効化", "Contact deactivated"),
    "contact_reactivate": ("連絡先を有効化", "Contact reactivated"),
    "contact_groups": ("連絡先のグループを変更", "Contact's groups changed"),
    "contacts_import": ("連絡先を取り込み", "Contacts imported"),
    "contacts_import_refused": ("取り込みを中止（問題あり）", "Import refused"),
    "contacts_export": ("連絡先を書き出し", "Contacts exported"),
    "contacts_view": ("連絡先の一覧を表示", "Contacts listed"),
    "contacts_search": ("連絡先を検索", "Contacts searched"),
    "contact_view": ("連絡先を表示", "Contact opened"),
    "audit_export": ("監査ログを書き出し", "Audit log exported"),
    "group_create": ("グループを作成", "Group created"),
    "group_update": ("グループを変更", "Group changed"),
    "group_delete": ("グループを削除", "Group deleted"),
    "group_add_members": ("グループに人を追加", "Members added to a group"),
    "test_button": ("テストボタン", "Test button"),
    "staff_phone_add": ("職員の携帯を登録", "Staff phone registered"),
    "staff_phone_remove": ("職員の携帯の登録を削除", "Staff phone removed"),
    "staff_phone_pin": ("携帯の暗証番号を変更", "Staff phone PIN changed"),
    "staff_phone_on_call": ("携帯の当番を変更", "Staff phone on call changed"),
    "staff_phone_enable": ("携帯からの操作を再開", "Staff phone commands enabled"),
    "staff_phone_disabled": ("暗証番号の誤りで携帯からの操作を停止", "Staff phone disabled (wrong PINs)"),
    "sms_command": ("携帯からの操作", "SMS command"),
    "sms_command_refused": ("携帯からの操作を拒否", "SMS command refused"),
    "sms_send_requested": ("携帯から送信を依頼（確認待ち）", "Send asked by SMS (to confirm)"),
    "sms_send_confirmed": ("携帯から送信を確認", "Send confirmed by SMS"),
    "warning_received": ("緊急速報を受信", "Warning received"),
    "warning_prompt": ("緊急速報の後、当番に確認を依頼", "On-call staff asked after a warning"),
    "warning_auto_send": ("緊急速報の後、自動で送信", "Sent automatically after a warning"),
    "warning_closed": ("緊急速報の表示を閉じた", "Warning closed"),
    "broadcast_ring": ("返信がない人に電話を鳴らすかを変更", "Ring if no answer changed"),
    "backup": ("バックアップ", "Backup"),
    "restore": ("復元", "Restore"),
}

# Keys of the audit details, and how their values read.
AUDIT_DETAILS: dict[str, tuple[str, str]] = {
    "broadcast_id": ("一斉送信", "broadcast"), "schedule_id": ("定期送信", "schedule"),
    "template_id": ("テンプレート", "template"), "contact_id": ("連絡先", "contact"),
    "recipient_id": ("送信先", "recipient"), "inbound_id": ("受信", "message"),
    "group_id": ("グループ", "group"), "parent_id": ("元の送信", "resend of"),
    "title": ("件名", "title"), "name": ("名前", "name"), "people": ("人数", "people"),
    "parts": ("通数", "parts"), "priority": ("優先度", "priority"), "drill": ("訓練", "drill"),
    "scheduled_at": ("予約時刻", "scheduled for"), "cron": ("時刻", "when"),
    "cancelled": ("中止した数", "cancelled"), "recipients": ("対象", "recipients"),
    "reason": ("理由", "reason"), "error": ("エラー", "error"), "skipped": ("見送った回数", "skipped"),
    "late_seconds": ("遅れ（秒）", "late (s)"), "username": ("ユーザー", "user"),
    "role": ("役割", "role"), "filename": ("ファイル", "file"), "created": ("新規", "new"),
    "updated": ("更新", "updated"), "unchanged": ("変更なし", "unchanged"),
    "skipped_rows": ("取り込まなかった行", "rows skipped"), "outcome": ("結果", "outcome"),
    "note": ("メモ", "note"), "locale": ("言語", "language"), "encoding": ("文字コード", "encoding"),
    "count": ("件数", "count"), "parts_sent": ("送信済みの通数", "parts sent"),
    "contacts": ("人数", "contacts"), "rows": ("行数", "rows"), "fields": ("項目", "fields"),
    "groups_created": ("新しいグループ", "new groups"), "problems": ("問題", "problems"),
    "until": ("ロック期限", "locked until"), "source": ("元のファイル", "from"),
    "path": ("ファイル", "file"), "previous_kept": ("元のデータの保存先", "previous kept at"),
    "group_ids": ("グループ", "groups"), "added": ("追加", "added"), "kind": ("種類", "kind"),
    "contact_ids": ("連絡先", "contacts"),
    "user_id": ("ユーザー番号", "user id"), "old_role": ("元の役割", "old role"),
    "method": ("方法", "method"), "wait": ("待ち時間（秒）", "wait (s)"),
    "address": ("端末のアドレス", "device address"), "code_id": ("コード番号", "code"),
    "codes_left": ("残りの緊急用コード", "codes left"), "revoked": ("無効にしたコード", "revoked"),
    "left": ("残りの回復コード", "codes left"), "query": ("検索語", "search"),
    "shown": ("表示した件数", "shown"), "page": ("ページ", "page"),
    "request": ("取得した内容（API のパス）", "request (API path)"),
    "old": ("変更前", "before"), "new": ("変更後", "after"),
    "changes": ("変更", "changes"), "old_name": ("元の名前", "old name"),
    "token_id": ("トークン番号", "token"), "token": ("トークン", "token"),
    "scopes": ("権限", "scopes"), "rate_per_minute": ("1分あたりの上限", "per minute"),
    "url": ("通知先", "URL"), "events": ("通知する出来事", "events"),
    "new_secret": ("新しい秘密鍵", "new secret"), "deliveries": ("通知", "deliveries"),
    "reminder_id": ("お知らせ番号", "reminder"), "kind_id": ("お知らせの種類", "kind"),
    "appointment_at": ("予約日時", "appointment"), "previous_at": ("変更前の予約日時", "was at"),
    "was": ("以前の状態", "was"),
    "changed": ("変更", "changed"), "past": ("過去の予約", "past"),
    "modem": ("モデム", "modem"), "offset_seconds": ("ずれ（秒）", "offset (s)"),
    "clock_was": ("合わせる前の時刻", "clock was"), "set_to": ("合わせた時刻", "set to"),
    "phone": ("携帯番号", "phone"), "on_call": ("当番", "on call"),
    "wrong_pins": ("暗証番号の誤り（回）", "wrong PINs"), "command": ("操作", "command"),
    "text": ("内容", "text"), "pins_left": ("暗証番号の残り回数", "PIN tries left"), "disabled": ("停止", "disabled"),
    "confirmation_id": ("確認番号", "confirmation"), "warning_type": ("速報の種類", "warning"),
    "event_id": ("速報の番号", "warning event"), "message_id": ("メッセージID", "message id"),
    "phones": ("携帯の数", "phones"), "problem": ("問題", "problem"),
    "ring_if_no_answer": ("返信がなければ電話を鳴らす", "ring if no answer"),
    "origin": ("送信元", "origin"),
}

# Where a broadcast came from when not from staff's compose (broadcasts.origin).
ORIGINS: dict[str, tuple[str, str]] = {
    "sms_reply": ("携帯からの操作への返答", "answer to a phone's command"),
}

# SMS commands from staff phones (sms_commands.command) and why one was refused (reason).
SMS_COMMANDS: dict[str, tuple[str, str]] = {
    "status": ("状況", "status"), "send": ("送信", "send"), "cancel": ("中止", "cancel"),
    "help": ("ヘルプ", "help"), "code": ("確認コード", "code"),
}
SMS_REASONS: dict[str, tuple[str, str]] = {
    "unknown_number": ("登録のない番号", "unknown number"),
    "disabled": ("停止中の携帯", "phone disabled"),
    "inactive_user": ("無効なアカウントの携帯", "account deactivated"),
    "rate_limited": ("操作が多すぎる", "too many commands"),
    "no_pin": ("暗証番号なし", "no PIN"),
    "wrong_pin": ("暗証番号の誤り", "wrong PIN"),
    "bad_command": ("書き方の誤り", "not understood"),
    "unknown_template": ("テンプレートがない", "no such template"),
    "unknown_group": ("グループがない", "no such group"),
    "refused_by_broadcast": ("送信できない内容", "refused"),
    "code_expired": ("確認コードの期限切れ", "code expired"),
    "wrong_code": ("確認コードの誤り", "wrong code"),
}

# ETWS warnings (warnings.warning_type), as staff know them.
WARNING_TYPES: dict[str, tuple[str, str]] = {
    "earthquake": ("緊急地震速報", "Earthquake warning"),
    "tsunami": ("津波警報", "Tsunami warning"),
    "earthquake_tsunami": ("緊急地震速報・津波警報", "Earthquake and tsunami warning"),
    "test": ("ETWSテスト", "ETWS test"),
    "other": ("緊急速報", "Emergency warning"),
}

# What came of a call to a patient who did not answer (ring_calls.outcome).
RING_OUTCOMES: dict[str, tuple[str, str]] = {
    "rang": ("着信を残した（出なかった）", "Rang, no answer"),
    "busy": ("話し中", "Busy"),
    "no_carrier": ("つながらなかった（電源オフ・圏外）", "Could not connect (off or out of reach)"),
    "answered": ("電話に出た（すぐ切った）", "Answered (hung up at once)"),
    "unknown": ("結果不明（途中で止まった）", "Unknown (interrupted)"),
}


def lang_of(value: str | None) -> str:
    return value if value in LANGS else "ja"


def say(lang: str | None, ja: str, en: str) -> str:
    """The sentence in *lang*: ja unless 'en' (a sentence made on the spot, not a table's)."""
    return en if lang == "en" else ja


def word(table: Mapping, key, lang: str | None = "ja") -> str:
    """The word for *key* in *lang* ('ja' or 'en'); an unknown key is shown as it is."""
    entry = table.get(key)
    if entry is None:
        return str(key)
    return entry[1] if lang == "en" else entry[0]


def words(table: Mapping, lang: str | None = "ja") -> dict[str, str]:
    """Every key of *table* with its word in *lang*: for a page that shows many."""
    return {key: word(table, key, lang) for key in table}


def state(key: str, lang: str | None = "ja") -> str:
    return word(STATES, key, lang)


def weekdays(days: list[str], lang: str | None = "ja") -> str:
    """['tue', 'sun'] → '火・日' (Japanese) or 'Tue, Sun', in the week's order."""
    ordered = [d for d in WEEKDAY_ORDER if d in days]
    if ordered == list(WEEKDAY_ORDER):
        return "毎日" if lang != "en" else "every day"
    words = [word(WEEKDAYS, d, lang) for d in ordered]
    return "・".join(words) if lang != "en" else ", ".join(words)


def weekday_of(moment, lang: str | None = "ja") -> str:
    """The short day name of a date or datetime (月 … 日; Mon … Sun)."""
    return word(WEEKDAYS, WEEKDAY_ORDER[moment.weekday()], lang)


def audit_action(action: str, lang: str | None = "ja") -> str:
    return word(AUDIT_ACTIONS, action, lang)


def audit_details(detail: Mapping, lang: str | None = "ja", zone=None
                  ) -> list[tuple[str, str]]:
    """An audit row's details as (label, value) pairs a person reads: empty values left out,
    booleans as はい/いいえ, priorities and states in words, moments (…_at) as dates in
    *zone*, lists as a list."""
    out = []
    for key in sorted(detail):
        value = detail[key]
        if value is None or value == "" or value == [] or value is False and key != "drill":
            continue
        if isinstance(value, bool):
            if not value:
                continue  # "drill: いいえ" says nothing a reader needs
            shown = "はい" if lang != "en" else "yes"
        elif key == "priority":
            shown = word(PRIORITIES, value, lang)
        elif key in ("role", "old_role"):
            shown = word(ROLES, value, lang)
        elif key == "method":
            shown = word(LOGIN_METHODS, value, lang)
        elif key == "reason" and value in LOGIN_REASONS:
            shown = word(LOGIN_REASONS, value, lang)
        elif key == "reason" and value in SMS_REASONS:
            shown = word(SMS_REASONS, value, lang)
        elif key == "reason" and value in REMINDER_REASONS:
            shown = word(REMINDER_REASONS, value, lang)
        elif key == "was" and value in REMINDER_STATES:
            shown = word(REMINDER_STATES, value, lang)
        elif key in ("scopes", "events") and isinstance(value, list):
            table = API_SCOPES if key == "scopes" else WEBHOOK_EVENTS
            shown = ("、" if lang != "en" else ", ").join(word(table, v, lang) for v in value)
        elif key.endswith("_at") and isinstance(value, (int, float)):
            shown = _moment(value, zone)
        elif key == "command" and value in SMS_COMMANDS:
            shown = word(SMS_COMMANDS, value, lang)
        elif key == "warning_type":
            shown = word(WARNING_TYPES, value, lang)
        elif key == "origin" and value in ORIGINS:
            shown = word(ORIGINS, value, lang)
        elif key == "encoding":
            shown = word(ENCODINGS, value, lang)
        elif key == "cron":
            shown = schedule_when(str(value), lang)
        elif key == "outcome":
            shown = word(CALL_OUTCOMES, value, lang) if value in CALL_OUTCOMES else str(value)
        elif key in ("reason", "error") and isinstance(value, str):
            shown = recipient_note(value, lang)
        elif isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
            shown = ("、" if lang != "en" else ", ").join(map(str, value))
        elif isinstance(value, (list, dict)):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = str(value)
        out.append((word(AUDIT_DETAILS, key, lang), shown))
    return out


def _moment(value: float, zone) -> str:
    """A stored UTC second as the clinic reads it (UTC when no zone is given)."""
    import datetime as dt
    moment = dt.datetime.fromtimestamp(value, zone or dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M") + ("" if zone else " UTC")


# -- what the daemon stored about a recipient, in the reader's language ------------------

# (pattern, Japanese, English): the notes the daemon writes, in the order they are tried.
# Each may take the values the pattern captured ({0}, {1}…); unmatched text is kept as is
# behind a plain sentence (see recipient_note).
_NOTES: list[tuple[re.Pattern, str, str]] = [
    (re.compile(r"gave up after (\d+) attempts"),
     "{0}回試しましたが送れませんでした", "gave up after {0} attempts"),
    (re.compile(r"— retried by (\S+)"), "{0} が再送しました", "retried by {0}"),
    (re.compile(r"— may or may not have been sent; not resent"),
     "送信中に止まったため届いたか分かりません（再送していません）",
     "may or may not have been sent; not resent"),
    (re.compile(r"^uncertain \(.*\) — resent"),
     "送信中に止まったため、もう一度送りました", "interrupted while sending; sent again"),
    (re.compile(r"daemon stopped after part (\d+)/(\d+)"),
     "送信中に止まったため（{1}通中{0}通まで送信済み）、全体を送り直しました",
     "stopped after part {0}/{1}; the whole message was sent again"),
    (re.compile(r"daemon stopped during AT\+CMGS"),
     "送信の途中で本体が止まりました", "the daemon stopped while sending"),
    (re.compile(r"— handed back"),
     "モデムの不調のため、別の機会に送り直します", "the modem failed; handed back to be sent again"),
    (re.compile(r"parts 1-(\d+) of (\d+) had gone out"),
     "{1}通中{0}通は送信済みのため、全体を送り直します",
     "parts 1-{0} of {1} had gone out; the whole message is sent again"),
    (re.compile(r"cannot encode the message"),
     "本文をSMSにできませんでした", "the message could not be encoded"),
    (re.compile(r"timed out|ATTimeout|no answer", re.I),
     "モデムが応答しませんでした", "the modem did not answer"),
    (re.compile(r"port .*(gone|vanished)|PortGone", re.I),
     "モデムが外れました", "the modem was unplugged"),
]
# Codes in a note written before the daemon kept a reason key: worded by the error policy.
_CODES = [(re.compile(r"\+CMS ERROR: ?(\d+)"), "cms:{0}"),
          (re.compile(r"\(status 0x([0-9A-Fa-f]{2})\)"), "report:0x{0}")]


def recipient_reason(reason: str | None, note: str | None, lang: str | None = "ja") -> str:
    """Why a recipient failed, waits or was resent, in *lang*: the error policy's words for
    its reason key (appliance.error_policy: 'cms:42', 'report:0x41'…) when the daemon
    recorded one, else what recipient_note reads from the stored note."""
    if reason:
        from . import error_policy
        return error_policy.describe(reason, "en" if lang == "en" else "ja") or ""
    return recipient_note(note, lang)


def recipient_note(text: str | None, lang: str | None = "ja") -> str:
    """A recipient's stored note (last_error) in *lang*: every known sentence in it
    translated, joined with '。' or '; '. Unknown text is shown as written (None → '')."""
    if not text:
        return ""
    from . import error_policy
    found: list[str] = []
    for pattern, key in _CODES:
        if (match := pattern.search(text)) is not None:
            found.append(error_policy.describe(key.format(match.group(1).lower()),
                                               "en" if lang == "en" else "ja") or "")
    for pattern, ja, en in _NOTES:
        if (match := pattern.search(text)) is not None:
            found.append((en if lang == "en" else ja).format(*match.groups()))
    if not found:
        return text
    return "; ".join(found) if lang == "en" else "。".join(found)


# -- errors in the reader's language ---------------------------------------------------------

# Messages written in both languages at once, as much of appliance/ does:
# "最後の管理者の権限は外せません (cannot demote the last admin)" or "the message is empty / 本文が空です".
_JA_THEN_EN = re.compile(r"^(?P<ja>.*[^\x00-\x7f].*?)\s*[(（](?P<en>[\x00-\x7f]+)[)）]\s*$", re.S)
_EN_THEN_JA = re.compile(r"^(?P<en>[\x00-\x7f]+?)\s*(?:/|[(（])\s*(?P<ja>[^\x00-\x7f].*?)[)）]?\s*$",
                         re.S)


def in_language(text: str, lang: str | None = "ja") -> str:
    """The *lang* half of a message written in both languages; other text as it is."""
    english, slash, japanese = text.rpartition(" / ")
    if slash and re.search(r"[A-Za-z]{2}", english) and not japanese.isascii():
        # "English / 日本語", as BroadcastError writes it (the English may quote a name).
        return (english if lang == "en" else japanese).strip()
    for pattern in (_JA_THEN_EN, _EN_THEN_JA):
        if (match := pattern.match(text)) is not None:
            return match.group("en" if lang == "en" else "ja").strip()
    return text


def error_text(exc: BaseException, lang: str | None = "ja") -> str:
    """An error's message for a person reading *lang*: the error's own `ja` / `en` when it
    carries them, else the matching half of a message written in both languages."""
    ja, en = getattr(exc, "ja", None), getattr(exc, "en", None)
    if lang == "en" and en:
        return en
    if lang != "en" and ja:
        return ja
    return in_language(str(exc), lang)


def schedule_when(cron: str, lang: str | None = "ja") -> str:
    """A schedule's crontab line as people say it: '0 17 * * tue,sun' → '火・日 17:00'.

    Handles what the web form writes (days of the week at a time), every day, and a day of
    the month; anything else is shown as written.
    """
    fields = cron.split()
    if len(fields) != 5 or not (fields[0].isdigit() and fields[1].isdigit()):
        return cron
    minute, hour, day, month, dow = fields
    at = f"{int(hour)}:{int(minute):02d}"
    if month != "*":
        return cron
    if day == "*" and dow in ("*", "?"):
        return f"{'every day' if lang == 'en' else '毎日'} {at}"
    if day == "*":
        names = [d.strip().lower()[:3] for d in dow.split(",")]
        # Numbers as APScheduler 3 reads them (it runs the schedules): 0 is Monday.
        numbered = {str(i): d for i, d in enumerate(WEEKDAY_ORDER)}
        names = [numbered.get(n, n) for n in names]
        if all(n in WEEKDAYS for n in names):
            return f"{weekdays(names, lang)} {at}"
        return cron
    if day.isdigit() and dow in ("*", "?"):
        return f"monthly on day {day}, {at}" if lang == "en" else f"毎月{day}日 {at}"
    return cron
