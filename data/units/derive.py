#!/usr/bin/env python3
"""Derive the project's Vietnamese administrative-unit reference data.

Usage (from the repository root):

    python3 data/units/derive.py ../shared/data/admin-units

The argument is the folder holding the GSO snapshot facts (see its SOURCE.md).
Without it, ../shared/data/admin-units relative to the repository root is used.
Outputs are written next to this script (data/units/):

    thanh-hoa/YYYY-MM-DD.csv          full snapshots of Thanh Hóa (38), one per effective date
    thanh-hoa/2025-07-01.lineage.csv  old commune -> new commune (NQ 1686/NQ-UBTVQH15)
    thanh-hoa/history.csv             manifest read by the loader
    vn-2022-04-10.csv.gz              national snapshot, GSO data date 10/04/2022
    gso-2025-03-01-thanh-hoa-raw.csv  Thanh Hóa as GSO published it on 01/03/2025 (with ghosts)
    README.md

Every check is printed as PASS/FAIL; the script exits with status 1 if any fails.
Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

PROVINCE = "38"  # Thanh Hóa
HEADER = ["code", "name", "kind", "parent_code"]
BASE_DATE = "2019-09-11"
TWO_TIER_DATE = "2025-07-01"

# The two "ghost" rows GSO re-published under TP Thanh Hóa (380) in the second
# 01/01/2025 list and in the 01/03/2025 list (see SOURCE.md):
#   16387 Xã Đông Khê  - the pre-2020 code of Đông Khê; the commune has used 16408
#                         since the 2020-03-01 renumbering, so this is a duplicate.
#   16411 Xã Đông Xuân - a commune deleted before 2019 (absent from every list
#                         since 2019-09-11); NQ 1686/NQ-UBTVQH15 names no xã Đông Xuân.
# They are kept in the raw fixture and dropped from the shipped history.
GHOSTS = {
    "16387": ("Xã Đông Khê", "Xã", "380"),
    "16411": ("Xã Đông Xuân", "Xã", "380"),
}

# Effective dates that the decree log cannot give (it ends 2021-07-01), keyed by the
# GSO transition (from_data_date, to_data_date) in which the change first shows.
# NQ 1291/NQ-UBTVQH15 took effect on 01/01/2025 (Đông Sơn merged into TP Thanh Hóa and
# the other late-2024 changes); GSO published the result as a second list with data
# date 01/01/2025, after a first 01/01/2025 list that did not yet show them.
EFFECTIVE_OVERRIDES = {
    ("2025-01-01", "2025-01-01"): (
        "2025-01-01",
        "NQ 1291/NQ-UBTVQH15 (sắp xếp đơn vị hành chính cấp huyện, cấp xã, Thanh Hóa; "
        "hiệu lực 01/01/2025)",
    ),
}

# Short descriptions for changes dated by the GSO data date (no decree in the inputs).
GSO_DATE_NOTES = {
    "2020-03-01": "đánh số lại mã xã sau NQ 786/NQ-UBTVQH14",
    "2024-05-01": "Xã Minh Tâm thành Thị trấn Hậu Hiền, bỏ Xã Thiệu Phú",
}

SOURCE_2025_07_01 = (
    "NQ 1686/NQ-UBTVQH15 (sắp xếp đơn vị hành chính cấp xã, Thanh Hóa 2025; "
    "chính quyền mới hoạt động từ 01/07/2025, bỏ cấp huyện)"
)

# Old commune names spelt differently in the text of NQ 1686/NQ-UBTVQH15 than in the
# GSO list (the GSO spelling is kept in the outputs): (kind, text spelling) -> GSO spelling.
NQ1686_SPELLINGS = {
    ("xã", "Vân Sơn"): "Văn Sơn",  # khoản 70, huyện Triệu Sơn: GSO 15712 Xã Văn Sơn
    ("xã", "Vân Am"): "Vân Âm",    # khoản 97, huyện Ngọc Lặc: GSO 15076 Xã Vân Âm
}

# Corrections to the upstream 2025 merge mapping for Thanh Hóa. Each one is justified
# by the text of NQ 1686/NQ-UBTVQH15 (input/docs/1686_NQ-UBTVQH15.md), and the
# corrected lineage is re-checked against that text below. Every fix first asserts
# that the upstream row still looks as described, so a fixed upstream shows up.
#   (old_code, new_code, upstream_part, corrected_part or None to drop, reason)
LINEAGE_FIXES = [
    ("16387", "16378", "full", None,
     "ghost 16387 Xã Đông Khê: duplicate of 16408, which is already mapped to Phường Đông Sơn"),
    ("16411", "15853", "full", None,
     "ghost 16411 Xã Đông Xuân: no such commune; khoản 131 (Phường Đông Tiến) names no Đông Xuân"),
    ("14770", "14818", "partial", None,
     "khoản 137 (Phường Quang Trung) names Phường Phú Sơn of thị xã Bỉm Sơn = 14823 (already mapped), "
     "not 14770 Phường Phú Sơn of TP Thanh Hóa"),
    ("14770", "16624", "partial", None,
     "khoản 144 (Phường Trúc Lâm) names xã Phú Sơn of thị xã Nghi Sơn = 16603 (already mapped), "
     "not 14770 Phường Phú Sơn of TP Thanh Hóa"),
    ("14770", "14797", "partial", "full",
     "khoản 127: the whole of Phường Phú Sơn (TP Thanh Hóa) goes to Phường Hạc Thành"),
    ("15598", "15499", "partial", None,
     "khoản 53 (xã Thọ Xuân) lists xã Xuân Trường (15514, already mapped), not xã Trường Xuân"),
    ("15598", "15592", "partial", "full",
     "khoản 60: the whole of xã Trường Xuân goes to xã Xuân Lập"),
]


# --------------------------------------------------------------------------- checks

class Checks:
    """Collects PASS/FAIL lines; the script exits non-zero if any check failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.count = 0

    def __call__(self, ok: bool, what: str, detail: str = "") -> bool:
        self.count += 1
        line = f"  {'PASS' if ok else 'FAIL'}  {what}"
        if detail and not ok:
            line += f"  -- {detail}"
        print(line)
        if not ok:
            self.failed.append(what)
        return ok

    def equal(self, got, want, what: str) -> bool:
        return self(got == want, f"{what}: {got!r}" + ("" if got == want else f" (want {want!r})"))


check = Checks()


def section(title: str) -> None:
    print(f"\n== {title}")


# ------------------------------------------------------------------------- the model

@dataclass(frozen=True)
class Unit:
    level: int  # 1 province, 2 district, 3 commune
    code: str
    name: str
    kind: str
    parent: str  # "" for a province


State = dict  # code -> Unit, one province (or the whole country)


def read_flat(path: Path, province: str | None = None) -> State:
    """Read a derived/units_flat_*.csv file, optionally restricted to one province."""
    state: State = {}
    with path.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            if province is not None and r["province_code"] != province:
                continue
            if r["code"] in state:
                raise SystemExit(f"{path.name}: duplicate code {r['code']}")
            state[r["code"]] = Unit(int(r["level"]), r["code"], r["name"], r["type"], r["parent_code"])
    return state


def read_json_snapshot(path: Path) -> tuple[str, State]:
    """Read a dvhcvn.json GSO snapshot (nested province > district > commune)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    state: State = {}
    for p in doc["data"]:
        state[p["level1_id"]] = Unit(1, p["level1_id"], p["name"], p["type"], "")
        for d in p["level2s"]:
            state[d["level2_id"]] = Unit(2, d["level2_id"], d["name"], d["type"], p["level1_id"])
            for c in d["level3s"]:
                state[c["level3_id"]] = Unit(3, c["level3_id"], c["name"], c["type"], d["level2_id"])
    day, month, year = doc["data_date"].split("/")
    return f"{year}-{month}-{day}", state


def province_of(state: State, code: str) -> str:
    u = state[code]
    while u.level > 1:
        u = state[u.parent]
    return u.code


def ordered_rows(state: State, province: str) -> list[Unit]:
    """Province row, then its districts by code, then its communes by code."""
    units = [u for u in state.values() if province_of(state, u.code) == province]
    return sorted(units, key=lambda u: (u.level, u.code))


def counts(state: State) -> dict[str, int]:
    """Counts in the same vocabulary as snapshot_counts.csv (th38_* columns)."""
    kinds = Counter(u.kind for u in state.values() if u.level == 3)
    return {
        "level2": sum(u.level == 2 for u in state.values()),
        "level3": sum(u.level == 3 for u in state.values()),
        "l3_xa": kinds["Xã"],
        "l3_phuong": kinds["Phường"],
        "l3_thitran": kinds["Thị trấn"],
    }


def fmt_counts(state: State) -> str:
    c = counts(state)
    return (f"{c['level2']} districts, {c['level3']} communes "
            f"({c['l3_xa']} xã, {c['l3_phuong']} phường, {c['l3_thitran']} thị trấn)")


# ---------------------------------------------------------------------- text helpers

# Old-style tone placement ("Hoá") vs new style ("Hóa"): move the tone mark from the
# second to the first vowel of oa/oe/uy so both spellings compare equal.
_OLD_STYLE = {}
for _tone in ("\u0301", "\u0300", "\u0309", "\u0303", "\u0323"):
    for _a, _b in (("o", "a"), ("o", "e"), ("u", "y"), ("O", "a"), ("O", "e"), ("U", "y")):
        _OLD_STYLE[unicodedata.normalize("NFC", _a + _b + _tone)] = unicodedata.normalize("NFC", _a + _tone + _b)


def fold(s: str) -> str:
    """NFC, unified tone placement, lower case, single spaces: for comparing names."""
    s = unicodedata.normalize("NFC", s)
    for old, new in _OLD_STYLE.items():
        s = s.replace(old, new)
    return re.sub(r"\s+", " ", s).strip().lower()


def bare_name(u: Unit) -> str:
    """'Thị trấn Hà Trung' -> 'Hà Trung' (the kind prefix removed, ignoring case:
    GSO writes e.g. 'Thị Trấn Ngọc Lặc')."""
    for prefix in (u.kind, "Xã", "Phường", "Thị trấn", "Đặc khu"):
        if u.name.lower().startswith(prefix.lower() + " "):
            return u.name[len(prefix) + 1:]
    return u.name


# ------------------------------------------------------------------------- writers

def csv_text(rows: list[list[str]], header: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def unit_rows(units: list[Unit]) -> list[list[str]]:
    return [[u.code, u.name, u.kind, u.parent] for u in units]


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    print(f"  wrote {path}")


# -------------------------------------------------------------- the history replay

def read_changes(path: Path) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            out[(r["from_data_date"], r["to_data_date"])].append(r)
    return out


def apply_changes(state: State, rows: list[dict], skip_ghosts: bool) -> State:
    """Apply one GSO transition to a province state.

    Removals go first, then in-place modifications, then additions, because GSO reuses
    codes. Every row's "old" side must match the current state, and the change label
    (renamed / retyped / reparented) must match the fields that differ.
    """
    new = dict(state)
    codes = [r["code"] for r in rows]
    dup = [c for c, n in Counter(codes).items() if n > 1]
    if dup:
        raise SystemExit(f"a code changes twice in one transition: {dup}")
    order = {"removed": 0, "added": 2}
    for r in sorted(rows, key=lambda r: order.get(r["change"], 1)):
        code, level, change = r["code"], int(r["level"]), r["change"]
        if change == "added":
            if skip_ghosts and GHOSTS.get(code) == (r["new_name"], r["new_type"], r["new_parent"]):
                continue  # a known ghost row: not a real unit (see GHOSTS)
            if code in new:
                raise SystemExit(f"added {code} already exists: {new[code]}")
            new[code] = Unit(level, code, r["new_name"], r["new_type"], r["new_parent"])
            continue
        cur = new.get(code)
        if cur is None:
            raise SystemExit(f"{change} {code}: not in the current state")
        if (cur.name, cur.kind, cur.parent) != (r["old_name"], r["old_type"], r["old_parent"]):
            raise SystemExit(f"{change} {code}: old side {r} does not match state {cur}")
        if change == "removed":
            del new[code]
            continue
        labels = set(change.split("+"))
        differs = {
            "renamed": r["old_name"] != r["new_name"],
            "retyped": r["old_type"] != r["new_type"],
            "reparented": r["old_parent"] != r["new_parent"],
        }
        if labels != {k for k, v in differs.items() if v}:
            raise SystemExit(f"{code}: change label {change} does not match the row {r}")
        new[code] = replace(cur, name=r["new_name"], kind=r["new_type"], parent=r["new_parent"])
    # structural sanity: every parent exists and sits one level up
    for u in new.values():
        if u.level > 1:
            p = new.get(u.parent)
            if p is None or p.level != u.level - 1:
                raise SystemExit(f"{u.code} {u.name}: parent {u.parent} missing or wrong level")
    return new


def describe_transition(rows: list[dict]) -> list[str]:
    """Human-readable interpretation of one transition (printed for review)."""
    lines = []
    removed = {r["code"]: r for r in rows if r["change"] == "removed"}
    added = {r["code"]: r for r in rows if r["change"] == "added"}
    # A code renumbering: one code removed and another added in the same transition
    # with the same name, kind and parent (no territorial change).
    renumbered = []
    for a in list(added.values()):
        for rc, rr in list(removed.items()):
            if (rr["old_name"], rr["old_type"], rr["old_parent"]) == (a["new_name"], a["new_type"], a["new_parent"]):
                renumbered.append((rc, a["code"], a["new_name"]))
                del removed[rc]
                del added[a["code"]]
                break
    for old, new, name in sorted(renumbered):
        lines.append(f"renumbered {old} -> {new} {name}")
    for r in rows:
        if r["change"] not in ("added", "removed"):
            note = ""
            if "renamed" in r["change"]:
                gone = [x for x in removed.values() if x["old_parent"] == r["old_parent"]]
                if gone:
                    note = "  [district also lost " + ", ".join(f"{x['code']} {x['old_name']}" for x in gone) + \
                           ": likely a merger keeping this code rather than a pure rename]"
            lines.append(f"{r['change']} {r['code']} {r['old_name']} ({r['old_type']}, {r['old_parent']}) -> "
                         f"{r['new_name']} ({r['new_type']}, {r['new_parent']}){note}")
    for r in removed.values():
        lines.append(f"removed {r['code']} {r['old_name']} ({r['old_parent']})")
    for r in added.values():
        ghost = "  [GHOST, not applied]" if GHOSTS.get(r["code"]) == (r["new_name"], r["new_type"], r["new_parent"]) else ""
        lines.append(f"added {r['code']} {r['new_name']} ({r['new_type']}, {r['new_parent']}){ghost}")
    return lines


def read_decree_log(path: Path) -> list[tuple[str, str, str]]:
    """(commit_date, decree number, description) for every Thanh Hóa decree in the log."""
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            for part in r["message"].split(";"):
                if "thanh hóa" not in fold(part):
                    continue
                m = re.match(r"\s*(\d+/[^:\s]+)\s*:\s*(.+?)\s*$", part)
                if m:
                    out.append((r["commit_date"], m.group(1), m.group(2)))
    return out


def decree_source(number: str, description: str) -> str:
    desc = re.sub(r"^(Về việc|về việc)\s+", "", description).strip()
    desc = desc[:1].lower() + desc[1:]
    return f"NQ {number} ({desc})"


# --------------------------------------------------------- NQ 1686 text cross-check

def parse_nq1686(path: Path) -> dict[str, list[tuple[str, str, bool, str]]]:
    """Parse Điều 1 of NQ 1686/NQ-UBTVQH15 into
    folded new name ("xã hà trung") -> [(old kind, old bare name, partial?, qualifier)].
    Qualifiers like "(thị xã Bỉm Sơn)" are kept for the item they follow.
    """
    t = unicodedata.normalize("NFC", path.read_text(encoding="utf-8"))
    t = t.replace("\\", "").replace("*", "")
    t = re.sub(r"\s+", " ", t)
    body = t[t.index("Điều 1."):t.index("Điều 2.")]
    parts = re.split(r" (\d{1,3})\. ", body)
    clauses = {int(parts[i]): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    result: dict[str, list] = {}
    kind_re = r"(?:các )?(xã|phường|thị trấn) "
    for n, text in sorted(clauses.items()):
        m = re.match(r"Sắp xếp (.*) thành (?:xã|phường) mới có tên gọi (?:là )?(xã|phường) (.+?)\.?$", text)
        if m:
            s = m.group(1)
            # (the text once writes "quy mô dân của", without "số", in khoản 46)
            s = re.sub(r"toàn bộ diện tích tự nhiên, quy mô dân(?: số)? của", "|F|", s)
            s = re.sub(r"một phần diện tích tự nhiên(?:, quy mô dân(?: số)?)? của", "|P|", s)
            s = s.replace("phần còn lại của", "|P|")
            s = re.sub(r" sau khi sắp xếp theo quy định tại khoản \d+(?: và khoản \d+)? Điều này", "", s)
            olds, mode, kind = [], None, None
            for seg in s.split("|"):
                if seg in ("F", "P"):
                    mode = seg
                    continue
                for item in re.split(r",| và ", seg):
                    item = item.strip()
                    if not item:
                        continue
                    km = re.match(kind_re, item)
                    if km:
                        kind, item = km.group(1), item[km.end():]
                    qm = re.match(r"^(.*?) \((.*)\)$", item)
                    name, qual = (qm.group(1), qm.group(2)) if qm else (item, "")
                    if kind is None or mode is None:
                        raise SystemExit(f"NQ 1686 khoản {n}: cannot parse {item!r}")
                    name = NQ1686_SPELLINGS.get((kind, name), name)
                    olds.append((kind, name, mode == "P", qual, n))
            key = fold(f"{m.group(2)} {m.group(3)}")
            if key in result:
                raise SystemExit(f"NQ 1686: new name {key} appears twice")
            result[key] = olds
        elif "không thực hiện sắp xếp là các xã" in text:
            # the communes left as they are: one full predecessor with the same name
            lst = text.split("không thực hiện sắp xếp là các xã", 1)[1].rstrip(". ")
            for item in re.split(r",", lst):
                item = item.strip()
                qm = re.match(r"^(.*?) \((.*)\)$", item)
                name, qual = (qm.group(1), qm.group(2)) if qm else (item, "")
                result[fold(f"xã {name}")] = [("xã", name, False, qual, n)]
            m2 = re.search(r"có (\d+) đơn vị hành chính cấp xã, gồm (\d+) xã và (\d+) phường", text)
            if m2:
                result["__totals__"] = [tuple(int(x) for x in m2.groups())]
        else:
            raise SystemExit(f"NQ 1686 khoản {n}: unrecognised clause {text[:80]!r}")
    return result


def parse_1027_thanh_hoa(path: Path) -> dict[str, str]:
    """GSO Công văn 1027/CTK-CSCL: code -> name of the new Thanh Hóa communes."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        # cells may carry a line break as "<br>" (e.g. "Tỉnh<br>Thanh Hóa")
        cells = [re.sub(r"\s*<br>\s*", " ", c).strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"\d{5}", cells[1]) and fold(cells[3]) == fold("Tỉnh Thanh Hóa"):
            out[cells[1]] = cells[2]
    return out


# ------------------------------------------------------------------------------ main

def main() -> int:
    repo_root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", nargs="?", default=str(repo_root / ".." / "shared" / "data" / "admin-units"),
                    help="folder with SOURCE.md, derived/, dvhcvn/, ... (default: %(default)s)")
    args = ap.parse_args()
    src = Path(args.source).resolve()
    der = src / "derived"
    out = Path(__file__).resolve().parent
    th_dir = out / "thanh-hoa"
    print(f"source: {src}\noutput: {out}")

    # ---------------------------------------------------------------- inputs
    section("inputs: flat files against the GSO JSON snapshots and snapshot_counts.csv")
    flats = {d: read_flat(der / f"units_flat_{d}.csv") for d in ("2019-09-11", "2022-04-10", "2025-03-01")}
    for folder in ("v20190911", "v20220410", "v20250301"):
        data_date, js = read_json_snapshot(src / "dvhcvn" / folder / "dvhcvn.json")
        check(js == flats[data_date], f"dvhcvn/{folder} (data_date {data_date}) equals units_flat_{data_date}.csv")

    with (der / "snapshot_counts.csv").open(encoding="utf-8", newline="") as f:
        snap_rows = list(csv.DictReader(f))
    for d, st in flats.items():
        row = [r for r in snap_rows if r["data_date"] == d][-1]
        kinds2 = Counter(u.kind for u in st.values() if u.level == 2)
        kinds3 = Counter(u.kind for u in st.values() if u.level == 3)
        got = [sum(u.level == lv for u in st.values()) for lv in (1, 2, 3)] + \
              [kinds2["Quận"], kinds2["Huyện"], kinds2["Thị xã"], kinds2["Thành phố"],
               kinds3["Xã"], kinds3["Phường"], kinds3["Thị trấn"]]
        want = [int(row[k]) for k in ("vn_level1", "vn_level2", "vn_level3", "vn_l2_quan", "vn_l2_huyen",
                                      "vn_l2_thixa", "vn_l2_thanhpho", "vn_l3_xa", "vn_l3_phuong", "vn_l3_thitran")]
        check.equal(got, want, f"national counts {d} (levels 1-3, district kinds, commune kinds)")

    # --------------------------------------------------------- the GSO sequence
    # snapshot_counts.csv lists the 20 GSO lists in order; snapshot_changes.csv holds
    # the differences between consecutive ones, keyed by (from, to) data dates.
    section("replay of snapshot_changes.csv (province 38) over the 20 GSO lists")
    changes = read_changes(der / "snapshot_changes.csv")
    transitions = [(a["data_date"], b["data_date"]) for a, b in zip(snap_rows, snap_rows[1:])]
    check(len(set(transitions)) == len(transitions), "each (from, to) data-date pair names one GSO transition")
    check(set(changes) <= set(transitions), "every change row belongs to a consecutive pair of GSO lists",
          str(set(changes) - set(transitions)))
    th_districts_ever = {u.code for st in flats.values() for u in st.values()
                         if u.level == 2 and province_of(st, u.code) == PROVINCE}
    stray = [r for rows in changes.values() for r in rows if r["province"] != PROVINCE and
             (r["old_parent"] in th_districts_ever | {PROVINCE} or r["new_parent"] in th_districts_ever | {PROVINCE})]
    check(not stray, "no change row of another province touches a Thanh Hóa parent", str(stray[:3]))

    th38 = lambda key: [r for r in changes.get(key, []) if r["province"] == PROVINCE]
    raw = {c: u for c, u in flats[BASE_DATE].items() if province_of(flats[BASE_DATE], c) == PROVINCE}
    clean = dict(raw)
    gso_clean: list[State] = []  # per GSO list: the state as published, minus the ghost rows
    for i, row in enumerate(snap_rows):
        if i > 0:
            rows = th38(transitions[i - 1])
            raw = apply_changes(raw, rows, skip_ghosts=False)
            clean = apply_changes(clean, rows, skip_ghosts=True)
        gso_clean.append(clean)
        want = {k[5:]: int(v) for k, v in row.items() if k.startswith("th38_")}
        ghosts_here = [c for c in GHOSTS if c in raw and c not in clean]
        check.equal(counts(raw), want, f"GSO list {row['data_date']} ({row['source_commit'][:8]}) Thanh Hóa counts")
        if ghosts_here:
            print(f"        (this list carries the ghost rows {ghosts_here}; without them: {fmt_counts(clean)})")
    check(raw == {c: u for c, u in flats["2025-03-01"].items() if province_of(flats["2025-03-01"], c) == PROVINCE},
          "replayed raw state equals units_flat_2025-03-01.csv for province 38 (ghosts included)")
    raw_2025 = raw

    # ------------------------------------------------------------- ghost evidence
    section("the two ghost rows")
    dups = Counter((u.parent, u.name) for u in raw_2025.values() if u.level == 3)
    check.equal(sorted(k for k, n in dups.items() if n > 1), [("380", "Xã Đông Khê")],
                "duplicate (parent, name) communes in the raw 01/03/2025 Thanh Hóa list")
    tree = json.loads((src / "dvhcvn-historical-data" / "tree.json").read_text(encoding="utf-8"))
    for code, (name, kind, parent) in GHOSTS.items():
        in_raw = raw_2025.get(code) == Unit(3, code, name, kind, parent)
        check(in_raw, f"ghost {code} {name} is in the raw 01/03/2025 list under {parent}")
        check(code not in flats["2022-04-10"], f"ghost {code} is absent from the 10/04/2022 list")
        marks = [c[2] for d in tree[PROVINCE][1].values() for k, c in d[1].items() if k == code and len(c) > 2]
        check("Deleted" in marks, f"ghost {code}: the historical tree marks the code Deleted", str(marks))

    # ------------------------------------------------------------ effective dates
    section("effective dates")
    decrees = read_decree_log(der / "historical_decrees_log.tsv")
    log_end = (src / "dvhcvn-historical-data" / "key.txt").read_text().strip()
    log_end = f"{log_end[:4]}-{log_end[4:6]}-{log_end[6:8]}"
    # (effective date, source text, GSO transition, how the date was chosen)
    events: list[tuple[str, str, tuple[str, str], str]] = []
    used_decrees = set()
    for key in transitions:
        if not th38(key):
            continue
        frm, to = key
        window = [d for d in decrees if frm < d[0] <= to]
        if key in EFFECTIVE_OVERRIDES:
            eff, source = EFFECTIVE_OVERRIDES[key]
            how = "legal effective date (not in the decree log)"
        elif len(window) == 1:
            eff, source = window[0][0], decree_source(window[0][1], window[0][2])
            used_decrees.add(window[0][1])
            how = "decree effective date (decree log)"
        elif not window:
            # No Thanh Hóa decree in the log for this window (or the log has ended):
            # date the change by the GSO list that first shows it.
            eff = to
            note = GSO_DATE_NOTES.get(to, "")
            source = f"GSO data date {to}" + (f" ({note})" if note else "")
            how = "GSO data date" + ("" if to <= log_end else " (after the decree log ends)")
        else:
            check(False, f"transition {key}: several Thanh Hóa decrees {window}; cannot choose")
            continue
        check(frm < eff <= to or (frm == to == eff), f"{eff}: inside the GSO window ({frm}, {to}]; {how}")
        events.append((eff, source, key, how))
    th_decrees_since_base = [d for d in decrees if d[0] > BASE_DATE]
    for d in th_decrees_since_base:
        check(d[1] in used_decrees, f"Thanh Hóa decree {d[1]} ({d[0]}) in the log is matched to a change")
    check(len({e[0] for e in events}) == len(events), "one transition per effective date")

    # ------------------------------------------------------- the dated snapshots
    section("Thanh Hóa snapshots by effective date")
    base = {c: u for c, u in flats[BASE_DATE].items() if province_of(flats[BASE_DATE], c) == PROVINCE}
    # (date, state, source text, how the date was chosen, notes on the changes)
    snapshots: list[tuple[str, State, str, str, list[str]]] = [
        (BASE_DATE, base, f"GSO data date {BASE_DATE} (danh mục đơn vị hành chính, base)", "base GSO list", [])]
    state = base
    for eff, source, key, how in events:
        state = apply_changes(state, th38(key), skip_ghosts=True)
        snapshots.append((eff, state, source, how, describe_transition(th38(key))))
    by_date = {d: st for d, st, *_ in snapshots}

    def as_of(date: str) -> State:
        return [st for d, st, *_ in snapshots if d <= date][-1]

    for d, st, source, _, notes in snapshots:
        print(f"  {d}  {fmt_counts(st)}  <- {source}")
        for n in notes:
            print(f"        {n}")

    # against the flat files at the GSO dates where one exists
    th_flat = lambda d: {c: u for c, u in flats[d].items() if province_of(flats[d], c) == PROVINCE}
    check(as_of("2022-04-10") == th_flat("2022-04-10"), "state as of 2022-04-10 equals units_flat_2022-04-10.csv")
    want_2025 = {c: u for c, u in th_flat("2025-03-01").items() if c not in GHOSTS}
    check(as_of("2025-03-01") == want_2025, "state as of 2025-03-01 equals units_flat_2025-03-01.csv minus the ghosts")
    # against every GSO list (ghost rows left out): the dated history must give the
    # same state on each list's data date. The exception is the first of the two
    # 01/01/2025 lists (published 2024-11-21), which predates the NQ 1291 changes.
    for i, row in enumerate(snap_rows):
        label = f"{row['data_date']} ({row['source_commit'][:8]})"
        early_2025 = i + 1 < len(snap_rows) and snap_rows[i + 1]["data_date"] == row["data_date"] == "2025-01-01"
        if early_2025:
            print(f"  skip  GSO list {label}: published before NQ 1291 took effect ({fmt_counts(gso_clean[i])})")
            continue
        check(as_of(row["data_date"]) == gso_clean[i],
              f"dated history as of {row['data_date']} equals GSO list {label} minus ghosts, row by row")

    section("required checks")
    c = counts(by_date["2019-09-11"])
    check(c["level2"] == 27 and c["level3"] == 635, f"2019-09-11: 27 districts, 635 communes ({fmt_counts(by_date['2019-09-11'])})")
    check(counts(by_date["2019-12-01"])["level3"] == 559, f"2019-12-01: 559 communes ({fmt_counts(by_date['2019-12-01'])})")
    s = as_of("2022-04-10")
    check(counts(s)["level2"] == 27 and counts(s)["level3"] == 559, f"2022-04-10: 27 districts, 559 communes ({fmt_counts(s)})")
    n395 = len([u for u in s.values() if u.level == 3 and u.parent == "395"])
    check(n395 == 30, f"2022-04-10: district 395 ({s['395'].name}) has 30 communes ({n395})")
    s = by_date["2025-01-01"]
    check.equal(counts(s), {"level2": 26, "level3": 547, "l3_xa": 452, "l3_phuong": 63, "l3_thitran": 32},
                "2025-01-01 counts")
    check(not (set(GHOSTS) & set(s)), "2025-01-01 has neither ghost row")
    check("405" not in s and all(u.parent != "405" for u in s.values()), "2025-01-01: Huyện Đông Sơn (405) is gone")

    # ------------------------------------------------------- 2025-07-01, 2-tier
    section("2025-07-01 (2-tier)")
    flat_0701 = read_flat(der / "units_flat_2025-07-01.csv", PROVINCE)
    two_tier = {c: (u if u.level == 1 else replace(u, level=3, parent=PROVINCE)) for c, u in flat_0701.items()}
    check(all(u.level in (1, 3) for u in flat_0701.values()), "units_flat_2025-07-01: only levels 1 and 3")
    check(all(u.parent == PROVINCE for u in flat_0701.values() if u.level == 3), "every commune's parent is 38")
    check(two_tier[PROVINCE] == Unit(1, PROVINCE, "Tỉnh Thanh Hóa", "Tỉnh", ""), "province row Tỉnh Thanh Hóa")
    c = counts(two_tier)
    check.equal((c["level2"], c["level3"], c["l3_xa"], c["l3_phuong"]), (0, 166, 147, 19),
                "2025-07-01 (districts, communes, xã, phường)")
    gso1027 = parse_1027_thanh_hoa(src / "dvhcvn-20250701" / "input" / "docs" / "1027_CTK-CSCL.md")
    check({c: u.name for c, u in two_tier.items() if u.level == 3} == gso1027,
          f"2025-07-01 communes equal the GSO Công văn 1027/CTK-CSCL list for Thanh Hóa ({len(gso1027)} rows)")
    # NQ 1686 took effect when adopted (16/6/2025), but the old communes kept working
    # until the new ones started on 01/07/2025, the day districts ceased to exist.
    snapshots.append((TWO_TIER_DATE, two_tier, SOURCE_2025_07_01, "start of the new communes (NQ 1686)", []))
    by_date[TWO_TIER_DATE] = two_tier

    # ----------------------------------------------------------------- lineage
    section("2025-07-01 lineage (merges_2025-07-01_old_to_new.csv, province 38, communes)")
    with (der / "merges_2025-07-01_old_to_new.csv").open(encoding="utf-8", newline="") as f:
        merges = [r for r in csv.DictReader(f) if r["new_province"] == PROVINCE and r["new_level"] == "3"]
    lineage = {(r["old_code"], r["new_code"]): r["part"] for r in merges}
    check(len(lineage) == len(merges), "no repeated (old_code, new_code) pair upstream")
    for old, new, up_part, fixed, reason in LINEAGE_FIXES:
        if not check(lineage.get((old, new)) == up_part, f"fix {old}->{new}: upstream has it as {up_part}"):
            continue
        if fixed is None:
            del lineage[(old, new)]
            print(f"        dropped: {reason}")
        else:
            lineage[(old, new)] = fixed
            print(f"        {up_part} -> {fixed}: {reason}")
    old_state = by_date["2025-01-01"]
    old_communes = {c for c, u in old_state.items() if u.level == 3}
    new_communes = {c for c, u in two_tier.items() if u.level == 3}
    check(not ({o for o, _ in lineage} - old_communes), "every old_code is a commune of the 2025-01-01 file",
          str(sorted({o for o, _ in lineage} - old_communes)))
    check(not ({n for _, n in lineage} - new_communes), "every new_code is a commune of the 2025-07-01 file",
          str(sorted({n for _, n in lineage} - new_communes)))
    check(old_communes <= {o for o, _ in lineage}, "every 2025-01-01 commune has a successor",
          str(sorted(old_communes - {o for o, _ in lineage})))
    check(new_communes <= {n for _, n in lineage}, "every 2025-07-01 commune has a predecessor",
          str(sorted(new_communes - {n for _, n in lineage})))
    per_old = Counter(o for o, _ in lineage)
    bad = [(o, n, p, per_old[o]) for (o, n), p in lineage.items() if (p == "full") != (per_old[o] == 1)]
    check(not bad, "an old commune is 'full' iff it has exactly one successor", str(bad[:5]))
    ham_rong = sorted(o for o, n in lineage if n == "14758")
    check(len(ham_rong) > 1, f"new 14758 {two_tier['14758'].name} has predecessors {ham_rong} "
                             f"(old 14758 was {old_state['14758'].name}: the code is reused)")

    # cross-check against the text of NQ 1686/NQ-UBTVQH15
    text = parse_nq1686(src / "dvhcvn-20250701" / "input" / "docs" / "1686_NQ-UBTVQH15.md")
    totals = text.pop("__totals__", [None])[0]
    check.equal(totals, (166, 147, 19), "NQ 1686 khoản 146 totals (communes, xã, phường)")
    names_new = {fold(u.name): c for c, u in two_tier.items() if u.level == 3}
    check(set(text) == set(names_new), f"NQ 1686 names the same {len(text)} new communes as the 2025-07-01 list",
          str(sorted(set(text) ^ set(names_new))))
    mismatches = []
    for key, olds in text.items():
        new_code = names_new.get(key)
        if new_code is None:
            continue
        want = sorted((fold(k), fold(nm), part) for k, nm, part, _, _ in olds)
        mine = [(o, p) for (o, n), p in lineage.items() if n == new_code]
        got = sorted((fold(old_state[o].kind), fold(bare_name(old_state[o])), p == "partial") for o, p in mine)
        if want != got:
            mismatches.append((key, olds[0][4], want, got))
        for k, nm, part, qual, n in olds:
            if qual:  # "(thị xã Bỉm Sơn)" etc.: the old unit must be in that district
                hit = [o for o, _ in mine if fold(bare_name(old_state[o])) == fold(nm)]
                ok = hit and all(fold(old_state[old_state[o].parent].name) == fold(qual) for o in hit)
                if not ok:
                    mismatches.append((key, n, f"{nm} ({qual})", hit))
    check(not mismatches, "lineage matches NQ 1686 clause by clause (names, kinds, full/partial, districts)",
          "; ".join(map(str, mismatches)))

    # ------------------------------------------------------------------ write
    if check.failed:  # never write reference data that failed a check
        print(f"\n{len(check.failed)} check(s) failed; nothing written:\n  " + "\n  ".join(check.failed))
        return 1
    section("writing")
    written = set()
    for d, st, *_ in snapshots:
        path = th_dir / f"{d}.csv"
        write_text(path, csv_text(unit_rows(ordered_rows(st, PROVINCE)), HEADER))
        written.add(path.name)
    lineage_name = f"{TWO_TIER_DATE}.lineage.csv"
    lin_rows = [[o, n, p] for (o, n), p in sorted(lineage.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
    write_text(th_dir / lineage_name, csv_text(lin_rows, ["old_code", "new_code", "part"]))
    written.add(lineage_name)
    history = [[d, f"{d}.csv", lineage_name if d == TWO_TIER_DATE else "", source] for d, _, source, *_ in snapshots]
    write_text(th_dir / "history.csv", csv_text(history, ["effective_date", "snapshot", "lineage", "source"]))
    written.add("history.csv")
    # remove dated files from an earlier run that this run did not produce
    for p in th_dir.glob("*.csv"):
        if p.name not in written and re.match(r"\d{4}-\d{2}-\d{2}", p.name):
            p.unlink()
            print(f"  removed stale {p}")

    # the national 10/04/2022 list, gzip with mtime=0 so the bytes are reproducible
    nat = flats["2022-04-10"]
    provinces = sorted(c for c, u in nat.items() if u.level == 1)
    nat_rows = [u for p in provinces for u in ordered_rows(nat, p)]
    check(len(nat_rows) == len(nat), "national file: every unit placed under its province")
    nat_counts = Counter(u.level for u in nat_rows)
    check.equal((nat_counts[1], nat_counts[2], nat_counts[3]), (63, 705, 10599),
                "vn-2022-04-10 (provinces, districts, communes)")
    data = gzip.compress(csv_text(unit_rows(nat_rows), HEADER).encode("utf-8"), compresslevel=9, mtime=0)
    (out / "vn-2022-04-10.csv.gz").write_bytes(data)
    print(f"  wrote {out / 'vn-2022-04-10.csv.gz'}")

    # the raw Thanh Hóa part of the 01/03/2025 GSO list, ghosts included (test fixture)
    raw_units = ordered_rows(flats["2025-03-01"], PROVINCE)
    rc = Counter(u.level for u in raw_units)
    check.equal((rc[2], rc[3]), (26, 549), "raw 2025-03-01 Thanh Hóa fixture (districts, communes)")
    check(all(c in {u.code for u in raw_units} for c in GHOSTS), "raw fixture keeps both ghost rows")
    write_text(out / "gso-2025-03-01-thanh-hoa-raw.csv", csv_text(unit_rows(raw_units), HEADER))

    # read back what was written
    section("read-back")
    for d, st, *_ in snapshots:
        with (th_dir / f"{d}.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        ok = rows[0] == HEADER and rows[1] == [PROVINCE, st[PROVINCE].name, st[PROVINCE].kind, ""] and \
            len(rows) - 1 == len(st) and all(re.fullmatch(r"\d{2}|\d{3}|\d{5}", r[0]) for r in rows[1:])
        check(ok, f"thanh-hoa/{d}.csv: header, province row first, {len(rows) - 1} rows, codes zero-padded")
    back = gzip.decompress((out / "vn-2022-04-10.csv.gz").read_bytes()).decode("utf-8").splitlines()
    check(len(back) == 1 + 63 + 705 + 10599, f"vn-2022-04-10.csv.gz decompresses to {len(back) - 1} rows")

    write_text(out / "README.md", readme(snapshots, lineage))

    print(f"\n{check.count - len(check.failed)}/{check.count} checks passed")
    if check.failed:
        print("FAILED:\n  " + "\n  ".join(check.failed))
        return 1
    return 0


def readme(snapshots, lineage) -> str:
    table = []
    for d, st, source, how, _ in snapshots:
        c = counts(st)
        kinds = f"{c['l3_xa']} / {c['l3_phuong']} / {c['l3_thitran']}"
        table.append(f"| {d} | {c['level2']} | {c['level3']} | {kinds} | {how} | {source} |")
    n_partial = sum(p == "partial" for p in lineage.values())
    return f"""# Administrative units of Vietnam: reference data

Generated by `derive.py`; do not edit by hand. To regenerate, from the repository root:

    python3 data/units/derive.py ../shared/data/admin-units

The facts come from the administrative-unit list (danh mục đơn vị hành chính) of the
General Statistics Office of Vietnam (GSO, Tổng cục Thống kê; now Cục Thống kê), taken
at several GSO data dates, and from the 2025 merger mapping (old commune -> new commune)
derived from NQ 1686/NQ-UBTVQH15 of 16/6/2025. Codes are GSO codes and keep their leading
zeros (province 2 digits, district 3, commune 5).

## Files

Every snapshot is a CSV (UTF-8, header `code,name,kind,parent_code`), one row per unit.
`kind` is the GSO type exactly as GSO writes it (Tỉnh, Thành phố Trung ương, Huyện, Quận,
Thị xã, Thành phố, Xã, Phường, Thị trấn, Đặc khu); `parent_code` is empty for a province.
Rows: the province, then its districts by code, then its communes by code.

- `thanh-hoa/YYYY-MM-DD.csv`: full snapshots of Thanh Hóa (province 38), one per date on
  which Thanh Hóa changed, each valid from that date until the next one.
- `thanh-hoa/2025-07-01.csv`: the 2-tier structure: the province and its 166 communes
  (147 xã, 19 phường), each with `parent_code` 38; there are no districts.
- `thanh-hoa/2025-07-01.lineage.csv` (`old_code,new_code,part`): each commune of
  `2025-01-01.csv` to the commune(s) of `2025-07-01.csv` it went into; `part` is `full`
  (all of it) or `partial` (split between several new communes; {n_partial} rows).
  New codes reuse old codes (the new 14758 Phường Hàm Rồng has the code of the old Phường
  Đông Thọ), so a code is not the same unit across 2025-07-01.
- `thanh-hoa/history.csv` (`effective_date,snapshot,lineage,source`): the manifest of the
  files above, in date order.
- `vn-2022-04-10.csv.gz`: the national GSO list of 10/04/2022 (63 provinces, 705 districts,
  10,599 communes), province by province; gzip written with mtime 0 (reproducible bytes).
- `gso-2025-03-01-thanh-hoa-raw.csv`: the Thanh Hóa part of the GSO list of 01/03/2025
  exactly as published, with its two ghost rows (26 districts, 549 communes). A test
  fixture: the importer must catch the ghosts.

## Thanh Hóa dates

| effective date | districts | communes | xã / phường / thị trấn | dated by | source |
|---|---|---|---|---|---|
{chr(10).join(table)}

How the dates were chosen: the history starts from the GSO list of 11/09/2019 and applies,
in order, the differences between consecutive GSO lists. A change is dated by the
effective date of its decree when that is known: NQ 786/NQ-UBTVQH14 (2019-12-01),
NQ 933/NQ-UBTVQH14 (2020-06-01), NQ 1108/NQ-UBTVQH14 (2021-02-01) and
NQ 1260/NQ-UBTVQH14 (2021-07-01), from a log of decrees with their effective dates;
NQ 1291/NQ-UBTVQH15 (2025-01-01, its stated effective date). Otherwise it is dated by
the GSO data date of the first list that shows it: 2020-03-01 (GSO re-numbered 22 commune
codes after the 2019 mergers: same name, kind and district under a new code) and
2024-05-01 (Thị trấn Hậu Hiền). 2025-07-01 is the date the new commune governments began
work and districts ceased to exist; NQ 1686/NQ-UBTVQH15 itself took effect when adopted
(16/6/2025), with the old communes working until then.

Each snapshot is checked against the GSO lists of 10/04/2022 and 01/03/2025 (row by row)
and against the Thanh Hóa counts of all 20 GSO lists from 11/09/2019 to 01/03/2025.

## Ghost rows removed

The GSO lists of 01/01/2025 (second edition) and 01/03/2025 carry two Thanh Hóa commune
codes under Thành phố Thanh Hóa (380) that do not exist:

- `16387 Xã Đông Khê`: the code Đông Khê had before GSO re-numbered it to `16408` on
  2020-03-01; it duplicates `16408 Xã Đông Khê`.
- `16411 Xã Đông Xuân`: a commune deleted before 2019, absent from every list from
  11/09/2019 to 01/01/2025 (first edition); NQ 1686/NQ-UBTVQH15 names no xã Đông Xuân.

Without them Thanh Hóa has 547 communes (452 xã, 63 phường, 32 thị trấn) before 1/7/2025,
the official count. They are left out of `thanh-hoa/2025-01-01.csv` and of the lineage,
and kept in `gso-2025-03-01-thanh-hoa-raw.csv`.

## Corrections to the 2025 merger mapping

The lineage is checked clause by clause against the text of NQ 1686/NQ-UBTVQH15 (names,
kinds, whole or part, and the district named in brackets). The mapping was corrected
where it disagreed with that text:

{chr(10).join(f"- `{o}` -> `{n}`: {'dropped' if f is None else f'{p} changed to {f}'}. {r[:1].upper() + r[1:]}." for o, n, p, f, r in LINEAGE_FIXES)}

Two old names are spelt differently in the text than by GSO (the GSO spelling is kept):

{chr(10).join(f"- text {k} {t}, GSO {k} {g}" for (k, t), g in NQ1686_SPELLINGS.items())}
"""


if __name__ == "__main__":
    sys.exit(main())
