"""The sandwiching experiment: every seed as a resumable store stage, the pooled paired summary, the human judge.

Arms (accuracy over the items of all seeds, Wilson intervals): the judge alone, the expert alone, the judge with an
honest or a dishonest consultant (both on every item; `consultancy` is their mean, the accuracy of a consultant
assigned a random side, Khan et al. 2024), the judge with a debate, the verification-only rule on the same
transcripts (`rule_*`), and two debate ablations (exact-substring verification, no verification).

Primary figures, paired on the same items: the assisted judge's gain over the judge alone (`gain_vs_judge`) and
over the rule on the same transcripts (`gain_vs_rule`): the rule is what verification gives without reading, so only
the second gain is the judge's own. Each gain has a paired bootstrap CI over items, a paired test (exact McNemar for
0/1 arms, a sign-flip permutation test for the consultancy mean), and the across-seed t interval of the per-seed
gains; the sandwiching ratio (assisted - judge) / (expert - judge) is the share of the gap to the expert closed.
"""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from superalign.errors import SuperalignError
from superalign.sandwich.config import SandwichConfig, from_config
from superalign.sandwich.debate import ExtractiveReader, Verifier
from superalign.sandwich.judge import CONDITIONS, PROTOCOLS, mc_prompt, render, run_seed

# the consultancy arms are the mean of the honest and the dishonest consultant on each item
MEANS = {"consultancy": ("consultancy_honest", "consultancy_dishonest"),
         "rule_consultancy": ("rule_consultancy_honest", "rule_consultancy_dishonest")}
ARMS = ("judge", "expert", "consultancy", "consultancy_honest", "consultancy_dishonest", "debate", "rule_consultancy",
        "rule_consultancy_honest", "rule_consultancy_dishonest", "rule_debate", "overlap_debate", "debate_exact",
        "debate_unchecked")
VS_JUDGE = ("consultancy", "consultancy_honest", "consultancy_dishonest", "debate", "debate_exact", "debate_unchecked")
VS_RULE = {"consultancy": "rule_consultancy", "consultancy_honest": "rule_consultancy_honest",
           "consultancy_dishonest": "rule_consultancy_dishonest", "debate": "rule_debate"}


def _key(sw: SandwichConfig, judge_cfg) -> str:
    blob = json.dumps([sw.model_dump(exclude={"seeds", "human_items"}), judge_cfg.model_dump()], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def accuracy_row(name: str, values, meta: dict) -> dict:
    """A metrics row: accuracy with its Wilson interval (0/1 values) or a bootstrap one (per-item means)."""
    from superalign.stats import bootstrap_ci, rate_ci
    v = np.asarray(values, dtype=float)
    acc, lo, hi = rate_ci(v) if np.all(np.isin(v, (0.0, 1.0))) else bootstrap_ci(v)
    return {"name": name, "value": acc, "lo": lo, "hi": hi, "n": len(v), "meta": meta}


def gain(before, after, n_boot: int = 4000, seed: int = 0) -> dict:
    """after - before on the same items: paired bootstrap CI, exact McNemar p for 0/1 values, else a sign-flip
    permutation p on the per-item differences."""
    from superalign.stats import bootstrap_ci, mcnemar
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape or not len(b):
        raise SuperalignError(f"paired arms differ: {b.shape} vs {a.shape}", "compare arms on the same items")
    diff, lo, hi = bootstrap_ci(a - b, n_boot=n_boot, seed=seed)
    out = {"diff": diff, "lo": lo, "hi": hi, "n": len(a), "better": int(np.sum(a > b)), "worse": int(np.sum(a < b))}
    if np.all(np.isin(np.concatenate([a, b]), (0.0, 1.0))):
        out.update(p=mcnemar(b, a)["p_value"], test="McNemar exact")
    else:
        d = a - b
        flips = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_boot, len(d)))
        out.update(p=float((np.abs((flips * d).mean(1)) >= abs(d.mean()) - 1e-12).mean()), test="sign-flip")
    return out


def ratio_ci(judge, assisted, expert, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(assisted - judge) / (expert - judge) with a paired bootstrap CI over items (nan when expert <= judge)."""
    j, a, e = (np.asarray(x, dtype=float) for x in (judge, assisted, expert))

    def r(jj, aa, ee):
        gap = ee.mean(-1) - jj.mean(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, (aa.mean(-1) - jj.mean(-1)) / np.where(gap > 0, gap, 1), np.nan)
    idx = np.random.default_rng(seed).integers(0, len(j), size=(n_boot, len(j)))
    boots = r(j[idx], a[idx], e[idx])
    boots = boots[np.isfinite(boots)]
    v = float(r(j, a, e))
    if not math.isfinite(v) or len(boots) < n_boot // 2:
        return float("nan"), float("nan"), float("nan")
    return v, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def build_strong(sw: SandwichConfig, seed: int) -> tuple[ExtractiveReader, Verifier]:
    """The strong side and the verifier, sharing one embedder (its encodings are cached per text)."""
    from superalign.models.embedder import Embedder
    from superalign.sandwich.debate import Encodings
    emb = Encodings(Embedder(sw.strong_embedder))
    return (ExtractiveReader(emb, fabricate=sw.fabricate, paraphrase=sw.paraphrase, seed=seed),
            Verifier(emb, mode=sw.verify, threshold=sw.verify_threshold))


def seed_rows(res, key: str, seed: int, verifier) -> dict:
    """Store rows of one seed: the question, one response per condition (what the judge was shown), accuracies."""
    prompts, responses, metrics = [], [], []
    for i, it in enumerate(res.items):
        pid = f"sandwich:{key}:{seed}:{it.id}"
        prompts.append({"id": pid, "kind": "sandwich", "text": mc_prompt(it), "source": it.id, "category": it.fact,
                        "meta": {"options": it.options, "label": it.label, "source_text": it.source,
                                 "item_kind": it.kind}})
        for cond in CONDITIONS:
            c = res.choice[cond][i]
            turns = res.transcripts.get(cond, [[]] * len(res.items))[i]
            shown = None if cond == "debate_unchecked" else verifier
            text = render(it, turns, shown) if turns else ""
            responses.append({"id": f"{pid}:{cond}", "prompt_id": pid, "sample": seed, "text": text,
                              "meta": {"condition": cond, "choice": c, "correct": res.correct[cond][i],
                                       "error": c is None, "turns": [t.kind for t in turns]}})
    for cond in CONDITIONS:
        metrics.append(accuracy_row(f"sandwich/{cond}/accuracy", res.correct[cond],
                                    {"errors": res.errors[cond], "key": key, "seed": seed}))
    return {"prompts": prompts, "responses": responses, "metrics": metrics,
            "info": {"items": len(res.items), "key": key, "verified": res.verified}}


def per_item(store, key: str, seeds: list[int]) -> tuple[dict[str, np.ndarray], list[str], list[int]]:
    """Per-item correctness of every arm over the items of all seeds, in one fixed order (paired across arms),
    with each item's kind and seed."""
    out: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    kinds, item_seeds = [], []
    for seed in seeds:
        rows = store.rows("responses", where="id LIKE ?", params=(f"sandwich:{key}:{seed}:%",))
        by = {(r["prompt_id"], r["meta"]["condition"]): float(r["meta"]["correct"]) for r in rows}
        kind = {p["id"]: p["meta"].get("item_kind", "") for p in
                store.rows("prompts", kind="sandwich", where="id LIKE ?", params=(f"sandwich:{key}:{seed}:%",))}
        for pid in sorted({p for p, _ in by}):
            kinds.append(kind.get(pid, ""))
            item_seeds.append(seed)
            for c in CONDITIONS:
                out[c].append(by[(pid, c)])
    arms = {c: np.asarray(v) for c, v in out.items()}
    arms.update({m: (arms[a] + arms[b]) / 2 for m, (a, b) in MEANS.items()})
    return arms, kinds, item_seeds


def summarize(store, key: str, seeds: list[int]) -> dict:
    from superalign.stats import mean_ci_t
    arms, kinds, item_seeds = per_item(store, key, seeds)
    seeds_of = np.asarray(item_seeds)
    errors = {c: sum(m["meta"]["errors"] for s in seeds
                     for m in store.rows("metrics", stage=f"sandwich/{key}/seed{s}", name=f"sandwich/{c}/accuracy"))
              for c in CONDITIONS}
    per_seed = {s: {a: float(arms[a][seeds_of == s].mean()) for a in ARMS} for s in seeds}
    meta = {"key": key, "seeds": seeds}
    rows, acc = [], {}
    for a in ARMS:
        r = accuracy_row(f"sandwich/{a}/accuracy", arms[a], {**meta, "errors": errors.get(a, 0),
                                                             "per_seed": [per_seed[s][a] for s in seeds]})
        acc[a] = (r["value"], r["lo"], r["hi"])
        rows.append(r)
    per_kind = {k: {a: float(arms[a][np.asarray(kinds) == k].mean()) for a in ARMS} for k in sorted(set(kinds))}

    def paired(name, base_of):
        out = {}
        for a in base_of:
            base = base_of[a]
            g = gain(arms[base], arms[a])
            g["vs"], g["per_seed"] = base, [per_seed[s][a] - per_seed[s][base] for s in seeds]
            g["across_seeds"] = mean_ci_t(g["per_seed"])
            out[a] = g
            rows.append({"name": f"sandwich/{name}/{a}", "value": g["diff"], "lo": g["lo"], "hi": g["hi"], "n": g["n"],
                         "meta": {**meta, **{k: g[k] for k in ("p", "test", "better", "worse", "vs", "per_seed",
                                                               "across_seeds")}}})
        return out
    vs_judge = paired("gain_vs_judge", {a: "judge" for a in VS_JUDGE})
    vs_rule = paired("gain_vs_rule", VS_RULE)
    vs_overlap = paired("gain_vs_overlap", {"debate": "overlap_debate"})
    ratio = {}
    for a in VS_JUDGE:
        ratio[a] = ratio_ci(arms["judge"], arms[a], arms["expert"])
        v, lo, hi = ratio[a]
        rows.append({"name": f"sandwich/ratio/{a}", "value": None if math.isnan(v) else v,
                     "lo": None if math.isnan(lo) else lo, "hi": None if math.isnan(hi) else hi,
                     "n": len(arms[a]), "meta": meta})
    with store.tx() as db:
        db.execute("DELETE FROM metrics WHERE stage='sandwich/summary'")
        store._insert("metrics", rows, {"round": 0, "stage": "sandwich/summary"})
    verified = [json.loads(s["info"]).get("verified", {}) for s in store.stages()
                if s["name"].startswith(f"sandwich/{key}/seed")]
    return {"key": key, "seeds": seeds, "n": len(arms["judge"]), "accuracy": acc, "per_seed": per_seed,
            "per_kind": per_kind, "errors": errors, "gain_vs_judge": vs_judge, "gain_vs_rule": vs_rule,
            "gain_vs_overlap": vs_overlap,
            "ratio": ratio, "verified_rate": {p: float(np.mean([v[p] for v in verified if p in v]))
                                              for p in PROTOCOLS if any(p in v for v in verified)}}


def run(config, store, sw: SandwichConfig | None = None, progress=None, judge=None, strong=None,
        verifier=None) -> dict:
    """Run every seed as a resumable store stage, then write the pooled summary (see `summarize`).

    `judge`/`strong`/`verifier` override the backends (tests pass scripted ones); by default the judge is the role
    `sw.judge_role` (SmolLM2-135M when unbound), the strong side the MiniLM extractive reader and the verifier
    MiniLM meaning verification."""
    from superalign import data, roles
    from superalign.models.config import LocalModel

    sw = sw or from_config(config)
    judge_cfg = config.roles.get(sw.judge_role, LocalModel())
    if getattr(judge_cfg, "backend", "") == "classifier":
        raise SuperalignError(f"role {sw.judge_role!r} is a classifier; the sandwich judge must be a language model",
                              f"bind `roles.{sw.judge_role}` to a local or openai backend")
    key = _key(sw, judge_cfg)
    rows = data.load_all(sw.data)
    store.put("sandwich", {"config": sw.model_dump(), "key": key, "seeds": sw.seeds,
                           "judge": judge_cfg.model_dump(), "strong": getattr(strong, "name", "extractive-minilm")})
    for seed in sw.seeds:
        def stage(seed=seed):
            j = judge if judge is not None else roles.build(judge_cfg, seed=0)
            s, v = strong, verifier
            if s is None or v is None:
                built = build_strong(sw, seed)
                s, v = s or built[0], v or built[1]
            return seed_rows(run_seed(sw, j, s, rows, seed, v), key, seed, v)
        if progress:
            progress(f"seed {seed}")
        store.run_stage(0, f"sandwich/{key}/seed{seed}", stage, role="judge", model=getattr(judge_cfg, "model", ""),
                        seed=seed)
    res = summarize(store, key, sw.seeds)
    if sw.human_items:
        queue_for_humans(store, key, sw.seeds[0], sw.human_items)
    return res


def queue_for_humans(store, key: str, seed: int, n: int) -> int:
    """Put the first `n` debate transcripts of `seed` on the review page: a person judges the
    same debate the model judge saw (label = index of the option they pick)."""
    from superalign import review
    have = {r["target_id"] for r in store.rows("labels", stage="sandwich/human")}
    added = 0
    for p in store.rows("prompts", kind="sandwich", where="id LIKE ?", params=(f"sandwich:{key}:{seed}:%",))[:n]:
        rid = f"{p['id']}:debate"
        if rid in have:
            continue
        review.enqueue(store, rid, head="sandwich", question="Which answer is right? Judge the debate below.",
                       reason="sandwiching: human judge", stage="sandwich/human", options=p["meta"]["options"])
        added += 1
    return added


def human_accuracy(store) -> tuple[int, list[int]]:
    """Per-item correctness of the human judges' answers to queued debates."""
    out = []
    for lab in store.rows("labels", stage="sandwich/human", status="done"):
        pid = lab["target_id"].rsplit(":", 1)[0]
        p = store.rows("prompts", id=pid)
        if p:
            out.append(int(int(lab["label"]) == p[0]["meta"]["label"]))
    return len(out), out
