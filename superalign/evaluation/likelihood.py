"""Judge-free scores from a model's log-likelihoods: multiple-choice competence and benign helpfulness.

Why not the next-token letter: asked "A./B./C. ... Answer:", the 135M learner answered "A" on 180 of 180 MMLU and
Social IQa items (issue 22), so letter scoring measured the share of gold "A"s, and only training on the answer
format moved it. Two scorings that a letter prior cannot pass, as lm-evaluation-harness scores small models:

- `cloze`: each option's *text* is scored as a continuation of the question, " " + option after the context, and
  the sum of its token log-probs is divided by the option's length in characters. That is lm-eval's `acc_norm`
  (its `process_results` divides by `len(choice)` of the choice string without the leading space; for the ASCII
  text of these tasks that is the byte length). Without it, long options lose merely for having more tokens.
- `letters`: for tasks that must keep the lettered list, the item is asked under every cyclic rotation of its
  options; each option's score is the mean over rotations of the log-probability of the letter it stood under
  (normalised over the item's letters). Every option sits under every letter once, so a preference for a letter
  adds the same amount to every option and cancels.

A record carries `options` (answer texts), `label` (index of the right one), `format` (`cloze` or `letters`),
`context` (the cloze prompt) and `question` (the stem the lettered list follows). A record with only `prompt` and
`choices` (a user's own task file) is scored as before: the choice continuation with the highest log-prob.

Helpfulness (`reference_stage`): the mean per-token log-likelihood of a reference answer to a benign instruction,
under the chat template. It measures how close the model's distribution stays to a good answer's wording: higher
is closer. It is not a judgement of the answers the model writes: a model can rank a reference high and still
generate worse, the score depends on the reference's style as well as its content, and only differences on the
same items (a model against its own round 0) mean anything; the per-token mean is not comparable across
tokenizers.
"""
from __future__ import annotations

import random

import numpy as np

from superalign.data.tasks import LETTERS, mc_prompt

FORMATS = ("cloze", "letters")


def continuation_sums(backend, contexts: list, continuations: list[list[str]]) -> list[list[float]]:
    """Sum of log p(continuation | context) for each continuation of each context. A local model runs each
    context once (`LocalLM.continuation_logprobs`); any other backend scores the (context, continuation) pairs."""
    if hasattr(backend, "continuation_logprobs"):
        return backend.continuation_logprobs(contexts, continuations)
    flat = backend.logprobs([c for c, cs in zip(contexts, continuations) for _ in cs],
                            [x for cs in continuations for x in cs])
    out, k = [], 0
    for cs in continuations:
        out.append(list(flat[k:k + len(cs)]))
        k += len(cs)
    return out


def cloze_scores(backend, records: list[dict]) -> list[list[float]]:
    """Per option: log p(" " + option | context) / len(option), lm-eval's `acc_norm` score."""
    sums = continuation_sums(backend, [r["context"] for r in records], [[" " + o for o in r["options"]] for r in records])
    return [[s / max(1, len(o)) for s, o in zip(ss, r["options"])] for ss, r in zip(sums, records)]


def rotations(n: int) -> list[list[int]]:
    """The n cyclic orders of n options: order[s][i] is the option shown under letter i in rotation s."""
    return [[(i + s) % n for i in range(n)] for s in range(n)]


def letter_scores(backend, records: list[dict]) -> list[list[float]]:
    """Per option: the mean over cyclic rotations of log P(its letter), normalised over the item's letters."""
    prompts, letters, plan = [], [], []
    for r in records:
        n = len(r["options"])
        for order in rotations(n):
            prompts.append(mc_prompt(r["question"], [r["options"][k] for k in order]))
            letters.append([" " + x for x in LETTERS[:n]])
            plan.append(order)
    lps = (backend.choice_logprobs(prompts, letters) if hasattr(backend, "choice_logprobs")
           else continuation_sums(backend, prompts, letters))
    out, k = [], 0
    for r in records:
        n = len(r["options"])
        acc = np.zeros(n)
        for lp, order in zip(lps[k:k + n], plan[k:k + n]):
            lp = np.asarray(lp, dtype=float)
            lp = lp - np.logaddexp.reduce(lp)  # log P(letter | the item's letters)
            acc[order] += lp  # option order[i] stood under letter i
        out.append(list(acc / n))
        k += n
    return out


def prompt_scores(backend, records: list[dict]) -> list[list[float]]:
    """A task file's own `prompt` and `choices`: the log-prob of each choice continuation (no correction)."""
    if hasattr(backend, "choice_logprobs"):
        return backend.choice_logprobs([r["prompt"] for r in records], [list(r["choices"]) for r in records])
    return continuation_sums(backend, [r["prompt"] for r in records], [list(r["choices"]) for r in records])


def method(record: dict) -> str:
    """How a record is scored: its `format` when it carries `options`, else `prompt` (choices as given)."""
    if "options" not in record:
        return "prompt"
    fmt = record.get("format", "cloze")
    if fmt not in FORMATS:
        from superalign.errors import SuperalignError
        raise SuperalignError(f"task record {record.get('id')!r} has format {fmt!r}",
                              f"use one of: {', '.join(FORMATS)}")
    return fmt


SCORERS = {"cloze": cloze_scores, "letters": letter_scores, "prompt": prompt_scores}


def pick(scores, key: str) -> int:
    """The best option; a tie (a model that cannot tell the options apart) is broken at random, seeded by the
    item, so a tie scores chance rather than whatever position the gold answer tends to hold."""
    s = np.asarray(scores, dtype=float)
    best = np.flatnonzero(s >= s.max() - 1e-6 * max(1.0, abs(s.max())))
    return int(best[0]) if len(best) == 1 else int(random.Random(key).choice(list(best)))


def score_choices(backend, records: list[dict]) -> list[dict]:
    """{"id", "pred", "correct", "scores", "method"} per record, in order, each record by its `method`."""
    out: list[dict | None] = [None] * len(records)
    for m, fn in SCORERS.items():
        idx = [i for i, r in enumerate(records) if method(r) == m]
        if not idx:
            continue
        for i, sc in zip(idx, fn(backend, [records[i] for i in idx])):
            pred = pick(sc, str(records[i]["id"]))
            out[i] = {"id": records[i]["id"], "pred": pred, "correct": float(pred == int(records[i]["label"])),
                      "scores": [float(x) for x in sc], "method": m}
    return out  # type: ignore[return-value]


def mc_stage(backend, records: list[dict], kw: dict) -> list[dict]:
    """Executor stage: multiple-choice answers by `score_choices`."""
    return score_choices(backend, records)


def reference_stage(backend, records: list[dict], kw: dict) -> list[dict]:
    """Executor stage: {"id", "loglik"}, the mean per-token log-likelihood of each record's `reference` after its
    `chat` (chat template applied). A backend without per-token scores (an HTTP endpoint) returns nothing, and
    the evaluation then has no helpfulness row rather than one in other units."""
    if not records or not hasattr(backend, "token_logprobs"):
        return []
    vals = backend.token_logprobs([r["chat"] for r in records], [r["reference"] for r in records], reduce="mean")
    return [{"id": r["id"], "loglik": float(v)} for r, v in zip(records, vals)]
