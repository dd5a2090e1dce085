#!/usr/bin/env python3
"""The k-anonymity release decision of `stackpro run`, done in DuckDB SQL.

A baseline for the benchmark harness: it reads one partition's raw records and chooses the
lattice node and the published row count exactly as `policies::kanon`
(`QiHistogram::decide`) does for a dataset of a policy, so both can be timed side by side
and checked to agree (benches/duckdb/check_agreement.py runs both on many data sets).

    python3 benches/duckdb/kanon.py --input RAW.ndjson [--input MORE...] \\
        --policy policies/default-v2.json --dataset contacts [--threads N] [-v]

prints one JSON line on stdout:

    {"node": "phone=2,ip=2,zip=2,age=1,gender=1,country=0", "outcome": "release",
     "records_in": N, "rows_out": N, "suppressed": N, "nodes_evaluated": N,
     "load_s": x, "decide_s": x, "total_s": x}

`outcome` is `release`, `withheld` (no node fits: the top node, nothing out, every record
suppressed) or `empty`. Inputs: files, folders (searched for `*.ndjson`, `*.json`,
`*.jsonl`, `*.csv`, gzip or zstd compressed too) or glob patterns; DuckDB's readers
decompress `.gz` and `.zst` by extension. CSV files need a header row; `--csv-delimiter`
gives the dataset's delimiter (UCI Adult in benches/data/adult: `;`). All inputs are ONE
release (one tenant, dataset and day: what `stackpro run` makes of one raw partition).

What it computes, as the engine does (policies/src/kanon, hierarchy/, ip.rs, subject.rs):

* Quasi-identifiers are the policy's `generalize` fields and the `mask`/`truncate` fields
  marked `quasi_identifier`, in policy order; the node label is `column=level` pairs
  joined by `,` (policies::report::node_label; the column is the field's `output` name).
  Each hierarchy is compiled from the policy into SQL: level 0 is the transformed value
  (phone masked keeping the last `keep_last_digits[0]` digits, layout kept: `+1 (415)
  555-0134` -> `+* (***) ***-0134`; IP truncated to `ipv4_prefix[0]` / `ipv6_prefix[0]`;
  ZIP to `keep_digits[0]` digits; the exact age; the trimmed value for `suppress`,
  `prefix` and `table`), higher levels are computed from the level-0 value as
  `Hierarchy::generalize` does; the top is `*` (for a table: its last column). A missing
  value (null, absent, blank) is NULL: a value of its own below the top, `*` at the top.
  IPv4-mapped (`::ffff:a.b.c.d`, dotted or hex) and 6to4 (`2002::/16`) IPv6 addresses are
  cut as the IPv4 address they carry (IPv4-compatible `::a.b.c.d` and NAT64 are not); a
  zone (`fe80::1%eth0`) is dropped; IPv6 is read in any case and `::` form and printed as
  RFC 5952. ZIP+4 is cut to its five digits; a JSON number ZIP gets its leading zeros back.
* The subject (`email`) is canonicalized: trimmed, `Name <addr>` and `mailto:` unwrapped,
  `+tag` removed, domain lowercased with one trailing dot dropped, the policy's provider
  rules applied (gmail.com / googlemail.com: dots ignored, one domain), local part
  lowercased; non-ASCII text first has default-ignorable code points removed, fullwidth
  forms and compatibility spaces mapped, is NFC-normalized and lowercased. k counts
  DISTINCT canonical subjects per equivalence class (as 64-bit hashes of the canonical
  form; the engine counts a 64-bit cut of its HMAC: both exact barring a collision). A
  dataset without a subject field counts each record as a subject of its own. A record
  without a subject or record id is left out, as the engine quarantines it; records whose
  id (trimmed, lowercased) repeats are skipped but the first (by file name), as the record
  ledger does within one release.
* Suppression limit: floor(max_suppression * records). A node fits when the records of its
  classes with fewer than k distinct subjects are at most the limit. The chosen node has
  the least level sum; ties: fewest suppressed records, then the lexicographically
  smallest level vector (policy QI order).
* Search (policies/src/kanon/search.rs): the top node first, then a binary search on the
  level sum; a node above one that fits fits, a node below one that fails fails, neither
  is counted; at the least sum, every node not known to fail is counted for the tie rule.
  Before the binary search, Incognito's passes over the single-QI and pair lattices
  (`--seed-depth`): nodes generalizing one or two QIs below the top, cheap to count, whose
  failures prune the middle levels (phone kept at level 0 or 1 fails on its own). The
  single-QI pass gives the floor every node still worth counting lies above (as the
  engine at HEAD gets from its per-QI bound), and counting goes on from the floor's
  classes; each batch of nodes is counted from the smallest table at or below the meet of
  its nodes, rolled up when much smaller (Incognito's roll-up). Counting is SQL: records
  are grouped once into base classes with their subjects, each level of each QI is
  dictionary-encoded to small integers, and a batch of nodes is one GROUPING SETS query
  summing records and subjects per class (subjects seen in several base classes counted
  DISTINCT). None of this changes the answer, only how many nodes are counted:
  `nodes_evaluated` counts the nodes counted in SQL (the engine's count differs).

What it does NOT check (the harness feeds clean data, generated with `--dirty 0`): nothing
is quarantined. Invalid phones (letters, not 7-15 digits), IPs (leading zeros, bad
syntax, an empty zone), ZIPs, ages out of the policy's range or not integers (a string
"39.0" is read as 39; the engine quarantines it), country codes not in the table, values
of the wrong JSON type, text that looks like PII in a value published as is (gender), kept
fields (event_id, source, interest, lead_score bounds), timestamps outside their
partition's day, and invalid subjects (only a missing `@`, local part or domain is
refused) are all taken as they come. Unicode is handled only as far as DuckDB can: no
NFKC (the common fullwidth and space forms are mapped by hand, not the rest), no IDNA (a
Unicode domain and its punycode spelling are two subjects here, one in the engine).
Records released by earlier releases (the record ledger across releases) are not known:
the input is taken as one fresh release.

Timings: load_s is reading the files, computing level-0 values and subjects (once per
distinct raw value) and grouping the records into base classes with their subjects (the
engine's pass 1 and histogram); decide_s is the level dictionaries, the class table and
the lattice search (QiHistogram::decide); total_s runs from before DuckDB's
import to the printed line (the interpreter's own start-up, about 20 ms, is not in it).
"""

from __future__ import annotations

import argparse
import functools
import glob
import itertools
import json
import math
import os
import sys
import time

_T0 = time.perf_counter()  # before DuckDB's import, which is part of the cost

import duckdb  # noqa: E402

TOP = "*"
VERBOSE = False


def log(msg: str) -> None:
    if VERBOSE:
        print(f"[{time.perf_counter() - _T0:8.3f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


class Hier:
    """One quasi-identifier's hierarchy, compiled to SQL."""

    def __init__(self, name: str, spec: dict, policy_dir: str):
        self.name = name
        self.type = spec["type"]
        self.spec = spec
        self.table = None  # for `table`: {value: [level1, ...]}
        t = self.type
        if t == "phone":
            self.keep = list(spec["keep_last_digits"])
            self.height = len(self.keep) + 1
        elif t == "ip":
            self.v4 = list(spec["ipv4_prefix"])
            self.v6 = list(spec["ipv6_prefix"])
            self.height = len(self.v4) + 1
        elif t == "zip":
            self.keep = list(spec["keep_digits"])
            self.height = len(self.keep) + 1
        elif t == "bands":
            self.min, self.max = int(spec["min"]), int(spec["max"])
            self.widths = [int(w) for w in spec["widths"]]
            self.height = len(self.widths) + 2
        elif t == "suppress":
            self.height = 2
        elif t == "prefix":
            self.keep = list(spec["keep_chars"])
            self.height = len(self.keep) + 2
        elif t == "table":
            self.table = parse_table(os.path.join(policy_dir, spec["file"]))
            self.height = len(next(iter(self.table.values()))) + 1
        else:
            raise SystemExit(f"{name}: hierarchy type {t!r} is not a quasi-identifier here")
        self.top = self.height - 1

    # Level 0 from the raw value (a VARCHAR column: JSON strings as they are, numbers and
    # booleans as their JSON text), as (alias, expression) stages, each reading the
    # columns of the ones before it (nested SELECTs: no expression is repeated in full).
    def level0_stages(self, col: str, out: str, tmp: str) -> list[tuple[str, str]]:
        v = f"{tmp}v"
        first = (v, f"nullif(ws_trim({col}), '')")
        t = self.type
        if t == "phone":
            return [first, (out, phone_mask(v, self.keep[0]))]
        if t == "ip":
            return [first, *ip_parse(v, tmp), (out, ip_text(tmp, self.v4[0], self.v6[0]))]
        if t == "zip":
            # `94110-1234` -> 94110; a JSON integer 2139 -> 02139.
            z5 = (f"CASE WHEN regexp_full_match({v}, '[0-9]{{1,4}}') THEN lpad({v}, 5, '0') "
                  f"ELSE left({v}, 5) END")
            return [first, (f"{tmp}z", z5), (out, zip_prefix(f"{tmp}z", self.keep[0]))]
        if t == "bands":
            n = (f"coalesce(TRY_CAST({v} AS BIGINT), "
                 f"TRY_CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT))")
            return [first, (out, f"CAST({n} AS VARCHAR)")]
        # suppress, prefix, table: the trimmed value itself.
        return [first, (out, v)]

    # Levels 1..top from the level-0 value `v` (NULL stays NULL below the top), as stages
    # ending in `outs[level]` for each level.
    def generalize_stages(self, v: str, outs: dict, tmp: str) -> list[tuple[str, str]]:
        stages = []
        if self.type == "ip":
            stages.extend(ip_parse(v, tmp))
        for level, out in outs.items():
            stages.append((out, self.generalize(v, level, tmp)))
        return stages

    def generalize(self, v: str, level: int, tmp: str) -> str:
        t = self.type
        if level >= self.top:
            if t == "table":
                return f"coalesce(hc{self.top}, '{TOP}')"
            return f"'{TOP}'"
        if t == "phone":
            return phone_mask(v, self.keep[level])
        if t == "ip":
            return ip_text(tmp, self.v4[level], self.v6[level])
        if t == "zip":
            return zip_prefix(f"regexp_replace({v}, '[^0-9]', '', 'g')", self.keep[level])
        if t == "bands":
            w = self.widths[level - 1]
            lo = f"(floor(TRY_CAST({v} AS BIGINT) / {w})::BIGINT * {w})"
            return (f"CASE WHEN {v} IS NULL THEN NULL WHEN TRY_CAST({v} AS BIGINT) IS NULL "
                    f"THEN '{TOP}' ELSE CAST({lo} AS VARCHAR) || '-' || "
                    f"CAST({lo} + {w - 1} AS VARCHAR) END")
        if t == "prefix":
            k = self.keep[level - 1]
            return f"(left({v}, {k}) || repeat('*', greatest(length({v}) - {k}, 0)))"
        if t == "table":
            return (f"CASE WHEN {v} IS NULL THEN NULL "
                    f"ELSE coalesce(hc{level}, '{TOP}') END")
        raise AssertionError(t)


def ip_parse(s: str, tmp: str) -> list[tuple[str, str]]:
    """Stages reading an IP text `s` (NULL for none): `{tmp}a` the address (an IPv6 one
    without its zone, lowercased); `{tmp}g` an IPv6 address's eight groups (NULL for a
    dotted quad); `{tmp}n` the IPv4 address an IPv4-mapped or 6to4 address carries, as an
    integer."""
    a, h, g = f"{tmp}a", f"{tmp}h", f"{tmp}g"
    return [
        (a, f"CASE WHEN contains({s}, ':') THEN lower(split_part({s}, '%', 1)) ELSE {s} END"),
        (h, f"CASE WHEN contains({a}, ':') THEN ip6_hex_tail({a}) END"),
        (g, f"CASE WHEN {h} IS NOT NULL THEN ip6_groups({h}) END"),
        (f"{tmp}n", f"""CASE WHEN {g} IS NULL THEN NULL
            WHEN {g}[1] = 0 AND {g}[2] = 0 AND {g}[3] = 0 AND {g}[4] = 0 AND {g}[5] = 0
                 AND {g}[6] = 65535 THEN ({g}[7] << 16) | {g}[8]
            WHEN {g}[1] = 8194 THEN ({g}[2] << 16) | {g}[3] END"""),
    ]


def ip4_dotted_cut(a: str, p: int) -> str:
    """A dotted quad cut to `p` bits. On whole octets, text work: a valid quad's octets
    are canonical (the engine refuses leading zeros)."""
    if p >= 32:
        return a
    if p % 8 == 0:
        keep = p // 8
        if keep == 0:
            return "'0.0.0.0'"
        pattern = "^(" + "\\.".join(["[0-9]+"] * keep) + ")" + "\\.[0-9]+" * (4 - keep) + "$"
        return f"regexp_replace({a}, '{pattern}', '\\1{'.0' * (4 - keep)}')"
    return f"ip4_text(ip4_cut(ip4_int({a}), {p}))"


def ip_text(tmp: str, p4: int, p6: int) -> str:
    """The address of `ip_parse` cut to its prefix, printed (RFC 5952 for IPv6)."""
    return (f"CASE WHEN {tmp}a IS NULL THEN NULL "
            f"WHEN {tmp}g IS NULL THEN {ip4_dotted_cut(f'{tmp}a', p4)} "
            f"WHEN {tmp}n IS NOT NULL THEN ip4_text(ip4_cut({tmp}n, {p4})) "
            f"ELSE ip6_text({tmp}g, {p6}) END")


def chain(rel: str, stages: list[tuple[str, str]]) -> str:
    for alias, expr in stages:
        rel = f"(SELECT *, {expr} AS {alias} FROM {rel})"
    return rel


def phone_mask(v: str, keep: int) -> str:
    """Every ASCII digit of `v` but the last `keep` becomes `*`, the layout kept
    (values::remask_phone): the tail from the `keep`-th digit from the end stays."""
    tail = f"length(regexp_extract(reverse({v}), '^(?:[^0-9]*[0-9]){{0,{keep}}}', 0))"
    return (f"(translate(left({v}, length({v}) - {tail}), '0123456789', '**********') "
            f"|| right({v}, {tail}))")


def zip_prefix(digits: str, keep: int) -> str:
    return (f"(left({digits}, {keep}) || "
            f"repeat('*', greatest(length({digits}) - {keep}, 0)))")


def parse_table(path: str) -> dict:
    """`value;level1;...` rows, as TableHierarchy::parse reads them."""
    rows, width = {}, None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            cols = [c.strip() for c in line.split(";")]
            if len(cols) < 2 or any(not c for c in cols) or (width and len(cols) != width):
                raise SystemExit(f"{path}:{n}: malformed hierarchy row")
            width = len(cols)
            rows[cols[0]] = cols[1:]
    if not rows:
        raise SystemExit(f"{path}: the table has no rows")
    return rows


class Rules:
    def __init__(self, policy_path: str, dataset: str):
        with open(policy_path, encoding="utf-8") as f:
            doc = json.load(f)
        self.k = int(doc["k"])
        self.max_suppression = float(doc.get("max_suppression", 0.0))
        ds = doc["datasets"][dataset]
        self.subject = ds.get("subject")
        self.record_id = ds.get("record_id")
        kind = ds.get("subject_kind") or {"kind": "id"}
        self.subject_kind = kind
        policy_dir = os.path.dirname(os.path.abspath(policy_path))
        self.qis: list[Hier] = []
        self.qi_fields: list[str] = []
        for fld in ds["fields"]:
            action = fld.get("action")
            h = fld.get("hierarchy")
            if not h or h.get("type") == "timestamp":
                continue
            if action == "generalize" or (action in ("mask", "truncate")
                                          and fld.get("quasi_identifier")):
                col = fld.get("output") or fld["name"]
                self.qis.append(Hier(col, h, policy_dir))
                self.qi_fields.append(fld["name"])

    def subject_stages(self, col: str) -> list[tuple[str, str]]:
        """The canonical subject as (alias, expression) stages, each reading the ones
        before it; the last is `subject` (NULL when there is none)."""
        kind = self.subject_kind
        if kind.get("kind") != "email":
            # An opaque id: normalized and trimmed, case kept.
            return [("subject", f"nullif(ws_trim(uni_norm({col})), '')")]
        strip_sub = kind.get("strip_subaddress", True)
        providers = kind.get("providers", [])
        # Non-ASCII: normalized and lowercased first (the engine's Unicode path).
        addr = (f"CASE WHEN regexp_matches({col}, '[^\\x20-\\x7e\\t\\n\\r]') "
                f"THEN unwrap_addr(lower(uni_norm({col}))) ELSE unwrap_addr({col}) END")
        local = "substr(s_addr, 1, strpos(s_addr, '@') - 1)"
        if strip_sub:
            local = (f"CASE WHEN contains({local}, '+') THEN substr(s_addr, 1, strpos(s_addr, '+') - 1) "
                     f"ELSE {local} END")
        domain = "regexp_replace(lower(substr(s_addr, strpos(s_addr, '@') + 1)), '\\.$', '')"
        dom_case, dots = [], []
        for p in providers:
            doms = ", ".join(sql_str(d) for d in p["domains"])
            if p.get("canonical_domain"):
                dom_case.append(f"WHEN s_dom IN ({doms}) THEN {sql_str(p['canonical_domain'])}")
            if p.get("ignore_dots"):
                dots.append(f"s_dom IN ({doms})")
        dom2 = f"CASE {' '.join(dom_case)} ELSE s_dom END" if dom_case else "s_dom"
        loc2 = (f"CASE WHEN {' OR '.join(dots)} THEN replace(s_loc, '.', '') ELSE s_loc END"
                if dots else "s_loc")
        return [
            ("s_addr", addr),
            ("s_loc", local),
            ("s_dom", domain),
            ("subject", f"CASE WHEN strpos(s_addr, '@') = 0 OR s_loc = '' OR s_dom = '' THEN NULL "
                        f"ELSE lower({loc2}) || '@' || ({dom2}) END"),
        ]


MACROS = r"""
-- Surrounding ASCII whitespace removed (DuckDB's trim is slow: only where there is any).
CREATE OR REPLACE MACRO ws_trim(s) AS CASE WHEN s[1] <= ' ' OR s[-1] <= ' '
  THEN trim(s, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)) ELSE s END;
-- Default-ignorable code points and controls removed, the fullwidth ASCII forms and the
-- compatibility spaces and full stops mapped (what NFKC and IDNA do to them), then NFC:
-- DuckDB has no NFKC.
CREATE OR REPLACE MACRO uni_norm(s) AS nfc_normalize(translate(regexp_replace(s,
  '[\x{00AD}\x{034F}\x{061C}\x{115F}\x{1160}\x{17B4}\x{17B5}\x{180B}-\x{180F}\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{206F}\x{3164}\x{FE00}-\x{FE0F}\x{FEFF}\x{FFA0}\x{FFF0}-\x{FFF8}\x{1BCA0}-\x{1BCA3}\x{1D173}-\x{1D17A}\x{E0000}-\x{E0FFF}\x{00}-\x{08}\x{0B}\x{0C}\x{0E}-\x{1F}\x{7F}-\x{9F}]',
  '', 'g'),
  '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～              　。｡',
  '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~               ..'));
-- One round of unwrapping, as policies::subject::unwrap_address: the address inside a
-- final `<...>`, then a `mailto:` prefix (surrounding whitespace ignored).
CREATE OR REPLACE MACRO unwrap1(s) AS regexp_replace(
  regexp_replace(s, '(?s)^.*<([^<]*)>\s*$', '\1'), '^\s*(?i:mailto:)', '');
-- Until nothing changes: four rounds (`Ana <mailto: a@b.c>`, `mailto:<a@b.c>` take two).
CREATE OR REPLACE MACRO unwrap_addr(s) AS CASE
  WHEN contains(s, '<') OR contains(s, ':') THEN ws_trim(unwrap1(unwrap1(unwrap1(unwrap1(s)))))
  ELSE ws_trim(s) END;

-- IP addresses: a dotted quad to an integer; host bits cleared; printed.
CREATE OR REPLACE MACRO ip4_int(s) AS
  (split_part(s, '.', 1)::UBIGINT << 24) | (split_part(s, '.', 2)::UBIGINT << 16)
  | (split_part(s, '.', 3)::UBIGINT << 8) | split_part(s, '.', 4)::UBIGINT;
CREATE OR REPLACE MACRO ip4_cut(n, p) AS
  CASE WHEN p = 0 THEN 0::UBIGINT ELSE n & ((4294967295::UBIGINT << (32 - p)) & 4294967295::UBIGINT) END;
CREATE OR REPLACE MACRO ip4_text(n) AS
  printf('%d.%d.%d.%d', n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);
-- IPv6: an embedded dotted quad as two hex groups, `::` expanded, eight integers.
CREATE OR REPLACE MACRO ip6_hex_tail(a) AS CASE WHEN contains(a, '.') THEN
  regexp_replace(a, '[^:]*$', '') || printf('%x:%x', ip4_int(regexp_extract(a, '[^:]*$')) >> 16,
                                           ip4_int(regexp_extract(a, '[^:]*$')) & 65535)
  ELSE a END;
CREATE OR REPLACE MACRO ip6_fill(hd, tl) AS
  list_concat(hd, list_transform(range(8 - len(hd) - len(tl)), lambda x: '0'), tl);
CREATE OR REPLACE MACRO ip6_part(p) AS CASE WHEN p = '' THEN []::VARCHAR[] ELSE string_split(p, ':') END;
CREATE OR REPLACE MACRO ip6_groups(a) AS list_transform(
  CASE WHEN contains(a, '::') THEN ip6_fill(ip6_part(split_part(a, '::', 1)), ip6_part(split_part(a, '::', 2)))
       ELSE string_split(a, ':') END,
  lambda g: ('0x' || g)::UBIGINT);
CREATE OR REPLACE MACRO ip6_g(g, i, p) AS
  CASE WHEN p >= 16 * (i + 1) THEN g WHEN p <= 16 * i THEN 0::UBIGINT
       ELSE g & ((65535::UBIGINT << (16 - (p - 16 * i))) & 65535::UBIGINT) END;
-- RFC 5952 text of the first four groups cut to p bits (p <= 64) and zeros after.
CREATE OR REPLACE MACRO ip6_text(g, p) AS regexp_replace(regexp_replace(
  printf('%x:%x:%x:%x::', ip6_g(g[1], 0, p), ip6_g(g[2], 1, p), ip6_g(g[3], 2, p), ip6_g(g[4], 3, p)),
  '(:0)+::$', '::'), '^0::$', '::');
"""


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


def is_csv(path: str) -> bool:
    return path.endswith((".csv", ".csv.gz", ".csv.zst"))


def expand_inputs(inputs: list[str]) -> list[str]:
    files = []
    for p in inputs:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                for n in names:
                    if n.endswith((".ndjson", ".ndjson.gz", ".ndjson.zst", ".json",
                                   ".jsonl", ".json.gz", ".jsonl.gz")) or is_csv(n):
                        files.append(os.path.join(root, n))
        elif any(c in p for c in "*?["):
            files.extend(glob.glob(p, recursive=True))
        elif os.path.exists(p):
            files.append(p)
        else:
            raise SystemExit(f"no such input: {p}")
    files = sorted(set(files))
    if not files:
        raise SystemExit("no input files")
    return files


# --------------------------------------------------------------------------------------
# The lattice
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _nodes_with_sum(heights: tuple, total: int) -> tuple:
    return tuple(_nodes_with_sum_uncached(list(heights), total))


def nodes_with_sum(heights: list[int], total: int) -> list[tuple]:
    """All level vectors with this sum, in lexicographic order (search.rs)."""
    return list(_nodes_with_sum(tuple(heights), total))


def _nodes_with_sum_uncached(heights: list[int], total: int) -> list[tuple]:
    out = []

    def go(i: int, left: int, prefix: list):
        if i == len(heights):
            if left == 0:
                out.append(tuple(prefix))
            return
        rest_max = sum(h - 1 for h in heights[i + 1:])
        for level in range(heights[i]):
            if level > left:
                break
            if left - level > rest_max:
                continue
            prefix.append(level)
            go(i + 1, left - level, prefix)
            prefix.pop()

    go(0, total, [])
    return out


def at_or_below(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b))


class Evaluator:
    """Counts nodes in SQL: the records a node suppresses, a batch of nodes per query.

    As the engine's SubjectIndex: a subject seen in one base class only is counted in that
    class beforehand (`ns`); only subjects seen in several (`multi`: one row per class and
    subject) are counted DISTINCT per group. On data where each person keeps their
    quasi-identifiers (`stackpro gen`), `multi` is empty and a node is a plain SUM.

    Roll-ups (Incognito's rollup property): a batch is counted from the smallest table
    already built that is at or below the meet of its nodes; a table at that meet is built
    first when the one it would come from holds 4,096 classes or more: generalizing merges
    classes, and a subject seen in a merged class once still counts once (`multi` rows
    are made DISTINCT again).
    """

    def __init__(self, con, columns: dict, heights: list[int], k: int, has_multi: bool,
                 base_rows: int):
        self.con = con
        # columns[(q, level)] -> column name, absent where the level has a single value
        # (nothing to group by).
        self.columns = columns
        self.all_cols = list(dict.fromkeys(columns.values()))
        self.heights = heights
        self.k = k
        self.has_multi = has_multi
        self.evaluated = 0
        self.queries = 0
        self.work = 0  # class rows read: a cost measure independent of the machine's load
        # level vector -> (classes table, multi table, rows)
        self.tables = {tuple(0 for _ in heights): ("cls", "multi", base_rows)}

    def cols_of(self, node) -> tuple:
        return tuple(self.columns[(q, l)] for q, l in enumerate(node) if (q, l) in self.columns)

    def cols_at_or_above(self, node) -> list:
        return [c for (q, l), c in self.columns.items() if l >= node[q]]

    def table_for(self, nodes: list[tuple], force: bool = False):
        meet = tuple(min(n[q] for n in nodes) for q in range(len(self.heights)))
        if meet in self.tables:
            return self.tables[meet]
        usable = [(rows, lv) for lv, (_, _, rows) in self.tables.items() if at_or_below(lv, meet)]
        rows, lv = min(usable)
        if not force and (lv == meet or rows < 4096 or len(nodes) < 2):
            return self.tables[lv]
        cls, multi, _ = self.tables[lv]
        name = f"roll{len(self.tables)}"  # tables are only added: names stay unique
        cols = ", ".join(self.cols_at_or_above(meet))
        sep = ", " if cols else ""
        t = time.perf_counter()
        self.con.execute(f"CREATE TEMP TABLE {name}_c AS SELECT {cols}{sep}sum(r)::BIGINT AS r, "
                         f"sum(ns)::BIGINT AS ns FROM {cls}" + (f" GROUP BY {cols}" if cols else ""))
        if self.has_multi:
            self.con.execute(f"CREATE TEMP TABLE {name}_m AS SELECT DISTINCT {cols}{sep}s FROM {multi}")
        n = self.con.execute(f"SELECT count(*) FROM {name}_c").fetchone()[0]
        self.work += rows
        log(f"roll-up at {meet}: {n} classes (from {rows}) in {time.perf_counter() - t:.3f}s")
        self.tables[meet] = (f"{name}_c", f"{name}_m", n)
        return self.tables[meet]

    def roll_up_to(self, node: tuple) -> None:
        """Builds the table at `node` (the floor every node counted lies above)."""
        self.table_for([node, node], force=True)

    def suppressed(self, nodes: list[tuple]) -> dict:
        """{node: records suppressed under k}."""
        self.evaluated += len(nodes)
        self.queries += 1
        cls, multi, rows = self.table_for(nodes)
        by_set: dict[tuple, list] = {}
        for n in nodes:
            by_set.setdefault(self.cols_of(n), []).append(n)
        sets = list(by_set)
        used = {c for cols in sets for c in cols}
        allc = [c for c in self.all_cols if c in used]
        # GROUPING() tells the sets apart: bit i (from the left) set where column i of
        # `allc` is not grouped. With no column at all, there is one set: ().
        mask_of = {}
        for cols in sets:
            m = 0
            for i, c in enumerate(allc):
                if c not in cols:
                    m |= 1 << (len(allc) - 1 - i)
            mask_of[m] = cols
        gs = ", ".join("(" + ", ".join(cols) + ")" for cols in sets)
        gid = f"GROUPING({', '.join(allc)})" if allc else "0"
        sel = "".join(f", {c}" for c in allc)
        if not self.has_multi:
            sql = (f"SELECT gid, coalesce(sum(r) FILTER (WHERE n < {self.k}), 0) FROM ("
                   f"SELECT {gid} AS gid, sum(r) AS r, sum(ns) AS n FROM {cls} "
                   f"GROUP BY GROUPING SETS ({gs})) GROUP BY gid")
        else:
            on = " AND ".join(["g.gid = m.gid"] + [f"g.{c} IS NOT DISTINCT FROM m.{c}" for c in allc])
            sql = (f"WITH g AS (SELECT {gid} AS gid{sel}, sum(r) AS r, sum(ns) AS ns FROM {cls} "
                   f"GROUP BY GROUPING SETS ({gs})), "
                   f"m AS (SELECT {gid} AS gid{sel}, count(DISTINCT s) AS nm FROM {multi} "
                   f"GROUP BY GROUPING SETS ({gs})) "
                   f"SELECT g.gid, coalesce(sum(g.r) FILTER (WHERE g.ns + coalesce(m.nm, 0) < {self.k}), 0) "
                   f"FROM g LEFT JOIN m ON {on} GROUP BY g.gid")
        self.work += rows * len(sets)
        t = time.perf_counter()
        got = self.con.execute(sql).fetchall()
        result = {}
        for g, sup in got:
            for n in by_set[mask_of[g]]:
                result[n] = int(sup)
        log(f"{len(nodes)} nodes over {rows} classes in {time.perf_counter() - t:.3f}s")
        return result


class Search:
    """search.rs: binary search on the level sum with monotone pruning: a node above one
    that fits fits, a node below one that fails fails, neither is counted; at the least
    sum that fits, every node not known to fail is counted for the tie rule. As in the
    engine, a level's nodes are tried in lexicographic order, `batch` at a time, until one
    fits. Added before the search (`seed`): Incognito's passes over the single-QI and
    pair lattices, cheap to count, whose failures prune the middle levels; and for the tie
    rule the pending nodes are counted in batches that share their high-cardinality levels,
    so that roll-ups serve them. Neither changes the answer, only what is counted."""

    def __init__(self, ev: Evaluator, heights: list[int], limit: int, batch: int,
                 cardinality: list[list[int]]):
        self.ev = ev
        self.heights = heights
        self.limit = limit
        self.batch = batch
        self.card = cardinality
        # QIs by their level-0 cardinality, highest first.
        self.qi_order = sorted(range(len(heights)), key=lambda q: -cardinality[q][0])
        # Nodes known to fail (every node below one counted to fail) and known to fit
        # (every node above one counted to fit): closed sets, so a look-up decides a node.
        self.dead: set = set()
        self.alive: set = set()
        self.counted_fits: set = set()
        self.best = None  # ((sum, suppressed, node), node, suppressed)

    def clustered(self, node) -> tuple:
        return tuple(-node[q] for q in self.qi_order)

    def known_to_fail(self, node) -> bool:
        return node in self.dead

    def mark(self, node, into: set, step: int) -> None:
        """Adds `node` and every node below (step -1) or above (step +1) it to `into`; a
        node already there has its whole cone there already."""
        stack = [node]
        while stack:
            n = stack.pop()
            if n in into:
                continue
            into.add(n)
            for q, l in enumerate(n):
                if 0 <= l + step < self.heights[q]:
                    stack.append(n[:q] + (l + step,) + n[q + 1:])

    def candidates(self, total: int) -> list[tuple]:
        return [n for n in nodes_with_sum(self.heights, total) if n not in self.dead]

    def floor(self) -> tuple:
        """The lowest level of each QI at which a node may still fit: the nodes that
        generalize one QI alone (counted by `seed`) fail below it, and so does every node
        below those. Every node still worth counting lies above the floor (the engine's
        floor comes from its per-QI bound; this one is exact, so at least as high)."""
        top = [h - 1 for h in self.heights]
        out = []
        for q in range(len(top)):
            level = 0
            while level < top[q] and tuple(level if i == q else t
                                           for i, t in enumerate(top)) in self.dead:
                level += 1
            out.append(level)
        return tuple(out)

    def evaluate(self, batch: list[tuple]) -> bool:
        sup = self.ev.suppressed(batch)
        anyfit = False
        for node in batch:
            s = sup[node]
            if s <= self.limit:
                self.counted_fits.add(node)
                self.mark(node, self.alive, +1)
                rank = (sum(node), s, node)
                if self.best is None or rank < self.best[0]:
                    self.best = (rank, node, s)
                anyfit = True
            else:
                self.mark(node, self.dead, -1)
        return anyfit

    def seed(self, depth: int) -> None:
        """Incognito's first passes: the nodes generalizing at most `depth` QIs below the
        top (the lattices of single QIs, then of pairs), each pass a batch, a node known to
        fail from the pass before left out. Few classes each, so cheap to count; a failing
        one decides every node below it (phone kept at level 0: every node with it)."""
        top = [h - 1 for h in self.heights]
        for d in range(1, depth + 1):
            batches = []
            for qs in itertools.combinations(range(len(top)), d):
                batch = []
                for levels in itertools.product(*(range(top[q]) for q in qs)):
                    node = list(top)
                    for q, l in zip(qs, levels):
                        node[q] = l
                    node = tuple(node)
                    if not self.known_to_fail(node):
                        batch.append(node)
                if batch:
                    batches.append(batch)
            if d == 1:
                # One query for all: a single QI's classes are few.
                batches = [[n for b in batches for n in b]]
            for batch in batches:
                if batch:
                    self.evaluate(batch)
            if d == 1:
                # Everything left to count lies above the floor: count from its classes.
                floor = self.floor()
                if any(floor):
                    self.ev.roll_up_to(floor)

    def exists_at(self, total: int) -> bool:
        if any(n in self.alive for n in nodes_with_sum(self.heights, total)):
            return True
        cands = self.candidates(total)
        for i in range(0, len(cands), self.batch):
            # Nodes found to fail since prune the rest of this level too.
            batch = [n for n in cands[i:i + self.batch] if not self.known_to_fail(n)]
            if batch and self.evaluate(batch):
                return True
        return False

    def best_at(self, total: int):
        """Every node of the least sum not known to fail is counted for the tie rule."""
        pending = [n for n in self.candidates(total) if n not in self.counted_fits]
        pending.sort(key=self.clustered)
        step = max(self.batch, 32)
        for i in range(0, len(pending), step):
            self.evaluate(pending[i:i + step])
        if self.best is None or sum(self.best[1]) != total:
            raise RuntimeError(f"no node with level sum {total} fits")
        return self.best[1], self.best[2]


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


class Timed:
    """The connection, logging each statement's time under --verbose."""

    def __init__(self, con):
        self.con = con

    def execute(self, sql, *args):
        t = time.perf_counter()
        r = self.con.execute(sql, *args)
        if VERBOSE:
            log(f"  {time.perf_counter() - t:.3f}s  {' '.join(sql.split())[:110]}")
        return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", action="append", required=True,
                    help="NDJSON file (.ndjson, .ndjson.gz, .ndjson.zst), folder or glob; repeatable")
    ap.add_argument("--policy", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--batch", type=int, default=8,
                    help="nodes per query while looking for a fit at a level sum (default 8)")
    ap.add_argument("--seed-depth", type=int, default=2,
                    help="Incognito passes before the binary search: nodes generalizing at most "
                         "this many QIs below the top (default 2; 0: none, as the engine)")
    ap.add_argument("--csv-delimiter", default=",",
                    help="for .csv inputs: the delimiter (the dataset's csv_delimiter; default ,)")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 4GB")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="log each step and each batch of nodes on stderr")
    args = ap.parse_args()

    global VERBOSE
    VERBOSE = args.verbose
    rules = Rules(args.policy, args.dataset)
    files = expand_inputs(args.input)

    con = Timed(duckdb.connect(":memory:"))
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = {sql_str(args.memory_limit)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(MACROS)

    # Hierarchy tables (country.csv ...), as DuckDB tables.
    for h in rules.qis:
        if h.table is not None:
            width = h.height - 1
            cols = ", ".join(f"c{i} VARCHAR" for i in range(1, width + 1))
            con.execute(f"CREATE TABLE h_{h.name} (v VARCHAR PRIMARY KEY, {cols})")
            # One statement: executemany inserts row by row (a quarter of a second).
            values = ", ".join("(" + ", ".join(sql_str(c) for c in (v, *row)) + ")"
                               for v, row in h.table.items())
            con.execute(f"INSERT INTO h_{h.name} VALUES {values}")

    # ---- load: read, level 0, subjects, grouped into (class, subject) counts ----------
    # The histogram's work: every transform runs once per DISTINCT raw value (dictionary
    # tables), not once per record; records are grouped by their raw values first.
    t_load = time.perf_counter()
    wanted = ([rules.subject] if rules.subject else []) + rules.qi_fields \
        + ([rules.record_id] if rules.record_id else [])
    file_list = "[" + ", ".join(sql_str(f) for f in files) + "]"
    if all(is_csv(f) for f in files):
        # CSV: every cell text, an empty one missing (as the engine's CSV reader).
        reader = (f"read_csv({file_list}, header = true, all_varchar = true, "
                  f"delim = {sql_str(args.csv_delimiter)}, filename = true)")
        present = {c[0] for c in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    else:
        columns = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in dict.fromkeys(wanted)) + "}"
        reader = (f"read_json({file_list}, format = 'newline_delimited', columns = {columns}, "
                  f"filename = true)")
        present = set(wanted)
    col = lambda c: ident(c) if c in present else "NULL::VARCHAR"  # noqa: E731
    n_qi = len(rules.qis)
    raw_cols = [f"{col(fld)} AS f{i}" for i, fld in enumerate(rules.qi_fields)]
    # Without a subject field, each record is a subject of its own (QiHistogram::add_all).
    raw_cols.append(f"{col(rules.subject)} AS subj" if rules.subject else "NULL::VARCHAR AS subj")
    if rules.record_id:
        raw_cols += [f"{col(rules.record_id)} AS rid", "filename"]
    con.execute(f"CREATE TEMP TABLE src AS SELECT {', '.join(raw_cols)} FROM {reader}")
    records_in = con.execute("SELECT count(*) FROM src").fetchone()[0]
    log(f"read {records_in} records from {len(files)} file(s)")
    fcols = ", ".join([f"f{i}" for i in range(n_qi)] + ["subj"])
    rel = "src"
    if rules.record_id:
        # The record ledger: a record id (trimmed, lowercased) seen twice in a release is
        # released once, the first. Checked cheaply; the exact pass only when ids repeat
        # or carry surrounding whitespace.
        repeats = con.execute(
            "SELECT count(rid) - count(DISTINCT lower(rid)) + count(*) FILTER (WHERE "
            "regexp_matches(rid, '^\\s|\\s$')) FROM src").fetchone()[0]
        if repeats:
            key = "lower(ws_trim(rid))"
            rel = (f"(SELECT * FROM src WHERE nullif({key}, '') IS NOT NULL "
                   f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY filename) = 1)")
        else:
            rel = "(SELECT * FROM src WHERE rid IS NOT NULL AND rid <> '')"
    con.execute(f"CREATE TEMP TABLE rawc AS SELECT {fcols}, count(*)::BIGINT AS r "
                f"FROM {rel} GROUP BY ALL")
    con.execute("DROP TABLE src")
    if VERBOSE:
        log(f"grouped by raw values: {con.execute('SELECT count(*) FROM rawc').fetchone()[0]}")
    # Level 0 of each QI and the subject key, per distinct raw value.
    for i, h in enumerate(rules.qis):
        st = h.level0_stages("raw", "l0", f"t{i}_")
        con.execute(f"CREATE TEMP TABLE m{i} AS SELECT raw, l0 FROM "
                    f"{chain(f'(SELECT DISTINCT f{i} AS raw FROM rawc)', st)}")
    joins = " ".join(f"JOIN m{i} ON rawc.f{i} IS NOT DISTINCT FROM m{i}.raw" for i in range(n_qi))
    qsel = "".join(f"m{i}.l0 AS q{i}, " for i in range(n_qi))
    if rules.subject:
        st = rules.subject_stages("raw")
        con.execute(f"CREATE TEMP TABLE msubj AS SELECT raw, hash(subject) AS s FROM "
                    f"{chain('(SELECT DISTINCT subj AS raw FROM rawc)', st)} WHERE subject IS NOT NULL")
        log("level 0 and subjects of the distinct raw values")
        con.execute(
            f"""CREATE TEMP TABLE base AS
            SELECT {qsel}msubj.s AS s, sum(rawc.r)::BIGINT AS r
            FROM rawc {joins} JOIN msubj ON rawc.subj = msubj.raw
            GROUP BY ALL"""
        )
    else:
        log("level 0 of the distinct raw values")
        con.execute(f"CREATE TEMP TABLE base AS SELECT {qsel}sum(rawc.r)::BIGINT AS r "
                    f"FROM rawc {joins} GROUP BY ALL")
    load_s = time.perf_counter() - t_load
    log("base classes with their subjects")

    # ---- decide ----------------------------------------------------------------------
    t_dec = time.perf_counter()
    records = con.execute("SELECT coalesce(sum(r), 0) FROM base").fetchone()[0]
    heights = [h.height for h in rules.qis]
    top = tuple(h - 1 for h in heights)
    label = lambda node: ",".join(f"{h.name}={l}" for h, l in zip(rules.qis, node))

    # Per QI: each distinct level-0 value with its id at every level (dense ranks; NULL is
    # a value of its own). A level with a single value is not grouped by.
    colmap, cardinality = {}, []
    select_ids, joins = [], []
    for i, h in enumerate(rules.qis):
        outs = {level: f"g{level}" for level in range(1, h.height)}
        join = f" LEFT JOIN h_{h.name} ON h_{h.name}.v = d0.v" if h.table is not None else ""
        hcols = "".join(f", h_{h.name}.c{c} AS hc{c}" for c in range(1, h.height)) if join else ""
        rel = chain(f"(SELECT d0.v, d0.v AS g0{hcols} "
                    f"FROM (SELECT DISTINCT q{i} AS v FROM base) d0{join})",
                    h.generalize_stages("v", outs, "x_"))
        ranks = ", ".join(f"(dense_rank() OVER (ORDER BY g{l}) - 1)::INTEGER AS i{l}"
                          for l in range(h.height))
        con.execute(f"CREATE TEMP TABLE d{i} AS SELECT v, {ranks} FROM {rel}")
        counts = con.execute(
            "SELECT " + ", ".join(f"count(DISTINCT i{l})" for l in range(h.height)) + f" FROM d{i}"
        ).fetchone()
        cardinality.append(list(counts))
        for level in range(h.height):
            if counts[level] > 1:
                name = f"{h.name}_{level}"
                colmap[(i, level)] = name
                select_ids.append(f"d{i}.i{level} AS {ident(name)}")
        joins.append(f"JOIN d{i} ON base.q{i} IS NOT DISTINCT FROM d{i}.v")
    log("level tables")
    idcols = ", ".join(ident(c) for c in colmap.values())
    ids = idcols + (", " if idcols else "")
    # Subjects seen in more than one base class (none where people keep their values).
    has_multi = False
    if rules.subject:
        con.execute("CREATE TEMP TABLE msub AS SELECT s FROM base GROUP BY s HAVING count(*) > 1")
        has_multi = con.execute("SELECT count(*) FROM msub").fetchone()[0] > 0
    coded = (f"SELECT {', '.join(select_ids + (['base.s AS s'] if rules.subject else []) + ['base.r AS r'])} "
             f"FROM base {' '.join(joins)}")
    # Base classes with their records and the subjects seen in them only (subject_index);
    # a row of `base` is one (base class, subject), or (base class) with its records, each
    # its own subject, when the dataset names no subject.
    if not rules.subject:
        con.execute(f"CREATE TEMP TABLE cls AS SELECT {ids}sum(r)::BIGINT AS r, "
                    f"sum(r)::BIGINT AS ns FROM ({coded}) GROUP BY ALL")
    elif not has_multi:
        con.execute(f"CREATE TEMP TABLE cls AS SELECT {ids}sum(r)::BIGINT AS r, "
                    f"count(*)::BIGINT AS ns FROM ({coded}) GROUP BY ALL")
    else:
        con.execute(f"CREATE TEMP TABLE pairs AS SELECT p.*, msub.s IS NOT NULL AS several "
                    f"FROM ({coded}) p LEFT JOIN msub ON p.s = msub.s")
        con.execute(f"CREATE TEMP TABLE cls AS SELECT {ids}sum(r)::BIGINT AS r, "
                    f"count(*) FILTER (WHERE NOT several)::BIGINT AS ns FROM pairs GROUP BY ALL")
        con.execute(f"CREATE TEMP TABLE multi AS SELECT {ids}s FROM pairs WHERE several")
    base_rows = con.execute("SELECT count(*) FROM cls").fetchone()[0]
    if VERBOSE:
        multi_rows = con.execute("SELECT count(*) FROM multi").fetchone()[0] if has_multi else 0
        log(f"{base_rows} base classes; {multi_rows} (class, subject) rows of subjects in several")

    limit = math.floor(rules.max_suppression * records)
    ev = Evaluator(con, colmap, heights, rules.k, has_multi, base_rows)
    max_sum = sum(top)
    if records == 0:
        outcome, node, suppressed = "empty", top, 0
    else:
        search = Search(ev, heights, limit, max(1, args.batch), cardinality)
        if not search.exists_at(max_sum):
            outcome, node, suppressed = "withheld", top, records
        else:
            search.seed(max(1, args.seed_depth))
            lo, hi = 0, max_sum
            while lo < hi:
                mid = (lo + hi) // 2
                if search.exists_at(mid):
                    hi = mid
                else:
                    lo = mid + 1
            node, suppressed = search.best_at(lo)
            outcome = "release"
    decide_s = time.perf_counter() - t_dec
    log(f"{ev.evaluated} nodes in {ev.queries} queries, {ev.work} class rows read")
    rows_out = records - suppressed if outcome == "release" else 0
    out = {
        "node": label(node),
        "outcome": outcome,
        "records_in": int(records_in),
        "rows_out": int(rows_out),
        "suppressed": int(suppressed),
        "nodes_evaluated": ev.evaluated,
        "load_s": round(load_s, 4),
        "decide_s": round(decide_s, 4),
        "total_s": round(time.perf_counter() - _T0, 4),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
