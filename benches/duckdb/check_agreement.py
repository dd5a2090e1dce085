#!/usr/bin/env python3
"""Checks that kanon.py (DuckDB) and `stackpro run` (the Rust engine) agree.

For each case (generated or hand-written raw data, under the default policy or a variant
written next to it), it runs the `stackpro` binary (consent, then `run` with the policy)
and kanon.py on the same raw folder, and compares the chosen node and the rows published.
With --strings it also compares, record by record, kanon.py's level-0 strings with the
values the engine published (policy `probe-a`: phone and IP published at level 0, the other
QIs at node 0 with k=2).

    /tmp/duckvenv/bin/python benches/duckdb/check_agreement.py \\
        [--stackpro /var/cache/stackpro/target/debug/stackpro] [--work /tmp/kanon-agree] \\
        [--quick] [--strings] [--only NAME ...]

Prints one line per case and exits 1 on any disagreement. Data and results stay under
--work (reused on a second run: delete it to regenerate). Needs duckdb (the venv's python)
only for --strings and for kanon.py itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_POLICY = os.path.join(REPO, "policies", "default-v2.json")
LAYOUT = "tenant=t-0042/dataset=contacts/source=gen/dt=2026-11-24"
HASH_KEY = "benchmark-hash-key-0123456789"


# ---- policies --------------------------------------------------------------------------

def write_policies(work: str) -> dict:
    """Variants of default-v2 (beside a copy of its hierarchies), by name."""
    pdir = os.path.join(work, "policies")
    os.makedirs(pdir, exist_ok=True)
    shutil.copytree(os.path.join(REPO, "policies", "hierarchies"),
                    os.path.join(pdir, "hierarchies"), dirs_exist_ok=True)
    with open(DEFAULT_POLICY, encoding="utf-8") as f:
        base = json.load(f)
    out = {"default": DEFAULT_POLICY}

    def save(name, doc):
        path = os.path.join(pdir, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        out[name] = path

    def variant(name, k=None, maxs=None, edit=None):
        d = json.loads(json.dumps(base))
        d["id"] = name
        if k is not None:
            d["k"] = k
        if maxs is not None:
            d["max_suppression"] = maxs
        fields = {f["name"]: f for f in d["datasets"]["contacts"]["fields"]}
        if edit:
            edit(fields, d)
        save(name, d)

    for k in (2, 3, 5, 10):
        variant(f"k{k}", k=k)

    def probe(phone, v4, v6, zipk):
        def edit(fields, d):
            fields["phone"]["hierarchy"]["keep_last_digits"] = phone
            fields["phone"]["quasi_identifier"] = False
            fields["ip"]["hierarchy"].update(ipv4_prefix=v4, ipv6_prefix=v6)
            fields["ip"]["quasi_identifier"] = False
            fields["zip"]["hierarchy"]["keep_digits"] = zipk
        return edit

    variant("probe-a", k=2, maxs=0.99, edit=probe([4], [24], [48], [5, 3]))
    variant("probe-b", k=2, maxs=0.99, edit=probe([2], [16], [32], [3]))

    # One quasi-identifier only: whether a record is published at level 0 depends on
    # exactly which values its level-0 form merges with.
    c = base["datasets"]["contacts"]
    byname = {f["name"]: f for f in c["fields"]}
    others = ["phone", "ip", "zip", "age", "gender", "country", "submitted_at", "source",
              "interest", "lead_score", "name", "message", "user_agent"]
    for name, qi, hier in [
        ("only-phone", "phone", {"type": "phone", "keep_last_digits": [4, 2]}),
        ("only-phone2", "phone", {"type": "phone", "keep_last_digits": [2, 1]}),
        ("only-ip", "ip", {"type": "ip", "ipv4_prefix": [24, 16], "ipv6_prefix": [48, 32]}),
        ("only-ip16", "ip", {"type": "ip", "ipv4_prefix": [16, 8], "ipv6_prefix": [32, 16]}),
        ("only-zip", "zip", {"type": "zip", "keep_digits": [5, 3]}),
    ]:
        for maxs, tag in ((0.99, ""), (0.3, "-s30")):
            d = json.loads(json.dumps(base))
            d["id"], d["k"], d["max_suppression"] = name + tag, 2, maxs
            f = json.loads(json.dumps(byname[qi]))
            f["hierarchy"] = hier
            if f["action"] in ("mask", "truncate"):
                f["quasi_identifier"] = True
            fields = [byname["event_id"], byname["email"], f]
            fields += [{"name": n, "action": "drop"} for n in others if n != qi]
            d["datasets"] = {"contacts": dict(c, fields=fields)}
            save(name + tag, d)
    return out


# ---- data ------------------------------------------------------------------------------

def raw_file(root: str, name: str = "part-0000000000000001.ndjson") -> str:
    d = os.path.join(root, "raw", LAYOUT)
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


def gen(stackpro: str, root: str, records: int, seed: int, people: int | None,
        out_name: str | None = None) -> None:
    if os.path.isdir(os.path.join(root, "raw")):
        return
    out = os.path.join(root, "raw") if out_name is None else raw_file(root, out_name)
    cmd = [stackpro, "gen", "--dataset", "contacts", "--records", str(records), "--seed",
           str(seed), "--dirty", "0", "--out", out]
    if people:
        cmd += ["--people", str(people)]
    subprocess.run(cmd, check=True, capture_output=True)


def edge_cases(root: str) -> None:
    """Each tricky value shared by two subjects; subject spellings that are one person."""
    if os.path.isdir(os.path.join(root, "raw")):
        return
    recs = []
    default = dict(phone="415-555-0100", ip="198.51.100.7", zip="94110", age=39, gender="F",
                   country="US")
    absent = object()

    def add(email, **over):
        r = {"event_id": f"evt-{len(recs) + 1:05d}", "submitted_at": "2026-11-24T12:00:00Z",
             "email": email}
        for k, v in default.items():
            v = over.get(k, v)
            if v is not absent:
                r[k] = v
        recs.append(r)

    def case(field, value):
        for c in range(2):
            add(f"case{len(recs)}-{c}@example.com", **{field: value})

    for p in ["+1 (415) 555-0134", "415.555.0134", "+44 20 7946 0123", "4155550134",
              "415-555-0134", "(415) 555-0134", "+49 30 32074943", " 415 555 0134 ", "555-0134",
              "+1 415 555 0134", "415/555/0134", "+33 1 42 68 53 00", "+1-415-555-0134", None,
              absent, "", "   "]:
        case("phone", p)
    for ip in ["203.0.113.57", " 203.0.113.58 ", "203.0.113.200", "203.0.114.1",
               "::ffff:203.0.113.9", "::FFFF:203.0.113.10", "::ffff:cb00:7109",
               "0:0:0:0:0:ffff:cb00:7109", "2002:cb00:7139::1", "2002:CB00:7139:0:1::9",
               "fe80::1%eth0", "fe80::6ee0:75e:f271:e68b%wlan0", "FE80::1",
               "2001:DB8:1F00:828D:A18D:2F06:1C0D:79D1", "2001:db8:1f00::1", "2001:db8:1f01::1",
               "::1", "::", "2001:db8::", "2001:0:0:1::5", "0:0:5:1::", "0.0.0.0",
               "255.255.255.255", "::203.0.113.1", "64:ff9b::203.0.113.1", "2001:db8:0:0:0:0:0:1",
               "2001:db8:abcd:12::1", "1::", "1:0:0:0:0:0:0:0",
               "2600:1700:3b12:f8e4:a996:99dd:e7fb:7df3", None, absent, ""]:
        case("ip", ip)
    for z in ["94110", "94110-1234", " 94110 ", 2139, "02139", "94112", "94199-0001", None,
              absent, "", 94110]:
        case("zip", z)
    for a in [39, "39", " 39 ", 39.0, 0, 130, 4, 5, 9, 10, 19, 20, 129, "007", None, absent, ""]:
        case("age", a)
    for g in ["M", " M ", "F", "X", "m", True, 1, "non-binary", None, absent, ""]:
        case("gender", g)
    for c in ["US", " US ", "DE", "AQ", "BV", "JP", None, absent, ""]:
        case("country", c)
    same = [("Ana.Ruiz+x@Gmail.com", "anaruiz@googlemail.com"),
            ("ana.ruiz@example.com", "ANA.RUIZ@EXAMPLE.COM"),
            ("  ana.ruiz2@example.com \t", "ana.ruiz2@example.com"),
            ("mailto:ana3@example.com", "MailTo:ana3@example.com"),
            ("Ana Ruiz <ana4@example.com>", "<ana4@example.com>"),
            ('"Ruiz, Ana" <Ana5+news@Example.com>', "ana5@example.com"),
            ("Ana <mailto:ana6@example.com>", "mailto:<ana6@example.com>"),
            ("mailto: ana7@example.com", "ana7@example.com."),
            ("ana8+a+b@example.com", "ana8+@example.com"),
            ("a.n.a.9@gmail.com", "ana9@gmail.com"),
            ("ana10@example.com.", "Ana10@Example.Com"),
            ("mailto:mailto:ana11@example.com", "ana11@example.com"),
            ("\u00c9lodie12@exemple.fr", "e\u0301lodie12@exemple.fr"),
            ("ana13\u200b@example.com", "\ufeffana13@example.com")]
    diff = [("a.na20@example.com", "an.a20@example.com"), ("ana21@example.com", "ana21@example.org"),
            ("ana22@gmail.com", "ana22@gmail.co"), ("ana23@googlemail.co", "ana23@gmail.com")]
    z = 10000
    for a, b in same + diff:
        z += 1
        add(a, zip=f"{z:05d}")
        add(b, zip=f"{z:05d}")
    for i in range(5):  # people seen in several classes
        for zz in ["30301", "30302", "30303"]:
            add(f"multi{i}@example.com", zip=zz, ip=f"192.0.2.{i}")
    with open(raw_file(root), "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def edge_singletons(root: str) -> None:
    """Each tricky value once, one subject each: at k=2 a record is published only when its
    level-0 value merges with another's, so the partitions themselves are compared."""
    if os.path.isdir(os.path.join(root, "raw")):
        return
    recs = []

    def add(**f):
        n = len(recs) + 1
        r = {"event_id": f"e2-{n:05d}", "submitted_at": "2026-11-24T12:00:00Z",
             "email": f"p{n}@example.com", "phone": "415-555-0100", "ip": "198.51.100.7",
             "zip": "94110", "age": 39, "gender": "F", "country": "US"}
        for k, v in f.items():
            if v is None:
                r.pop(k, None)
            else:
                r[k] = v
        recs.append(r)

    phones = ["+1 (415) 555-0134", "+1 (212) 777-0134", "+1 (415) 555-9934", "415-555-0134",
              "416-777-0134", "415.555.0134", "212.999.0134", "4155550134", "+14155550134",
              "2125550134", "+44 20 7946 0123", "+44 21 8888 0123", "+44 20 7946 0199",
              "(415) 555-0134", "(212) 555-0134", " 415-555-0177 ", "415-555-0177",
              "+49 30 32074943", "+49 31 99994943", "555-0134", "555-0135", "+1-415-555-0134",
              "+1-212-555-0134", "415/555/0134", "415 555 0134", "+33 1 42 68 53 00",
              "+33 2 11 11 53 00"]
    for p in phones + [p.replace("0134", "0934") for p in phones]:
        add(phone=p)
    for ip in ["203.0.113.57", "::ffff:203.0.113.9", "::FFFF:203.0.113.10", "::ffff:cb00:7109",
               "2002:cb00:7139::1", "2002:CB00:71ff:0:1::9", "203.0.113.200", "203.0.112.1",
               "2002:cb00:7001::", "fe80::1%eth0", "FE80::2", "fe80::6ee0:75e:f271:e68b%wlan0",
               "2001:DB8:1F00:828D:A18D:2F06:1C0D:79D1", "2001:db8:1f00::1", "2001:db8:1f01::1",
               "2001:db8:1f01:ffff::", "::1", "::", "0:0:0::7", "::203.0.113.1",
               "64:ff9b::203.0.113.1", "64:ff9b::1:2", "2001:db8::", "2001:db8:0:0:0:0:0:1",
               "2001:db8:abcd:12::1", "2001:db8:abcd::9", "1::", "1:0:0:0:0:0:0:7", "0:0:5:1::",
               "0:0:5:2::", "10.1.2.3", "10.1.3.4", "10.1.2.200", "0.0.0.0", "0.0.0.255",
               "255.255.255.255", "255.255.255.1", "2600:1700:3b12:f8e4:a996:99dd:e7fb:7df3",
               "2600:1700:3b12::1", "2600:1700:3b13::1", "2600:1701::1", "::ffff:10.1.2.99",
               "::ffff:10.1.9.9"]:
        add(ip=ip)
    for z in ["94110", "94110-1234", " 94110 ", 2139, "02139", "02199", "94112", "94199-0001",
              "94199", "10001", "10002-9999", 10003, "60614", "60699", 501, "00501", "00599-1234",
              "30303", "30399"]:
        add(zip=z)
    add(phone=None)
    add(ip=None)
    add(zip=None)
    with open(raw_file(root), "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")


def mixed(src_root: str, root: str, seed: int) -> None:
    """Generated records where people move: another network, ZIP or age, or a missing
    gender, so many subjects are seen in several base classes."""
    if os.path.isdir(os.path.join(root, "raw")):
        return
    rnd = random.Random(seed)
    src_dir = os.path.join(src_root, "raw", LAYOUT)
    (name,) = [n for n in os.listdir(src_dir) if n.endswith(".ndjson")]
    with open(os.path.join(src_dir, name), encoding="utf-8") as i, \
            open(raw_file(root), "w", encoding="utf-8") as o:
        for line in i:
            r = json.loads(line)
            x = rnd.random()
            if x < 0.15:
                r["ip"] = f"73.162.{rnd.randrange(4)}.{rnd.randrange(256)}"
            elif x < 0.25:
                r["zip"] = rnd.choice(["94110", "94112", "10001", "60614"])
            elif x < 0.30 and isinstance(r.get("age"), int) and r["age"] < 130:
                r["age"] += 1
            elif x < 0.32:
                r.pop("gender", None)
            o.write(json.dumps(r, ensure_ascii=False) + "\n")


def fresh_ips(src_root: str, root: str, seed: int) -> None:
    """Generated records with a fresh address each (as `gen --profile near-unique` makes
    them, which yesterday's binary lacks): base classes about as many as records, and
    people seen in several."""
    if os.path.isdir(os.path.join(root, "raw")):
        return
    rnd = random.Random(seed)
    src_dir = os.path.join(src_root, "raw", LAYOUT)
    (name,) = [n for n in os.listdir(src_dir) if n.endswith(".ndjson")]
    with open(os.path.join(src_dir, name), encoding="utf-8") as i, \
            open(raw_file(root), "w", encoding="utf-8") as o:
        for line in i:
            r = json.loads(line)
            if rnd.random() < 0.1:
                net = rnd.randrange(64)
                g = [rnd.randrange(65536) for _ in range(6)]
                r["ip"] = ":".join(f"{x:x}" for x in [0x2400 + (net << 4), 0x100 + net, *g[:5], g[5] | 1])
            else:
                a = rnd.choice([x for x in range(1, 224)
                                if x not in (10, 100, 127, 169, 172, 192, 198, 203)])
                r["ip"] = f"{a}.{rnd.randrange(256)}.{rnd.randrange(256)}.{max(1, rnd.randrange(256))}"
            o.write(json.dumps(r, ensure_ascii=False) + "\n")


def duplicated(src_root: str, root: str) -> None:
    """The same object twice in one partition: the second copy is `already_released`."""
    if os.path.isdir(os.path.join(root, "raw")):
        return
    src_dir = os.path.join(src_root, "raw", LAYOUT)
    (name,) = [n for n in os.listdir(src_dir) if n.endswith(".ndjson")]
    for part in ("part-0000000000000001.ndjson", "part-0000000000000002.ndjson"):
        shutil.copy(os.path.join(src_dir, name), raw_file(root, part))


def adult(root: str) -> None:
    """UCI Adult (benches/data/adult): CSV, nine table hierarchies, no subject field."""
    d = os.path.join(root, "raw", "tenant=t-0001/dataset=adult/source=uci/dt=2026-11-24")
    if not os.path.isdir(d):
        os.makedirs(d)
        shutil.copy(os.path.join(REPO, "benches", "data", "adult", "adult.csv"), d)


# ---- runs ------------------------------------------------------------------------------

def run_rust(stackpro: str, root: str, policy_name: str, policy: str, dataset: str = "contacts",
             tenant: str = "t-0042", config: str | None = None) -> dict:
    out = os.path.join(root, f"rust-{policy_name}")
    done = os.path.join(out, "rust.json")
    if not os.path.exists(done):
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        env = dict(os.environ, STACKPRO_HASH_KEY=HASH_KEY)
        state = os.path.join(out, "state")
        subprocess.run([stackpro, "--state", state, "consent", "grant", "--tenant", tenant,
                        "--dataset", dataset], check=True, capture_output=True, env=env)
        cfg = ["--config", config] if config else []
        res = subprocess.run([stackpro, *cfg, "--state", state, "run", "--raw", os.path.join(root, "raw"),
                              "--curated", os.path.join(out, "curated"), "--quarantine",
                              os.path.join(out, "quarantine"), "--policy", policy, "--json"],
                             capture_output=True, env=env, text=True)
        with open(done + ".tmp", "w") as f:
            f.write(res.stdout)
        os.replace(done + ".tmp", done)
    with open(done) as f:
        summary = json.load(f)
    (part,) = summary["partitions"]
    rep = part.get("report") or {}
    return {"node": rep.get("node_label"), "rows_out": rep.get("records_out"),
            "suppressed": rep.get("suppressed"), "nodes": rep.get("nodes_evaluated"),
            "outcome": (rep.get("outcome") or {}).get("status"),
            "curated": os.path.join(out, "curated")}


def run_duck(python: str, root: str, policy: str, dataset: str = "contacts",
             extra: tuple = ()) -> dict:
    res = subprocess.run([python, os.path.join(HERE, "kanon.py"), "--input",
                          os.path.join(root, "raw"), "--policy", policy, "--dataset", dataset,
                          *extra], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    return json.loads(res.stdout)


def check_strings(root: str, policy: str, curated: str) -> str:
    """Record by record, kanon.py's level-0 strings against the published ones."""
    import glob

    import duckdb
    sys.path.insert(0, HERE)
    import kanon
    with open(policy, encoding="utf-8") as f:
        fields = json.load(f)["datasets"]["contacts"]["fields"]
    pdir = os.path.dirname(os.path.abspath(policy))
    hs = [(f["name"], kanon.Hier(f["name"], f["hierarchy"], pdir)) for f in fields
          if f.get("hierarchy") and f["hierarchy"]["type"] != "timestamp"]
    con = duckdb.connect()
    con.execute(kanon.MACROS)
    cols = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in ["event_id"] + [n for n, _ in hs]) + "}"
    files = kanon.expand_inputs([os.path.join(root, "raw")])
    con.execute(f"CREATE TABLE src AS SELECT * FROM read_json({files!r}, "
                f"format = 'newline_delimited', columns = {cols})")
    stages = []
    for i, (n, h) in enumerate(hs):
        stages += h.level0_stages(f'"{n}"', f"mine_{n}", f"t{i}_")
    con.execute(f"CREATE TABLE mine AS SELECT * FROM {kanon.chain('src', stages)}")
    pq = glob.glob(os.path.join(curated, "**", "*.parquet"), recursive=True)
    con.execute(f"CREATE TABLE rust AS SELECT * FROM read_parquet({pq!r})")
    notes = []
    for n, _ in hs:
        bad, total = con.execute(
            f'SELECT count(*) FILTER (WHERE m.mine_{n} IS DISTINCT FROM r."{n}"), count(*) '
            f"FROM mine m JOIN rust r USING (event_id)").fetchone()
        notes.append(f"{n} {total - bad}/{total}")
        if bad:
            ex = con.execute(f'SELECT m."{n}", m.mine_{n}, r."{n}" FROM mine m JOIN rust r '
                             f'USING (event_id) WHERE m.mine_{n} IS DISTINCT FROM r."{n}" '
                             f"LIMIT 5").fetchall()
            notes.append(f"MISMATCH {ex}")
    return "strings equal: " + ", ".join(notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stackpro", default="/var/cache/stackpro/target/debug/stackpro")
    ap.add_argument("--work", default="/tmp/kanon-agree")
    ap.add_argument("--python", default=sys.executable, help="the python that runs kanon.py")
    ap.add_argument("--quick", action="store_true", help="20k-record data sets only")
    ap.add_argument("--strings", action="store_true",
                    help="also compare level-0 strings record by record (probe-a policy)")
    ap.add_argument("--only", nargs="*", help="case names to run")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    pol = write_policies(args.work)
    w = lambda n: os.path.join(args.work, n)  # noqa: E731

    gens = [("g20k-s7", 20_000, 7, None), ("g20k-s11", 20_000, 11, None),
            ("g20k-s7-p1000", 20_000, 7, 1_000), ("g20k-s5-p20000", 20_000, 5, 20_000)]
    if not args.quick:
        gens += [("g100k-s7", 100_000, 7, None), ("g100k-s11", 100_000, 11, None),
                 ("g100k-s3-p5000", 100_000, 3, 5_000), ("g100k-s9-p100000", 100_000, 9, 100_000)]
    cases = []  # (data name, prepare, policies)
    main_pols = ["default", "k2", "k5"]
    for name, n, seed, people in gens:
        cases.append((name, lambda r, n=n, s=seed, p=people: gen(args.stackpro, r, n, s, p),
                      main_pols))
    cases.append(("g20k-s7-p1000-only", lambda r: gen(args.stackpro, r, 20_000, 7, 1_000), ["only-phone", "only-phone-s30", "only-phone2",
                                               "only-ip", "only-zip"]))
    cases.append(("edge", edge_cases, ["default", "k2", "k3", "k10", "probe-a", "probe-b"]))
    cases.append(("edge-singletons", edge_singletons,
                  ["only-phone", "only-phone2", "only-phone-s30", "only-ip", "only-ip16",
                   "only-ip-s30", "only-zip", "only-zip-s30", "k2"]))
    cases.append(("mixed-20k", lambda r: (gen(args.stackpro, w("g20k-s7-p1000"), 20_000, 7, 1_000),
                                          mixed(w("g20k-s7-p1000"), r, 1)),
                  main_pols + ["only-ip", "only-zip"]))
    cases.append(("dup-20k", lambda r: (gen(args.stackpro, w("g20k-s7"), 20_000, 7, None),
                                        duplicated(w("g20k-s7"), r)), main_pols))
    cases.append(("fresh-ip-20k", lambda r: (gen(args.stackpro, w("g20k-s5-p20000"), 20_000, 5, 20_000),
                                             fresh_ips(w("g20k-s5-p20000"), r, 3)),
                  main_pols + ["only-ip"]))
    if not args.quick:
        cases.append(("g100k-s7-gz", lambda r: gen(args.stackpro, r, 100_000, 7, None,
                                                   "part-0000000000000007.ndjson.gz"), ["default"]))
        cases.append(("g100k-s7-zst", lambda r: gen(args.stackpro, r, 100_000, 7, None,
                                                    "part-0000000000000007.ndjson.zst"), ["default"]))
        cases.append(("mixed-100k", lambda r: (gen(args.stackpro, w("g100k-s3-p5000"), 100_000, 3, 5_000),
                                               mixed(w("g100k-s3-p5000"), r, 2)), main_pols))
        cases.append(("fresh-ip-100k", lambda r: (gen(args.stackpro, w("g100k-s9-p100000"), 100_000, 9, 100_000),
                                                  fresh_ips(w("g100k-s9-p100000"), r, 4)), main_pols))
        cases.append(("adult", adult, ["adult"]))

    pol["adult"] = os.path.join(REPO, "benches", "data", "adult", "policy.json")
    failures = 0
    for name, prepare, policies in cases:
        data = name[:-len("-only")] if name.endswith("-only") else name
        if args.only and name not in args.only:
            continue
        root = w(data)
        if prepare:
            prepare(root)
        for p in policies:
            if p == "adult":
                adir = os.path.join(REPO, "benches", "data", "adult")
                rust = run_rust(args.stackpro, root, p, pol[p], "adult", "t-0001",
                                os.path.join(adir, "stackpro.toml"))
                duck = run_duck(args.python, root, pol[p], "adult", ("--csv-delimiter", ";"))
            else:
                rust = run_rust(args.stackpro, root, p, pol[p])
                duck = run_duck(args.python, root, pol[p])
            ok = rust["node"] == duck["node"] and rust["rows_out"] == duck["rows_out"]
            failures += not ok
            print(f"{'OK  ' if ok else 'DIFF'} {name:20s} {p:15s} "
                  f"rust {rust['node']} rows {rust['rows_out']} ({rust['outcome']}) | "
                  f"duckdb {duck['node']} rows {duck['rows_out']} ({duck['outcome']}) "
                  f"{duck['total_s']:.2f}s", flush=True)
            if args.strings and p == "probe-a":
                print("     " + check_strings(root, pol[p], rust["curated"]), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
