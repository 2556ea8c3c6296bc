"""Writes the broken-CSV corpus beside this file (run it again after changing it).

Each file is something a clinic could really upload: Excel's UTF-16 "Unicode text", a
file from an old European PC, a roster without the number column, landlines, numbers with
notes, duplicates, an unclosed quote, a damaged file with NUL bytes. expected.json says,
for each, the row (None: the whole file) and the words the error must contain, or the
problem codes of each row. The huge files (over 5 MB, over 10,000 rows) are made by the
tests themselves, not stored.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = "患者ID,氏名,フリガナ,携帯電話,施設,透析曜日,時間帯,備考\r\n"
GOOD = "P9001,山田 太郎,ヤマダ タロウ,090-2000-0001,本院,月水金,午前,\r\n"


def rows(*lines: str) -> str:
    return HEADER + GOOD + "".join(line + "\r\n" for line in lines)


CORPUS: dict[str, tuple[bytes, dict]] = {
    "utf16_bom.csv": (rows("P9002,佐藤 花子,サトウ ハナコ,090-2000-0002,本院,月水金,午前,")
                      .encode("utf-16"), {"row": None, "words": "UTF-16"}),
    "utf16_no_bom.csv": (rows().encode("utf-16-le"), {"row": None, "words": "UTF-16"}),
    "latin1.csv": ("name,phone,note\r\nRenée Müller,090-2000-0003,Café ÿ\r\n".encode("latin-1"),
                   {"row": 2, "words": "neither UTF-8 nor Shift_JIS/CP932"}),
    "euc_jp.csv": (rows().encode("euc_jp"),
                   {"row": 1, "words": "neither UTF-8 nor Shift_JIS/CP932"}),
    "missing_phone_column.csv": ("患者ID,氏名,フリガナ\r\nP9001,山田 太郎,ヤマダ タロウ\r\n"
                                 .encode("cp932"),
                                 {"row": 1, "words": "missing column: 携帯電話"}),
    "missing_name_column.csv": ("患者ID,携帯電話\r\nP9001,090-2000-0001\r\n".encode("utf-8"),
                                {"row": 1, "words": "missing column: 氏名"}),
    "two_name_columns.csv": ("氏名,名前,携帯電話\r\n山田,山田,090-2000-0001\r\n".encode("utf-8"),
                             {"row": 1, "words": "both mean name"}),
    "empty.csv": (b"", {"row": None, "words": "the file is empty"}),
    "only_blank_lines.csv": (b"\r\n\r\n\r\n", {"row": None, "words": "the file is empty"}),
    "header_only.csv": (HEADER.encode("cp932"), {"row": None, "words": "no data rows"}),
    "landlines.csv": (rows("P9002,佐藤 花子,サトウ ハナコ,082-000-0000,本院,月水金,午前,",
                           "P9003,鈴木 一郎,スズキ イチロウ,03-1234-5678,本院,月水金,午前,")
                      .encode("cp932"), {"rows": {"3": ["landline"], "4": ["landline"]}}),
    "malformed_numbers.csv": (rows("P9002,佐藤 花子,サトウ ハナコ,090-12,本院,月水金,午前,",
                                   "P9003,鈴木 一郎,スズキ イチロウ,abc,本院,月水金,午前,",
                                   "P9004,高橋 二郎,タカハシ ジロウ,090-1234-56789,本院,,,",
                                   "P9005,田中 三郎,タナカ サブロウ,0120-444-444,本院,,,",
                                   "P9006,伊藤 四郎,イトウ シロウ,050-1234-5678,本院,,,")
                              .encode("cp932"),
                              {"rows": {"3": ["too_short"], "4": ["malformed"], "5": ["too_long"],
                                        "6": ["toll_free"], "7": ["not_mobile"]}}),
    "trailing_text.csv": (rows("P9002,佐藤 花子,サトウ ハナコ,090-2000-0002 (自宅),本院,,,",
                               "P9003,鈴木 一郎,スズキ イチロウ,090-2000-0003 内線,本院,,,")
                          .encode("utf-8-sig"),
                          {"rows": {"3": ["trailing_text"], "4": ["trailing_text"]}}),
    "duplicates.csv": (rows("P9002,佐藤 花子,サトウ ハナコ,090-2000-0002,本院,,,",
                            "P9003,鈴木 一郎,スズキ イチロウ,０９０２００００００１,本院,,,",
                            "P9002,高橋 二郎,タカハシ ジロウ,090-2000-0004,本院,,,")
                       .encode("cp932"),
                       {"rows": {"4": ["duplicate"], "5": ["duplicate"]},
                        "words": {"4": "duplicate of row 2",
                                  "5": "duplicate patient ID of row 3"}}),
    "names_and_numbers_missing.csv": (rows("P9002,,サトウ ハナコ,090-2000-0002,本院,,,",
                                           "P9003,鈴木 一郎,スズキ イチロウ,,本院,,,",
                                           ",,,,,,,",
                                           "P9004,,,,,,,")
                                      .encode("cp932"),
                                      {"rows": {"3": ["name_missing"], "4": ["phone_missing"],
                                                "6": ["name_missing", "phone_missing"]}}),
    "unbalanced_quote.csv": (rows('P9002,"佐藤 花子,サトウ ハナコ,090-2000-0002,本院,,,',
                                  "P9003,鈴木 一郎,スズキ イチロウ,090-2000-0003,本院,,,")
                             .encode("cp932"), {"row": 3, "words": "not valid CSV"}),
    "nul_bytes.csv": (rows("P9002,佐藤\x00花子,サトウ ハナコ,090-2000-0002,本院,,,")
                      .encode("utf-8"), {"row": 3, "words": "NUL"}),
    "unquoted_comma.csv": (rows("P9002,佐藤, 花子,サトウ ハナコ,090-2000-0002,本院,月水金,午前,")
                           .encode("cp932"),
                           {"rows": {"3": ["too_many_cells"]},
                            "words": {"3": "9 cells but the header has 8"}}),
}


def main() -> None:
    expected = {}
    for name, (data, outcome) in CORPUS.items():
        (HERE / name).write_bytes(data)
        expected[name] = outcome
    (HERE / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n",
                                        encoding="utf-8")


if __name__ == "__main__":
    main()
