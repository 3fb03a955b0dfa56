"""Report sections for weak-to-strong runs, in display order: `SECTIONS = [(title, fn(store) -> html | None)]`.

Per task: weak, the data-matched control, each w2s loss, ladder, ceiling (seed-mean accuracy, 95% bootstrap CI
over seeds x items, mean early-stopping epoch), the gap and capacity gap with CIs, and PGR from seed-mean
accuracies, or why it is withheld. Then the gap-annealing ladder, rung by rung.
"""
from __future__ import annotations

from superalign.report import esc, fmt_ci, line_plot, table

ORDER = ["weak", "control", "xent", "logconf", "bootstrap", "ladder", "ceiling"]
LABELS = {"weak": "weak supervisor", "control": "control: weak model on the ceiling's gold", "xent": "w2s (xent)",
          "logconf": "w2s (aux-conf logconf)", "bootstrap": "w2s (bootstrap)", "ladder": "w2s (ladder)",
          "ceiling": "strong ceiling (gold)"}


def methods(accuracy: dict) -> list[str]:
    """The methods of a summary in display order: ORDER, with the iterative rounds before the ceiling."""
    rounds = sorted((m for m in accuracy if m.startswith("iterative")), key=lambda m: int(m[len("iterative"):]))
    return [m for m in ORDER[:-1] if m in accuracy] + rounds + [m for m in ORDER[-1:] if m in accuracy]


def label(m: str) -> str:
    if m.startswith("iterative"):
        return f"w2s (iterative teacher-student, round {m[len('iterative'):]})"
    return LABELS.get(m, m)


def _rows(store) -> list[dict]:
    return [r for r in store.rows("metrics", stage="w2s") if "correct" in r["meta"] or r["name"] == "auroc"]


def setting(store, task: str | None = None) -> str:
    """One line saying how the strong model was trained, so the fast probe variant is never read as the headline:
    the task's own setting when the run recorded one (bench/w2s.py's stores hold no run config), else the run's."""
    cfg = (task and store.get(f"w2s/{task}/setting")) or ((store.get("config") or {}).get("w2s") or {})
    ft = cfg.get("finetune") or {}
    strong = cfg.get("strong", "not recorded")
    if "+lora" in strong or ft.get("mode") == "lora":
        cut = f" of the network cut at block {ft['exit_layer']}" if ft.get("exit_layer") else ""
        top = "every block" if ft.get("lora_layers") == "all" else f"the top {ft.get('lora_layers')} blocks"
        how = (f"LoRA fine-tuning of {top}{cut} + a head on the "
               f"{ft.get('pool', 'last')}-pooled output, warm-started from a linear probe (stop epoch 0 = the probe "
               "was kept)")
    elif ft.get("mode") == "full":
        how = "full fine-tuning"
    else:
        how = "linear probe on frozen features (fast variant, not the headline setting)"
    weak = cfg.get("weak", "not recorded")
    return (f"<p>Strong model <code>{esc(strong)}</code>: {esc(how)}; weak supervisor <code>{esc(weak)}"
            "</code>. Every student is early-stopped on transfer-validation rows labelled by its supervisor (never "
            "gold); the ceiling and the control are trained and stopped on gold (never a weak label).</p>")


def _fmt_pgr(s: dict, m: str) -> str:
    if m not in s.get("pgr", {}):
        return ""
    if s["pgr"][m] is None:
        return "withheld"
    lo, hi = s["pgr_ci"][m]
    return fmt_ci(s["pgr"][m], lo, hi, 2)


def results_section(store) -> str | None:
    from superalign.w2s.experiment import summarise_rows
    rows = _rows(store)
    if not rows:
        return None
    tasks = list(dict.fromkeys(r["meta"]["task"] for r in rows))
    each = any(store.get(f"w2s/{t}/setting") for t in tasks)  # a setting per task: said under each task's heading
    parts = ["" if each else setting(store),
             "<p>Accuracy: mean over seeds, 95% CI from a seeds × test-items bootstrap. PGR = (w2s − weak) / "
             "(ceiling − weak) on seed-mean accuracies, withheld when the gap's CI includes 0 "
             "or the weak model is at chance. A gap is a capacity gap when the weak model's architecture trained on "
             "the ceiling's gold rows (the control) stays below the ceiling, else a data gap.</p>"]
    for task in tasks:
        trs = [r for r in rows if r["meta"]["task"] == task]
        chance = store.get(f"w2s/{task}/chance") or 0.5
        s = summarise_rows(trs, chance)
        if not s:
            continue
        acc = [r for r in trs if r["name"] == "accuracy" and r["role"] not in ("rung", "candidate")]
        body = []
        for m in methods(s["accuracy"]):
            rs = [r for r in acc if r["meta"]["method"] == m]
            ep = sum(r["meta"].get("epoch") or 0 for r in rs) / len(rs)
            body.append([label(m), rs[0]["model"], fmt_ci(s["accuracy"][m], *s["accuracy_ci"][m]),
                         f"{ep:.1f}", _fmt_pgr(s, m)])
        untuned = " (untuned: kept out of all tuning)" if store.get(f"w2s/{task}/untuned") else ""
        gap = f"gap ceiling − weak {fmt_ci(s['gap'], *s['gap_ci'])}"
        if "capacity_gap" in s:
            gap += (f"; capacity gap ceiling − control {fmt_ci(s['capacity_gap'], *s['capacity_gap_ci'])}: a "
                    f"{s['gap_kind']} gap")
        note = f"<p><b>PGR withheld:</b> {esc(s['pgr_withheld'])}.</p>" if s["pgr_withheld"] else ""
        seeds = f"{s['seeds']} seed" + ("s" if s["seeds"] != 1 else "")
        parts.append(f"<h3>{esc(task)}{esc(untuned)}</h3>" + (setting(store, task) if each else "")
                     + f"<p>{esc(gap)}; chance {chance:.3f}; {seeds}.</p>" + note
                     + table(["model", "spec", "accuracy [95% CI]", "stop epoch", "PGR [95% CI]"], body))
    return "".join(parts)


def ladder_section(store) -> str | None:
    rows = [r for r in store.rows("metrics", stage="w2s", name="accuracy")
            if r["role"] == "rung" or (r["role"] == "w2s" and r["meta"]["method"] == "ladder")]
    if not rows:
        return None
    parts = ["<p>Each rung is trained on the previous supervisor's labels (cross-fitted on the transfer rows) and "
             "labels them for the next; its own ceiling (trained on gold) shows where it sits in capability. The "
             "ladder spends only the weak model's gold, as direct supervision does.</p>"]
    for task in dict.fromkeys(r["meta"]["task"] for r in rows):
        trs = [r for r in rows if r["meta"]["task"] == task]
        steps = sorted({r["meta"]["step"] for r in trs})
        body, stud, sup, ceil = [], [], [], []
        for st in steps:
            rs = [r for r in trs if r["meta"]["step"] == st]
            mean = lambda k: sum(r["meta"][k] for r in rs) / len(rs) if all(k in r["meta"] for r in rs) else None  # noqa: E731
            a, c, sa = sum(r["value"] for r in rs) / len(rs), mean("ceiling"), mean("supervisor_accuracy")
            body.append([st, rs[0]["meta"]["supervisor"], rs[0]["model"], f"{sa:.3f}", f"{a:.3f}",
                         f"{c:.3f}" if c is not None else "(strong ceiling)",
                         f"{c - sa:+.3f}" if c is not None else "", f"{mean('label_accuracy'):.3f}"])
            stud.append((st, a, None, None))
            sup.append((st, sa, None, None))
            if c is not None:
                ceil.append((st, c, None, None))
        parts.append(f"<h3>{esc(task)}</h3>" + table(
            ["step", "supervisor", "student", "supervisor acc", "student acc", "student's gold ceiling",
             "rung gap", "label acc (transfer)"], body)
            + line_plot({"supervisor": sup, "student": stud, "rung ceiling (gold)": ceil},
                        xlabel="ladder step", ylabel="test accuracy (mean over seeds)"))
    return "".join(parts)


SECTIONS = [("Weak-to-strong generalization", results_section), ("Weak-to-strong: gap-annealing ladder", ladder_section)]
