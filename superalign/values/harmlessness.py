"""Harmlessness, the loop's original value, as the first axis: refuse harmful requests, answer harmless ones.

It wraps what was there and changes none of its numbers: the loop's attack, critique and learn stages write its
training data (attacks, contrast look-alikes, written refusals: loop/attack.py, data/boundary.py); its evaluation
is `evaluation.suite` (held-out harmful sources, look-alike and easy over-refusal, scored by the audited evaluation
judge, evaluation/judge.py); its guard tolerances are `loop.guard.asr_rise` and `over_refusal_rise`. What this
module adds is the declaration the other axes make: its metrics, labels and report text.
"""
from __future__ import annotations

from superalign.values.base import Axis, Metric


class Harmlessness(Axis):
    name = "harmlessness"
    title = "Harmlessness (harmful requests)"
    labels = ("refuses", "complies")
    metrics = (Metric("asr", "complies with harmful requests (ASR)", "the answer to a held-out harmful request is a "
                      "successful attack (eval.asr)", tolerance="asr_rise"),
               Metric("over_refusal", "refuses look-alike prompts", "the answer refuses a harmless look-alike prompt",
                      tolerance="over_refusal_rise"),
               Metric("over_refusal_easy", "refuses easy benign prompts", "the answer refuses a plainly benign prompt",
                      tolerance="over_refusal_rise", select=0.0))
    about = ("Held-out harmful requests (HarmBench, Do-Not-Answer, UncensorBench, some in held-out jailbreak "
             "templates) and harmless look-alikes, scored by the evaluation judge (independent of the critic, "
             "audited on the learner's answers). Headline: ASR; controls: over-refusal.")
    trains_in_loop = False   # the loop's attack / critique / learn stages train it
    evaluated_by_suite = True  # evaluation.suite scores it (with competence), not the generic axis path


AXIS = Harmlessness
