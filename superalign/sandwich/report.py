"""Report section for sandwiching: accuracy per arm, the paired gains over the judge alone and over the
verification-only rule, the ratio.

`SECTIONS` lists (title, fn(store) -> html | None) in display order; the report registers it."""
from __future__ import annotations

from superalign.report import fmt_ci, table

LABELS = {"judge": "judge alone (no source)", "expert": "expert alone: strong reader with the source",
          "consultancy": "judge + consultant (mean of honest and dishonest)",
          "consultancy_honest": "judge + honest consultant", "consultancy_dishonest": "judge + dishonest consultant",
          "debate": "judge + debate",
          "rule_consultancy": "rule on the consultancies (no LM)",
          "rule_consultancy_honest": "rule, honest consultant", "rule_consultancy_dishonest": "rule, dishonest consultant",
          "rule_debate": "rule on the debates (no LM)",
          "overlap_debate": "name-matching rule on the debates (no LM)",
          "debate_exact": "judge + debate, exact-substring verification",
          "debate_unchecked": "judge + debate, quotes not verified"}


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _gain_rows(summ: dict, name: str, seeds) -> list[list]:
    out = []
    for key, m in summ.items():
        if not key.startswith(f"sandwich/{name}/"):
            continue
        arm, meta = key.rsplit("/", 1)[1], m["meta"]
        lo_s, hi_s = meta["across_seeds"][1:]
        out.append([LABELS.get(arm, arm), LABELS.get(meta["vs"], meta["vs"]), fmt_ci(m["value"], m["lo"], m["hi"]),
                    f"{_p(meta['p'])} ({meta['test']})", f"{meta['better']} / {meta['worse']}",
                    fmt_ci(sum(meta["per_seed"]) / len(seeds), lo_s, hi_s)])
    return out


def sandwich_section(store) -> str | None:
    from superalign.sandwich.experiment import ARMS, human_accuracy
    from superalign.stats import bootstrap_ci
    summ = {m["name"]: m for m in store.rows("metrics", stage="sandwich/summary")}
    if not summ:
        return None
    seeds = next(iter(summ.values()))["meta"]["seeds"]
    acc_rows = []
    for a in ARMS:
        m = summ[f"sandwich/{a}/accuracy"]
        acc_rows.append([LABELS.get(a, a), fmt_ci(m["value"], m["lo"], m["hi"]), m["n"]]
                        + [f"{v:.3f}" for v in m["meta"]["per_seed"]] + [m["meta"].get("errors", 0)])
    heads = ["arm", "compared with", "gain [paired bootstrap CI]", "p (test)", "better / worse",
             f"mean of {len(seeds)} seed gains [t CI]"]
    cfg = (store.get("sandwich") or {}).get("config", {})
    out = ("<p>A weak judge answers two-choice questions about a passage it never sees. Each passage describes two "
           "countries of one region and the wrong option is the other country's fact, so both options are in the "
           "passage; <i>bridge</i> questions name the country by another fact, so the answer needs two sentences. "
           "The expert (a MiniLM extractive reader) reads the passage. Consultants (one honest, one dishonest, on every "
           "item) and debaters argue an assigned option by quoting the passage; a liar's true quote is about the other "
           "country, and the link it lacks it fabricates or leaves out. Quotes are verified by meaning (MiniLM cosine to "
           "a passage sentence, with the same names and numbers); the judge reads only verified quotes. The "
           "verification-only rule uses the same transcripts without a language model: the option a verified quote "
           "of its own side contains, a coin when both sides or neither have one. Accuracy over the items of all "
           "seeds (Wilson intervals; bootstrap for the consultancy means); errors count as wrong.</p>"
           + table(["arm", "accuracy [95% CI]", "items"] + [f"seed {s}" for s in seeds] + ["errors"], acc_rows)
           + "<h3>Gain over the judge alone (same items)</h3>" + table(heads, _gain_rows(summ, "gain_vs_judge", seeds))
           + "<h3>Gain over the verification-only rule (same items and transcripts)</h3>"
           + table(heads, _gain_rows(summ, "gain_vs_rule", seeds))
           + "<h3>Second look: gain over a rule that matches the question's names against the quotes (no LM)</h3>"
           + table(heads, _gain_rows(summ, "gain_vs_overlap", seeds))
           + f"<p class='muted'>{cfg.get('questions')} questions per seed ({', '.join(cfg.get('kinds', []))}), "
             f"{cfg.get('rounds')} round(s), verification {cfg.get('verify')} (threshold "
             f"{cfg.get('verify_threshold')}), P(fabricate) {cfg.get('fabricate')}, P(paraphrase) "
             f"{cfg.get('paraphrase')}, judge rule {cfg.get('judge_rule')}.</p>")
    n, correct = human_accuracy(store)
    if n:
        a, lo, hi = bootstrap_ci(correct)
        out += f"<p>Human judges on the review page (same debates): accuracy {fmt_ci(a, lo, hi)}, n={n}.</p>"
    return out


SECTIONS = [("Scalable oversight: sandwiching", sandwich_section)]
