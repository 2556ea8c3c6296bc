"""The Japanese of every `tsunagu` help text (cli/help.py), keyed by the English as written
in the commands' docstrings and options. tests/test_cli_help.py fails on any missing."""
from __future__ import annotations

HELP: dict[str, str] = {
    'Tsunagu (つなぐ): SMS broadcasts over a cellular modem, for when the internet is down.':
        'Tsunagu（つなぐ）：インターネットが止まったときのために、携帯電話網のモデムからSMSで一斉送信します。',
    'Show the version and exit.':
        'バージョンを表示して終了します。',
    'Run a simulated modem (a Quectel EC25 or SIMCom SIM7600 with a Japanese SIM) until Ctrl-C.\n\nControl it while it runs with `tsunagu sim-ctl --link LINK …` (socket LINK.ctl).':
        '模擬モデム（日本のSIMを入れた Quectel EC25 または SIMCom SIM7600）を、Ctrl-C で止めるまで動かします。\n\n動いている間は `tsunagu sim-ctl --link LINK …` で操作できます（ソケットは LINK.ctl）。',
    "Symlink to create, pointing at the modem's pty (the port to open).":
        '作成するシンボリックリンク。モデムの pty を指します（これを開くポートとして使います）。',
    'Network log: one JSON object per submitted part and per whole message.':
        'ネットワークのログ。ネットワークが受け付けた各部分（1通）ごとと、メッセージ全体ごとに、JSON オブジェクトを1つずつ記録します。',
    'Seconds each SMS takes on the air, or a range such as 1-3.':
        'SMS 1通の送信にかかる秒数、または 1-3 のような範囲。',
    'Seconds from a send to its delivery report, or a range such as 2-6.':
        '送信から配達確認が届くまでの秒数、または 2-6 のような範囲。',
    'Give the SIM this PIN (it then starts locked).':
        'SIMにこの PIN を設定します（SIMはロックされた状態で始まります）。',
    'Seed for the random delays and fault rates.':
        'ランダムな遅延と障害の発生率に使う乱数のシード。',
    'Which modem to be: a Quectel EC25 or a SIMCom SIM7600JC-H.':
        'どのモデムとして動くか：Quectel EC25 または SIMCom SIM7600JC-H。',
    'Drive a running simulated modem: replies, outcomes and faults.':
        '動作中の模擬モデムを操作します（返信、配達結果、障害）。',
    'The link the simulated modem was started with.':
        '模擬モデムを起動したときに指定したリンク。',
    "A phone at SENDER texts TEXT to the modem's SIM (a reply).":
        'SENDER の携帯電話から、モデムのSIMへ TEXT をSMSで送ります（返信として）。',
    'What the delivery report says for messages to NUMBER (none: no report).':
        'NUMBER 宛てのメッセージの配達確認が何を伝えるかを設定します（none：配達確認なし）。',
    'Answer sends with +CMS ERROR CODE (e.g. 331 no network, 500 unknown).':
        '送信に +CMS ERROR CODE で答えます（例：331 はネットワークなし、500 は不明なエラー）。',
    'Only sends to this number.':
        'この番号への送信だけ。',
    'Fail this fraction of sends (0-1).':
        'この割合の送信を失敗させます（0-1）。',
    'Only the next COUNT matching sends.':
        '条件に合う次の COUNT 件の送信だけ。',
    'The next COUNT AT+CMGS get no "> " prompt (nothing is sent).':
        '次の COUNT 回の AT+CMGS に "> " プロンプトを返しません（何も送信されません）。',
    'How many AT+CMGS in a row get no prompt.':
        'プロンプトを返さない AT+CMGS の回数。',
    "Show the modem's state.":
        'モデムの状態を表示します。',
    'List every message the network delivered.':
        'ネットワークが配達したメッセージをすべて表示します。',
    'Remove injected send faults, dropped commands and withheld prompts.':
        '仕込んだ送信障害、応答しないコマンド、返さないプロンプトを取り除きます。',
    'Leave the next AT command unanswered.':
        '次の AT コマンドに応答しません。',
    'Pull the SIM card out.':
        'SIMカードを抜きます。',
    'Put it back.':
        'SIMカードを挿し直します。',
    'Pull the USB cable: the port vanishes.':
        'USBケーブルを抜きます。ポートが消えます。',
    'Plug it back in: the port returns, the modem rebooted.':
        'USBケーブルを挿し直します。ポートが戻り、モデムは再起動した状態になります。',
    'The modem restarts by itself: same port, settings lost.':
        'モデムがひとりでに再起動します。ポートは同じままで、設定は失われます。',
    'The network stops acknowledging sends (they wait).':
        'ネットワークが送信の受け付けを返さなくなります（送信は待たされます）。',
    'The network acknowledges again, held sends first.':
        'ネットワークが再び送信を受け付けます。止められていた送信から先に処理します。',
    'Empty the SMS centre in use (AT+CRES restores it).':
        '使用中のSMSセンターの設定を空にします（AT+CRES で元に戻ります）。',
    'The other phone hangs up every call.':
        '相手の電話が、すべての通話を切ります。',
    'Network registration as the modem will report it.':
        'モデムが報告するネットワーク登録の状態を設定します。',
    'Signal as AT+CSQ reports it: 0-31 (31 best), 99 unknown.':
        '電波の強さを、AT+CSQ が報告する値で設定します：0-31（31 が最良）、99 は不明。',
    'Seconds per SMS, or a range such as 1-3.':
        'SMS 1通あたりの秒数を設定します。1-3 のような範囲も指定できます。',
    'Whether the network offers IMS (without it, SMS over LTE fails with +CMS ERROR 500).':
        'ネットワークが IMS を提供するかどうかを設定します（IMS がないと、LTE での SMS は +CMS ERROR 500 で失敗します）。',
    'Select a Quectel carrier profile (MBN) by hand, e.g. Commercial-KDDI (after a reboot).':
        'Quectel のキャリアプロファイル（MBN）を手動で選びます。例：Commercial-KDDI（再起動したあとの状態になります）。',
    'The firmware hangs: sms (sends never answered; a reset clears it) or total (only a\npower cycle clears it).':
        'ファームウェアが固まります：sms（送信に応答しなくなり、リセットで直る）または total（電源の入れ直しでしか直らない）。',
    "The network's clock runs SECONDS ahead of this machine's (negative: behind).":
        'ネットワークの時計を、このマシンの時計より SECONDS 秒進めます（負の値なら遅らせます）。',
    'The EMM cause given with a denied registration (e.g. 7 EPS services not allowed).':
        '登録が拒否されたときに返す EMM の理由コードを設定します（例：7 は EPS サービス不許可）。',
    'A phone at NUMBER calls the SIM (RING until answered or given up).':
        'NUMBER の電話からSIMに電話をかけます（応答するか、相手があきらめるまで RING）。',
    'What a call from the appliance to NUMBER does: answer, no_answer (it rings until the\nnetwork gives up), busy, unreachable (switched off or out of reach).':
        '装置から NUMBER への電話がどうなるかを設定します。answer（応答する）、no_answer（ネットワークがあきらめるまで鳴り続ける）、busy（話し中）、unreachable（電源が切れているか圏外）。',
    'The network broadcasts TEXT to the cell (an earthquake warning: --etws earthquake).\nA text longer than one page (41 full-width characters) goes as several pages.':
        'ネットワークが、セル内へ TEXT を一斉配信します（緊急地震速報なら --etws earthquake）。1ページ（全角41文字）より長い文は、複数のページに分けて送られます。',
    'An ETWS warning of this type (message id 4352-4356).':
        'この種類の ETWS 警報（メッセージID 4352-4356）。',
    'Any cell broadcast message id instead.':
        '代わりに、任意のセルブロードキャストのメッセージID。',
    'GSM 7-bit pages instead of UCS2 (ASCII text only).':
        'UCS2 の代わりに GSM 7ビットのページで送ります（ASCII の文だけ）。',
    'This page is lost on the way.':
        'この番号のページを途中で失わせます。',
    'Whether the modem takes AT+CSCB (off: a model without cell broadcasts).':
        'モデムが AT+CSCB を受け付けるかどうかを設定します（off：セルブロードキャストに対応しない機種）。',
    'Query or use one modem directly.':
        '1台のモデムに直接問い合わせたり、直接使ったりします。',
    'Identity, SIM, registration, signal and operator of the modem at --port.':
        '--port のモデムの識別情報、SIM、ネットワーク登録、電波、通信事業者を表示します。',
    "The modem's AT port (e.g. /dev/tsunagu-modem0, or a simulated modem's link).":
        'モデムの AT ポート（例：/dev/tsunagu-modem0、または模擬モデムのリンク）。',
    'SIM PIN, if the SIM asks for one.':
        'SIMの PIN（SIMが求める場合）。',
    'Machine-readable output.':
        '機械で読み取れる形式で出力します。',
    'Send TEXT to NUMBER (090-1234-5678, +81 90…, full-width digits are all fine).':
        'NUMBER へ TEXT を送信します（090-1234-5678、+81 90…、全角数字のどれでも構いません）。',
    'Do not request a delivery report.':
        '配達確認を求めません。',
    'What is wrong with a modem, each failing line with what to do. Exit 0 all good,\n1 warnings, 2 something fails.':
        'モデムのどこが悪いかを調べ、問題のある項目ごとに対処方法を示します。終了コードは 0 ならすべて正常、1 は注意あり、2 は異常あり。',
    "The modem's AT port (e.g. /dev/tsunagu-modem0, or a simulated modem's link). Opened here: the daemon must not own it.":
        'モデムの AT ポート（例：/dev/tsunagu-modem0、または模擬モデムのリンク）。このコマンドが直接開くため、デーモンが使っていてはいけません。',
    'A [[modem]] of the configuration; through the daemon when it runs.':
        '設定の [[modem]] の1つ。デーモンが動いているときは、デーモンを通して調べます。',
    'Apply the settings known to be safe: carrier profile automatic, IMS on, SMS centre from the SIM.':
        '安全とわかっている設定を適用します：キャリアプロファイルを自動に、IMS をオンに、SMSセンターをSIMの値に。',
    "Send the loop-back SMS here (default: the SIM's own number).":
        '折り返し確認（ループバック）のSMSをこの番号へ送ります（既定：SIM自身の番号）。',
    'Seconds to wait for the loop-back SMS to come back.':
        'ループバックのSMSが戻ってくるのを待つ秒数。',
    'The configuration file (default: $TSUNAGU_CONFIG).':
        '設定ファイル（既定：$TSUNAGU_CONFIG）。',
    'Record an anonymised AT transcript of set-up, doctor and one send (IMEI, IMSI, ICCID,\nnumbers and message texts masked), to send to whoever supports the clinic.':
        '初期設定、doctor、1回の送信での AT のやり取りを、匿名化して記録します（IMEI、IMSI、ICCID、電話番号、本文は伏せます）。クリニックのサポート担当者に送るためのものです。',
    'Where to write the anonymised transcript (JSON lines).':
        '匿名化した記録の書き出し先（JSON Lines 形式）。',
    "The one test SMS goes here (default: the SIM's own number, a loop-back).":
        '1通だけ送るテストSMSの送り先（既定：SIM自身の番号。ループバックになります）。',
    'Send a message to many people, and follow how it went.':
        '多くの人にメッセージを一斉送信し、その結果を確認します。',
    'Queue a broadcast (the daemon sends it). Shows the plan and asks first.':
        '一斉送信を送信待ちに入れます（送信はデーモンが行います）。送る前に内容を表示して確認します。',
    'Configuration file (TOML; default: $TSUNAGU_CONFIG, else /etc/tsunagu/tsunagu.toml). See docs/config.example.toml.':
        '設定ファイル（TOML。既定は $TSUNAGU_CONFIG、それもなければ /etc/tsunagu/tsunagu.toml）。設定項目は docs/config.example.toml を参照してください。',
    'A group name (repeat for more).':
        'グループ名（複数のときはくり返し指定します）。',
    'Every active contact.':
        '有効な連絡先すべて。',
    'The message ({name}, {clinic}… are filled in per person).':
        '本文（{name}、{clinic} などは一人ずつ差し込まれます）。',
    "A saved template's name.":
        '保存済みのテンプレートの名前。',
    'A title for the history (default: the first line).':
        '履歴用の件名（既定：本文の1行目）。',
    'Emergency broadcasts go before routine ones.':
        '緊急の一斉送信は、通常のものより先に送られます。',
    'Only the test group receives it.':
        'テストグループだけが受け取ります（訓練）。',
    'Reply choices, e.g. "来院できる / 来院できない / 連絡がほしい".':
        '返信の選択肢。例："来院できる / 来院できない / 連絡がほしい"。',
    'Value for {date}.':
        '{date} に入れる値。',
    'Value for {time}.':
        '{time} に入れる値。',
    'Value for {original_time}.':
        '{original_time} に入れる値。',
    "Send later: YYYY-MM-DD HH:MM in the clinic's timezone.":
        '予約送信：クリニックのタイムゾーンで YYYY-MM-DD HH:MM の形で指定します。',
    'Do not ask for confirmation.':
        '確認を求めません。',
    'Counts per state and every recipient of broadcast BROADCAST_ID.':
        '一斉送信 BROADCAST_ID の状態ごとの件数と、すべての送信先を表示します。',
    'As JSON, for a script: the counts and every recipient.':
        'スクリプト向けにJSONで表示します（件数と送信先の全員）。',
    'Stop BROADCAST_ID: nobody not yet sent to receives it.':
        '一斉送信 BROADCAST_ID を中止します。まだ送っていない人には届きません。',
    'Send again to the failed and uncertain recipients of BROADCAST_ID.':
        '一斉送信 BROADCAST_ID の、失敗と送信不明の送信先にもう一度送ります。',
    'A new broadcast to everyone who has not replied to BROADCAST_ID.':
        '一斉送信 BROADCAST_ID に返信していない全員へ、新しい一斉送信を送ります。',
    'Recent broadcasts, newest first.':
        '最近の一斉送信を新しい順に表示します。',
    'How many, newest first.':
        '新しい順に表示する件数。',
    'Replies and other messages that reached the SIMs, newest first.':
        '受信箱：SIMに届いた返信やその他のメッセージを新しい順に表示します。',
    'Only messages matched to no broadcast.':
        'どの一斉送信にも結びつかないメッセージだけ。',
    'Send queued broadcasts through the modems, read replies and delivery reports.\n\nThe only process that opens the serial ports; the web UI and `tsunagu check` talk to\nit through the database. Stops cleanly on SIGTERM or Ctrl-C after finishing the\nmessage in flight.':
        '送信待ちの一斉送信をモデムから送り、返信と配達確認を読み取ります。\n\nシリアルポートを開く唯一のプロセスです。Web画面と `tsunagu check` は、データベースを通してこのプロセスとやり取りします。SIGTERM または Ctrl-C を受けると、送信中のメッセージを送り終えてから正常に停止します。',
    'How much the daemon logs (stderr).':
        'デーモンのログの詳しさ（標準エラー出力に出します）。',
    'Could the appliance send right now? Exit 0 ok, 1 warning, 2 critical.':
        '装置がいま送信できるかを点検します。終了コードは 0 正常、1 注意、2 異常。',
    'Ask the daemon to probe every modem now.':
        'すべてのモデムをいますぐ調べるよう、デーモンに依頼します。',
    'Send the test message to the test group and wait for delivery reports.':
        'テストメッセージをテストグループに送り、配達確認を待ちます。',
    "Seconds to wait for the daemon (and for --send-test's reports).":
        'デーモン（と --send-test の配達確認）を待つ秒数。',
    "Recurring broadcasts, e.g. every Monday 17:00 to 月水金 (clinic's timezone).":
        '定期送信を管理します。例：毎週月曜 17:00 に「月水金」へ送る（時刻はクリニックのタイムゾーン）。',
    'Add a recurring broadcast called NAME.':
        'NAME という名前の定期送信を追加します。',
    "minute hour day month day_of_week, e.g. '0 17 * * mon'.":
        "分 時 日 月 曜日 の順に書きます。例：'0 17 * * mon'。",
    'Group name (repeatable).':
        'グループ名（くり返し指定できます）。',
    'The message.':
        '本文。',
    'Every schedule and its next run.':
        'すべての定期送信と、それぞれの次回の送信日時を表示します。',
    'Enable SCHEDULE_ID (missed runs are not sent).':
        '定期送信 SCHEDULE_ID を再開します（止めていた間の回は送りません）。',
    'Disable SCHEDULE_ID.':
        '定期送信 SCHEDULE_ID を停止します。',
    'Delete SCHEDULE_ID.':
        '定期送信 SCHEDULE_ID を削除します。',
    'Serve the web UI (log in with an account made by `tsunagu user add`).':
        'Web画面を動かします（`tsunagu user add` で作ったアカウントでログインします）。',
    'Address to listen on (default: [web] host in the config).':
        '待ち受けるアドレス（既定：設定ファイルの [web] host）。',
    'Port (default: [web] port in the config).':
        'ポート番号（既定：設定ファイルの [web] port）。',
    'Worker threads.':
        'ワーカースレッドの数。',
    'Copy the database, encrypted (safe while running); keep the newest [backup] keep\ncopies; copy it to the USB stick too when [backup] usb_path is set.':
        'データベースを暗号化してバックアップします（動作中でも安全です）。新しいものから [backup] keep 個を残し、[backup] usb_path が設定されていればUSBメモリにもコピーします。',
    'Replace the database with the backup FILE (decrypted; the current one is kept aside).':
        'データベースをバックアップ FILE の内容で置き換えます（暗号化を解いて戻し、今のデータベースは別に残します）。',
    'Restore even though the daemon seems to run.':
        'デーモンが動いているように見えても復元します。',
    'The backup key file (default: [backup] key_file), e.g. typed in from the sealed printout on a new appliance.':
        'バックアップの鍵ファイル（既定：[backup] key_file）。例：新しい装置で、封をして保管していた印刷物から手で入力したもの。',
    'The demo set-up used by ./scripts/demo.':
        './scripts/demo が使うデモ環境を用意します。',
    'Write the demo config (once), migrate and seed the database, reset the demo login.':
        'デモ用の設定ファイルを書き（初回のみ）、データベースを最新の形にして見本のデータを入れ、デモのログインを作り直します。',
    "Where the demo's config, database and logs go.":
        'デモの設定ファイル、データベース、ログを置く場所。',
    "The address the demo's web UI listens on.":
        'デモのWeb画面が待ち受けるアドレス。',
    "The port the demo's web UI listens on.":
        'デモのWeb画面が待ち受けるポート番号。',
    'Contacts (patients and staff phones): import, export, list, whether to ring.':
        '連絡先（患者さんと職員の携帯電話）の取り込み、書き出し、一覧表示、電話を鳴らすかどうかの設定をします。',
    'Import contacts from a CSV FILE (UTF-8, UTF-8 with BOM or Shift_JIS/CP932).\n\nAll or nothing: when any row has a problem, every problem is listed by row number\n(the header is row 1), nothing is imported and the exit status is 1. Rows match\nexisting contacts by 患者ID, else by number, and update them; see\n`appliance/contacts.py` for the rules.':
        'CSVファイル FILE から連絡先を取り込みます（UTF-8、BOM付きの UTF-8、または Shift_JIS/CP932）。\n\n全部取り込むか、何も取り込まないかのどちらかです。1行でも問題があれば、すべての問題を行番号つきで表示し（見出しが1行目）、何も取り込まず、終了コードは 1 になります。各行は患者IDで、なければ電話番号で既存の連絡先と照合し、その連絡先を更新します。照合のきまりは `appliance/contacts.py` を参照してください。',
    'Check every row and show what would change; write nothing.':
        'すべての行を確認し、何が変わるかを表示します。何も書き込みません。',
    'Export the active contacts as CSV that `contacts import` reads back.':
        '有効な連絡先を、`contacts import` で読み戻せるCSVに書き出します。',
    'cp932 (Shift_JIS, what Excel in Japan expects) or utf-8 (with a BOM; needed for names with characters such as 𠮷).':
        'cp932（Shift_JIS。日本の Excel が前提とする形式）または utf-8（BOM付き。𠮷 のような文字を含む名前に必要）。',
    'Write to this file (created readable by its owner only); default stdout (shown as text when stdout is a terminal).':
        'このファイルに書き出します（所有者だけが読めるように作ります）。既定は標準出力です（標準出力が端末なら文字として表示します）。',
    'List contacts: ID, patient ID, name, kana, number, groups.':
        '連絡先を一覧表示します：ID、患者ID、氏名、フリガナ、電話番号、グループ。',
    'Name, kana or (part of) a number.':
        '氏名、フリガナ、または電話番号（の一部）。',
    'Only members of this group.':
        'このグループのメンバーだけ。',
    'Include deactivated contacts.':
        '無効にした連絡先も含めます。',
    'Whether the contact with NUMBER may be rung when silent after a broadcast ("off": the\nperson asked not to be called; 電話で呼ばない).':
        '一斉送信のあと反応がないとき、NUMBER の連絡先に電話を鳴らしてよいかを設定します（"off"＝電話で呼ばない：本人が電話しないでほしいと言った場合）。',
    "Web UI accounts. Roles: staff (sending, contacts, templates); office (what staff do,\nand the roster's import and export); admin (all that, and users, settings, audit).":
        'Web画面のアカウントを管理します。役割：staff（職員）は送信・連絡先・テンプレート、office（事務）は職員のできることに加えて名簿の取り込みと書き出し、admin（管理者）はそのすべてに加えてユーザー・設定・監査ログ。',
    'Create an account.\n\nPassword: with --password-stdin the first line of standard input is the password; with\n--generate (or when standard input is not a terminal) a strong one is generated and\nprinted once; otherwise you are asked for it twice. At least 12 characters and hard to guess\n(a few unrelated words), without the user name.':
        'アカウントを作成します。\n\nパスワード：--password-stdin を付けると、標準入力の1行目がパスワードになります。--generate を付けると（または標準入力が端末でないときは）強いパスワードを自動で作り、一度だけ表示します。どちらでもなければ、2回入力を求めます。12文字以上で推測されにくいもの（関係のない単語をいくつか組み合わせるとよい）、ユーザー名を含まないものにしてください。',
    'What the account may do (see `tsunagu user --help`).':
        'アカウントの役割（できること）。`tsunagu user --help` を参照してください。',
    "The web UI's language for this user.":
        'このユーザーのWeb画面の言語。',
    'Generate a strong password and print it once.':
        '強いパスワードを自動で作り、一度だけ表示します。',
    'Read the password from the first line of standard input.':
        '標準入力の1行目からパスワードを読み取ります。',
    'Set a new password (every open session of the account ends).\n\nPassword: with --password-stdin the first line of standard input is the password; with\n--generate (or when standard input is not a terminal) a strong one is generated and\nprinted once; otherwise you are asked for it twice. At least 12 characters and hard to guess\n(a few unrelated words), without the user name.':
        '新しいパスワードを設定します（そのアカウントのログイン中のセッションはすべて終了します）。\n\nパスワード：--password-stdin を付けると、標準入力の1行目がパスワードになります。--generate を付けると（または標準入力が端末でないときは）強いパスワードを自動で作り、一度だけ表示します。どちらでもなければ、2回入力を求めます。12文字以上で推測されにくいもの（関係のない単語をいくつか組み合わせるとよい）、ユーザー名を含まないものにしてください。',
    'List accounts: name, role, state, second factor, last login.':
        'アカウントを一覧表示します：名前、役割、状態、2段階認証、最終ログイン。',
    "Remove an account's second factor (a lost phone); it is set up again at next login.":
        'アカウントの2段階認証を外します（スマートフォンをなくしたときなど）。次のログインで設定し直します。',
    'Disable an account (kept for the audit log); the last admin cannot be disabled.':
        'アカウントを無効にします（監査ログのために残します）。最後の管理者は無効にできません。',
    'Staff phones that may command the appliance by SMS (状況, 送信, 中止, ヘルプ), each\nwith a command PIN of 4 to 8 digits.':
        'SMSで装置を操作できる職員の携帯電話を管理します（「状況」「送信」「中止」「ヘルプ」）。それぞれに4〜8桁の操作用の暗証番号（PIN）を設定します。',
    "Register NUMBER as USERNAME's phone, with its command PIN.":
        'NUMBER を USERNAME の携帯電話として、操作用の暗証番号とともに登録します。',
    'Read the PIN from standard input.':
        '暗証番号を標準入力から読み取ります。',
    'Asked to confirm the prepared broadcast after an earthquake or tsunami warning.':
        '当番：緊急地震速報や津波警報のあと、用意した一斉送信を送るかどうかの確認を受けます。',
    'Staff phones: number, user, on call, state (disabled after wrong PINs).':
        '職員の携帯電話を一覧表示します：電話番号、ユーザー、当番、状態（暗証番号の誤りによる停止）。',
    "Forget a staff phone: its SMS are replies like anyone's again.":
        '職員の携帯電話の登録を削除します。その携帯からのSMSは、ほかの人と同じく返信として扱われます。',
    'Set a new command PIN for a staff phone.':
        '職員の携帯電話に、新しい操作用の暗証番号を設定します。',
    'Whether a staff phone is asked after an earthquake or tsunami warning.':
        '緊急地震速報や津波警報のあと、職員の携帯電話に確認を求めるかどうか（当番）を設定します。',
    'Obey a staff phone again after its commands were stopped by wrong PINs.':
        '暗証番号の誤りで止まった職員の携帯電話からの操作を再開します。',
    'Sealed one-time codes for logging in during an emergency when nothing else works.':
        '封をして保管する使い捨ての緊急用コードを管理します。ほかにログインする手段がない緊急時に使います。',
    'Print new codes to seal in an envelope; unused older codes stop working.':
        '封筒に入れて封をする新しいコードを表示します。使っていない古いコードは使えなくなります。',
    'How many codes to print.':
        '表示するコードの数。',
    'How many sealed codes are left, and when one was last used.':
        '封をしたコードの残りの数と、最後に使われた日時を表示します。',
    'The audit log: check its hash chain, export it for an inspector.':
        '監査ログのハッシュチェーンを検証し、監査用に書き出します。',
    'Recompute the hash chain: exit 0 when intact, 1 naming every row that was edited,\ndeleted or reordered, and any saved head the log no longer holds.':
        'ハッシュチェーンを計算し直します。改ざんがなければ終了コード 0、あれば 1 で、書き換え・削除・並べ替えのあったすべての行と、ログにもう含まれていない保存済みの先頭の記録を示します。',
    'A saved chain head (…audit-head, e.g. from a USB stick) to check against; the ones beside the backups are always checked.':
        '照合に使う、保存済みの先頭の記録（…audit-head。例：USBメモリにあるもの）。バックアップと同じ場所にあるものは常に照合します。',
    "The log as CSV (UTF-8, Excel opens it) with each row's chain hash, for an inspector.":
        '監査ログを、各行のチェーンハッシュ付きのCSV（UTF-8、Excelで開けます）で監査用に書き出します。',
    "First day (YYYY-MM-DD, the clinic's time zone).":
        '最初の日（YYYY-MM-DD。クリニックのタイムゾーン）。',
    'Day after the last (YYYY-MM-DD).':
        '最後の日の翌日（YYYY-MM-DD）。',
    'Write to this file (default: standard output).':
        'このファイルに書き出します（既定：標準出力）。',
    "API tokens for the clinic's other systems, and their webhooks (README, Integrating).":
        'クリニックの他のシステム用の API トークンと、その Webhook を管理します（README の Integrating を参照）。',
    'Make a token called NAME (the system that uses it); it is printed once.':
        'NAME（使うシステムの名前）のトークンを作ります。トークンは一度だけ表示されます。',
    'Comma-separated: send, read, contacts, reminders.':
        'カンマ区切りで指定します：send, read, contacts, reminders。',
    'Requests a minute (default: [api] rate_per_minute).':
        '1分あたりのリクエスト数（既定：[api] rate_per_minute）。',
    'Every token: name, scopes, limit, last use, revoked or not, its webhook.':
        'すべてのトークンを表示します：名前、権限（スコープ）、上限、最後に使われた日時、無効にしたかどうか、Webhook。',
    "Revoke NAME's token: it stops working at once, and its webhook with it.":
        'NAME のトークンを無効にします。すぐに使えなくなり、その Webhook も止まります。',
    "Set NAME's webhook. Its signing secret is printed once: when the webhook is new, or\nwith --new-secret.":
        'NAME の Webhook を設定します。署名用の秘密鍵は、Webhook を新しく作ったときと --new-secret を付けたときに一度だけ表示されます。',
    'Where events are POSTed (http:// or https://).':
        'できごとを POST する送り先（http:// または https://）。',
    "Comma-separated event names, or 'all'.":
        "カンマ区切りのできごとの名前、または 'all'。",
    'Make a new signing secret (printed once).':
        '署名用の秘密鍵を作り直します（一度だけ表示します）。',
    'Recent webhook deliveries, newest first.':
        '最近の Webhook の通知を新しい順に表示します。',
    'Only those that failed.':
        '失敗したものだけ。',
    'Send webhook deliveries again (by id, or all failed ones of a token).':
        'Webhook の通知をもう一度送ります（ID で指定するか、1つのトークンの失敗したものすべて）。',
    "Every failed delivery of this token's webhook.":
        'このトークンの Webhook で失敗した通知すべて。',
    'Personal reminders: kinds (rules), the appointments file, what was sent or missed.':
        '一人ひとりへのお知らせを管理します。種類（送信のきまり）、予約ファイル、送ったもの・送れなかったものを扱います。',
    'Import appointments from a CSV FILE (UTF-8 or Shift_JIS/CP932), all or nothing.\n\nColumns: 患者ID and/or 携帯電話, 種類, 予約日 + 時刻 (or 予約日時); optional 予約ID,\n状態 (キャンセル withdraws), 氏名. Any row with a problem refuses the whole file.':
        'CSVファイル FILE から予約を取り込みます（UTF-8 または Shift_JIS/CP932）。全部取り込むか、何も取り込まないかのどちらかです。\n\n列：「患者ID」と「携帯電話」の一方または両方、「種類」、「予約日」と「時刻」（または「予約日時」）。任意で「予約ID」、「状態」（「キャンセル」で取り消し）、「氏名」。1行でも問題があれば、ファイル全体を取り込みません。',
    'Check every row and show what would change.':
        'すべての行を確認し、何が変わるかを表示します。',
    'Reminders by appointment time: state, planned send time, the reply.':
        'お知らせを予約日時の順に表示します：状態、送信予定日時、返信。',
    'Only those that could not go in time or failed.':
        '間に合わなかったもの、または失敗したものだけ。',
    'The kinds and their rules.':
        'お知らせの種類と、その送信のきまりを表示します。',
    'Add a reminder kind called NAME (透析予約, 採血…).':
        'NAME という名前のお知らせの種類を追加します（透析予約、採血…）。',
    'The message: {name}, {date}, {time}, {original_time}…':
        '本文：{name}、{date}、{time}、{original_time}… を使えます。',
    "A saved template's name instead.":
        '本文の代わりに使う、保存済みのテンプレートの名前。',
    'Sent instead when an appointment already announced moved.':
        'お知らせ済みの予約が変更されたときに、代わりに送る本文。',
    'Send this many days before…':
        '予約のこの日数前の…',
    '…at this time (HH:MM).':
        '…この時刻（HH:MM）に送ります。',
    'Or this many hours before.':
        'または、予約のこの時間数前に送ります。',
    'No SMS in these hours, e.g. 21:00-08:00.':
        'この時間帯にはSMSを送りません。例：21:00-08:00。',
    'Not later than this many minutes before the appointment.':
        '予約のこの分数前までに送ります（それより遅くは送りません）。',
    "Reply choices, e.g. 'はい / 変更したい'.":
        "返信の選択肢。例：'はい / 変更したい'。",
    "The appliance's own Wi-Fi, for staff phones when the clinic LAN is down.":
        '装置自身のWi-Fi：院内LANが止まったときに、職員の携帯電話から使います。',
    'Print the QR codes that join a phone to the hotspot and open the web UI on it.':
        '携帯電話をこのWi-Fi（ホットスポット）につなぐQRコードと、つないだ携帯でWeb画面を開くQRコードを表示します。',
    "The hotspot's NetworkManager profile (written by install.sh --hotspot).":
        'ホットスポットの NetworkManager プロファイル（install.sh --hotspot が書き出したもの）。',
    'Also write the sticker (both codes and their captions) to this .svg file to print.':
        '印刷用のステッカー（2つのコードとその説明）を、この .svg ファイルにも書き出します。',
}
