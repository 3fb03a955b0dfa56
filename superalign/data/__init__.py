"""Named data sets with seed-fixed splits.

Every record is a plain dict with at least `id`, `source` and `prompt`; task records add
`choices` and `label` (index of the right choice); judge records add `response` and a
float `label`. Built-in sets are parsed out of the pinned asset wheels (or, for the
hand-written look-alike set, a file in this package) once and cached as JSONL;
`hf:NAME[:CONFIG]` and local `.jsonl`/`.csv` paths go through the same `load`.

Modules: `registry` (load/cache/splits), `sources` (safety sets), `tasks` (competence
tasks, country texts), `dedup` (near-duplicate groups), `evalsets` (leak-free evaluation sets),
`boundary` (written refusals, contrast look-alikes), `taxonomy` (the attacker's harm categories).
"""
from superalign.data.registry import (ALIASES, PARSE_VERSION, SPLITS, Record, dataset, kind_of, load,  # noqa: F401
                                      load_all, names, normalise, parse_hf)
from superalign.data import sources, tasks, values  # noqa: F401,E402  (registers the builtin sets)
from superalign.data.sources import JUDGE_SETS, TRAIN_SOURCES  # noqa: F401,E402


def eval_sets(seed: int = 0, **kw):
    """Leak-free evaluation sets for `seed`; see `superalign.data.evalsets.eval_sets`."""
    from superalign.data import evalsets
    return evalsets.eval_sets(seed, **kw)


from superalign.data import audit as _audit  # noqa: E402  (hand-labelled learner answers; see audit.py)
dataset("audit", "judge")(_audit.as_judge_records)
