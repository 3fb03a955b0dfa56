"""What does the loop's conformity phase itself teach? Replays one stored conformity phase of a development run
from the same start, with the loop's setting and with alternatives, and scores each result on the same items.

    python bench/conformity_replay.py --run runs/bench-speed/default-seed3-1796293796 \
        --results bench/results/conformity_replay/seed3.json
    # development seed 0 (bench/loop_efficacy.py --dev --seeds 0 --only-arms), round 1: longer DPO, parts of the rows
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop \
        --variants dpo-lr5e-4 dpo-lr5e-4-2x dpo-lr5e-4-4x --results bench/results/conformity_replay/seed0_steps.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop \
        --variants dpo-no-benign dpo-attack-only --results bench/results/conformity_replay/seed0_rows.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop \
        --variants dpo-ches-half --results bench/results/conformity_replay/seed0_ches.json
    # round 2's phase, from its own start and from the base learner (does its data work without round 1?)
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop --round 2 --variants dpo-lr5e-4 \
        --results bench/results/conformity_replay/seed0_r2.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop --round 2 --from-base \
        --variants dpo-lr5e-4 --results bench/results/conformity_replay/seed0_r2_from_base.json
    # round 1's rows again, from round 1's DPO result (a second preference pass, reference moved)
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop --start checkpoints/r1-conformity \
        --variants dpo-lr5e-4 --results bench/results/conformity_replay/seed0_r1_twice.json
    # two whole loops on one development seed, paired; the folders (and bench/results/loop_efficacy_dev/) from
    python bench/loop_efficacy.py --dev --seeds 0 --only-arms --results bench/results/loop_efficacy_dev/seed0.json
    python bench/loop_efficacy.py --dev --seeds 0 --only-arms --set loop.first=competence \
        --out runs/bench-efficacy-dev-sftfirst --results bench/results/loop_efficacy_dev/sftfirst_seed0.json
    python bench/conformity_replay.py --loops runs/bench-efficacy-dev/seed0 runs/bench-efficacy-dev-sftfirst/seed0 \
        --results bench/results/conformity_replay/loops_seed0_sftfirst.json
    python bench/loop_efficacy.py --dev --seeds 0 --only-arms --set loop.warmup=true \
        --out runs/bench-efficacy-dev-warmup --results bench/results/loop_efficacy_dev/warmup_seed0.json
    python bench/conformity_replay.py --loops runs/bench-efficacy-dev/seed0 runs/bench-efficacy-dev-warmup/seed0 \
        --results bench/results/conformity_replay/loops_seed0_warmup.json
    # the warm-up with the over-refusal counterweights raised: more contrast look-alikes and benign prompts a round
    python bench/loop_efficacy.py --dev --seeds 0 --only-arms --set loop.warmup=true --set loop.sizes.contrast=24 \
        --set loop.sizes.benign=24 --out runs/bench-efficacy-dev-warmup-cw24 \
        --results bench/results/loop_efficacy_dev/warmup_cw24_seed0.json
    python bench/conformity_replay.py --loops runs/bench-efficacy-dev/seed0 runs/bench-efficacy-dev-warmup-cw24/seed0 \
        --results bench/results/conformity_replay/loops_seed0_warmup_cw24.json
    # ... and the same with loop.sizes.contrast=36 (-cw36), and contrast 24 without the benign DPO anchors
    #     (--set loop.refusal_anchors=false, -cw24-noanchor)
    # the warm-up on development seed 1 (base and loop only: the default loop of seed 1 was not finished)
    python bench/loop_efficacy.py --dev --seeds 1 --only-arms --set loop.warmup=true \
        --out runs/bench-efficacy-dev-warmup --results bench/results/loop_efficacy_dev/warmup_seed1.json
    # on-policy refusals: the attack pairs' chosen side the learner's own refusal (2026-12-04)
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop \
        --variants dpo-lr5e-4 dpo-self-refusal dpo-prefill-refusal \
        --results bench/results/conformity_replay/seed0_self_refusal.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop \
        --variants dpo-self-refusal-anchored dpo-prefill-refusal-anchored \
        --results bench/results/conformity_replay/seed0_self_refusal_anchored.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev/seed0/loop --variants dpo-prefill-refusal-lr1e-4 \
        --results bench/results/conformity_replay/seed0_self_refusal_lr1e-4.json
    python bench/conformity_replay.py --run runs/bench-speed/default-seed3-1796293796 \
        --variants dpo-prefill-refusal dpo-prefill-refusal-lr1e-4 \
        --results bench/results/conformity_replay/seed3_self_refusal.json
    # ... and inside the loop (loop.refusals: own; conformity candidates lr 1e-4 and 5e-4 x the two mixes)
    python bench/loop_efficacy.py --dev --seeds 0 --only-arms --set loop.refusals=own \
        --set loop.conformity.learning_rate=1.0e-4 --set "loop.candidates=[{learning_rate: 5.0e-4}]" \
        --out runs/bench-efficacy-dev-own --results bench/results/loop_efficacy_dev/own_seed0.json
    python bench/conformity_replay.py --loops runs/bench-efficacy-dev/seed0 runs/bench-efficacy-dev-own/seed0 \
        --results bench/results/conformity_replay/loops_seed0_own.json
    # ... the same on development seed 1 (no finished default loop there: paired against the warm-up loop)
    python bench/loop_efficacy.py --dev --seeds 1 --only-arms --set loop.refusals=own \
        --set loop.conformity.learning_rate=1.0e-4 --set "loop.candidates=[{learning_rate: 5.0e-4}]" \
        --out runs/bench-efficacy-dev-own --results bench/results/loop_efficacy_dev/own_seed1.json
    python bench/conformity_replay.py --loops runs/bench-efficacy-dev-warmup/seed1 runs/bench-efficacy-dev-own/seed1 \
        --results bench/results/conformity_replay/loops_seed1_own_vs_warmup.json
    #     (those two own_seed*.json loops anchored with written refusals: today add --set loop.anchor_refusals=written)
    # own refusals anchored with own refusals (loop.anchor_refusals: same, 2026-12-05) against the default loop, both
    # run side by side on this code (one thread each)
    python bench/loop_efficacy.py --dev --seeds 0 --only-arms --set loop.refusals=own \
        --set loop.conformity.learning_rate=1.0e-4 --set "loop.candidates=[{learning_rate: 5.0e-4}]" \
        --out runs/bench-efficacy-dev-ownanchor --results bench/results/loop_efficacy_dev/own_anchor_seed0.json
    python bench/loop_efficacy.py --dev --seeds 0 --only-arms --out runs/bench-efficacy-dev-default \
        --results bench/results/loop_efficacy_dev/default_seed0_dec05.json
    python bench/conformity_replay.py --loops runs/bench-efficacy-dev-default/seed0 \
        runs/bench-efficacy-dev-ownanchor/seed0 --results bench/results/conformity_replay/loops_seed0_own_anchor.json
    # ... seed 1 (--seeds 1, --results .../own_anchor_seed1.json), paired with the default loop's kept outcomes there
    python bench/conformity_replay.py --loops bench/results/loop_speed/noninferiority/after/seed1.outcomes.json \
        runs/bench-efficacy-dev-ownanchor/seed1 --results bench/results/conformity_replay/loops_seed1_own_anchor.json
    # the SFT (competence) phase of round 2 of that default loop, replayed (issue 25: where does the yes-bias come from?)
    python bench/conformity_replay.py --run runs/bench-efficacy-dev-default/seed0/loop --round 2 --phase competence \
        --results bench/results/conformity_replay/seed0_r2_sft_axes.json
    # ... and the whole loop under loop.verdict_sft: known, paired with that default loop
    python bench/loop_efficacy.py --dev --seeds 0 --only-arms --set loop.verdict_sft=known \
        --out runs/bench-efficacy-dev-known --results bench/results/loop_efficacy_dev/known_seed0.json
    python bench/conformity_replay.py --loops runs/bench-efficacy-dev-default/seed0 runs/bench-efficacy-dev-known/seed0 \
        --results bench/results/conformity_replay/loops_seed0_known.json
    # ... then on development seeds 1 and 2 (--seeds 1, --seeds 2, results known_seed1/2.json), pooled with seed 0
    # (one --loops pair per seed; seed 1's default loop is kept as outcomes only)
    python bench/conformity_replay.py \
        --loops bench/results/loop_speed/noninferiority/after/seed0.outcomes.json runs/bench-efficacy-dev-known/seed0 \
        --loops bench/results/loop_speed/noninferiority/after/seed1.outcomes.json runs/bench-efficacy-dev-known/seed1 \
        --loops bench/results/loop_speed/noninferiority/after/seed2.outcomes.json runs/bench-efficacy-dev-known/seed2 \
        --results bench/results/conformity_replay/loops_seeds012_known.json
    # ... the same three pairs from the kept outcomes of both loops (the known loops' run folders are gone), with
    # each axis's discrimination change (2026-12-06): --loops .../after/seedS.outcomes.json
    # bench/results/loop_efficacy_dev/known_seedS/seedS.outcomes.json for S = 0, 1, 2, --results
    # bench/results/conformity_replay/loops_seeds012_known_kept.json
    # that round-2 SFT phase again with the unknown honesty verdicts hedged instead of dropped (2026-12-05 night)
    python bench/conformity_replay.py --run runs/bench-efficacy-dev-default/seed0/loop --round 2 --phase competence \
        --variants sft-honesty-known sft-honesty-hedge --results bench/results/conformity_replay/seed0_r2_sft_hedge.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev-default/seed0/loop --round 2 --phase competence \
        --variants sft-honesty-unsure --results bench/results/conformity_replay/seed0_r2_sft_unsure.json
    # issue 25 on a fresh default loop of development seed 0 (stopped after round 1's learn stage): round 1's DPO
    # rows, which privacy rows raise the privacy leaks, and is the phase's false-claim affirmation its rows or one
    # draw (the same rows from two more training seeds; rows dropped at the phase's passes per row)
    python bench/conformity_replay.py --run runs/bench-efficacy-dev-default/seed0/loop --variants dpo-lr5e-4 \
        dpo-harmlessness-only dpo-no-privacy-counterweight dpo-no-benign \
        --results bench/results/conformity_replay/seed0_privacy_rows.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev-default/seed0/loop --variants dpo-lr5e-4-seed+1 \
        dpo-no-honesty dpo-no-benign-same-passes dpo-lr5e-4-seed+2 \
        --results bench/results/conformity_replay/seed0_yes_bias.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev-default/seed0/loop --order-seed 1 \
        --variants dpo-no-honesty dpo-no-benign-same-passes \
        --results bench/results/conformity_replay/seed0_yes_bias_o1.json
    python bench/conformity_replay.py --run runs/bench-efficacy-dev-default/seed0/loop --order-seed 2 \
        --variants dpo-no-honesty dpo-no-benign-same-passes \
        --results bench/results/conformity_replay/seed0_yes_bias_o2.json

Why: on headline seed 11 every round-1 conformity candidate (DPO at lr 5e-4 / 1e-3, the default preset) raised
validation compliance with harmful requests (0.71 -> 0.96-1.00) and the guard rejected all of them; on development
seed 3 all four candidates ended at validation compliance 1.00. If the preference phase teaches compliance and the
refusal SFT of the competence phase does the safety work, the loop's advantage over a static SFT fine-tune has
nowhere to come from. This bench measures that on a development seed only (a headline seed is refused), so that
a change it suggests can be declared before fresh headline seeds test it.

Variants, each trained from the phase's start adapter on the phase's stored rows (every axis's rows, the default
mix) for the kept candidate's step count (so a run whose winner trained on a smaller mix sees a random part of the
rows; on seed 3: 18 steps of batch 4 over 116 rows):
- `dpo-lr5e-4`: the loop's setting (sigmoid DPO, beta 0.1, reference = phase start);
- `dpo-lr1e-4`: the same at a fifth of the learning rate;
- `dpo+sft-lr5e-4`: DPO plus the NLL of the chosen answer (TRL `loss_type: [sigmoid, sft]`, as in RPO), which keeps
  the chosen refusal's likelihood from falling with the rejected answer's;
- `sft-chosen-lr2e-4`: SFT on the chosen answers only (what the loop's refusal SFT does, on the same rows);
- `dpo-lr5e-4-2x` / `-4x`: the loop's DPO for twice / four times the steps (is round 1 under-trained?);
- `dpo-no-benign` / `dpo-attack-only`: the loop's DPO on the attack and value-probe pairs / the attack pairs only
  (same steps; on seed 0 round 1: 103 / 45 of 125 rows);
- `dpo-ches-half`: the half of the rows with the lowest length-normalised CHES (Razin et al. 2024's filter for
  likelihood displacement), CHES computed under the start adapter and stored per kind.
`--from-base` / `--start CHECKPOINT` train from the base learner / another kept checkpoint of the run instead (it is
also the DPO reference).
What bench/results/conformity_replay/seed3.json found (development seed 3, round 1; n = 60 harmful test prompts):
no variant lowers compliance significantly. DPO at the loop's lr 5e-4 raises it 0.867 -> 0.950 (p = 0.18; privacy
leaks 0.615 -> 1.000), DPO + SFT the same, DPO at lr 1e-4 leaves it at 0.867, SFT on the chosen answers 0.817
(p = 0.51). Round 1's preference phase does not teach refusal; the loop's safety gain comes later.
Development seed 0 (2026-12-03 night; n = 60): round 1's DPO from the base learner raises compliance at every
length, on every part of the rows and after the CHES filter: 0.800 -> 0.983 (1x, p = 0.003), 0.867 (2x), 0.917
(4x), 0.950 without the benign pairs (and look-alike over-refusal 0 -> 0.167), 0.917 on the attack pairs alone,
0.933 on the low-CHES half. Round 2's rows lower it from round 2's own start (the round-1 adapter, 0.900 -> 0.717,
p = 0.02) and raise it from the base learner (0.800 -> 0.933, p = 0.04): round 2's pairs teach refusal only to the
adapter whose answers they were built from, one that has had round 1's DPO and refusal SFT. A second DPO pass over
round 1's rows from round 1's DPO result does not help (0.983 -> 0.967, competence 0.524 -> 0.357, p = 0.001), so it
is not just a second preference pass with a moved reference. Why round 1 fails is not found; untested: DPO pairs
built from the answers of an adapter that has had refusal SFT (round 1 with a refusal-SFT warm-up before the
responses are drawn).
Putting the refusal SFT first in each round (`loop.first: competence`) is worse than the default order on the same
seed: 0.517 against 0.300 after two rounds (paired +0.217 [+0.056, +0.362], p = 0.015; loops_seed0_sftfirst.json).
A warm-up round instead (`loop.warmup`: round 1 trains SFT only, so round 2's pairs come from an adapter that has had
the refusal SFT) lowers compliance to 0.083 against 0.300 (-0.217 [-0.332, -0.107], p = 2e-4; direct requests 0.485
-> 0.152) in 75 steps against 108, but raises look-alike over-refusal 0.050 -> 0.233 (p = 0.007) and easy
over-refusal 0 -> 0.300 (p = 0.004): another point of the trade-off, not a better loop (loops_seed0_warmup.json).
Where the warm-up's over-refusal comes from (`loop_phases` of loop_efficacy_dev/warmup_seed0.json, guard split,
n = 24): round 2's DPO lowered compliance 0.917 -> 0.500 at no over-refusal; round 2's SFT then lowered it to 0.125
and raised look-alike over-refusal 0.042 -> 0.208, which the guard's paired test at that size does not flag.
Raising the counterweights (`loop.sizes.contrast` 24 or 36 and `benign` 24 a round, against 12 and 12) does not
keep the gain: round 2's DPO then raised guard compliance (0.958 -> 1.000, 0.917 -> 1.000), as round 1's does, and
on test the loops end at 0.250 (contrast 24; against the default loop -0.050 [-0.162, +0.063], p = 0.55, and
competence -0.143, p = 0.004) and 0.683 (contrast 36; +0.383, p = 6e-6): loops_seed0_warmup_cw24.json, _cw36.json.
The conformity pairs with the benign kind grow with the counterweights (23, 49, 61 in round 2; `pairs` in the
loops_*.json) and all but one or two of them reject a refusal of the written form that the attack pairs choose (23,
48, 59: `boundary.written_form`): the more of them, the higher the loop's compliance (0.083, 0.250, 0.683). Without
those anchors (contrast 24, `loop.refusal_anchors: false`) every round-2 DPO candidate was rejected by the guard and
round 2's SFT alone ended at 0.267 (against the default loop -0.033, p = 0.82; look-alike over-refusal 0.100):
loops_seed0_warmup_cw24_noanchor.json. The warm-up does not replicate on development seed 1
(loop_efficacy_dev/warmup_seed1.json): round 2's DPO raised guard compliance 0.833 -> 1.000 and was kept; round 2's
SFT (1.000 -> 0.375) was rolled back because the sycophancy axis's control rate rose 0.250 -> 1.000 at n = 8 (p =
0.03). Test compliance rose from base 0.767 to 0.917 (+0.150 [+0.04, +0.26], p = 0.012).
**The chosen refusal's source decides the direction** (2026-12-04, round 1 from the base learner, same rows and
steps, only the attack pairs' chosen side changed). With the written refusal (the loop's `loop.refusals: written`)
compliance rises, 0.783 -> 0.983 on seed 0 (p = 0.002) and 0.867 -> 0.950 on seed 3 (seed3.json). With the learner's
own refusal, asked under a safety system prompt, it falls: seed 0, sampled (the first of 4 samples that is a
complete refusal; 20 of 45 attack pairs have one, the rest are dropped) 0.100, and prefilled ("I'm sorry, but I
can't help with" continued greedily, first sentence; 45 of 45) 0.117 (both p < 1e-11; direct requests 0.879 -> 0.121
/ 0.152); seed 3, prefilled, 0.867 -> 0.167 (p = 3e-11; direct 0.935 -> 0.258). Neither tells harm apart: look-alike
over-refusal 0 -> 0.483 / 0.367 (seed 0) and 0.267 (seed 3), easy 0.500 / 0.033 / 0.333, and seed 3's competence
0.464 -> 0.333 (p = 0.003). At a fifth of the step (lr 1e-4, prefilled) both move less: seed 3 compliance 0.633
(-0.233, p = 5e-4) at look-alike over-refusal 0.100 (p = 0.03), seed 0 0.517 (-0.267, p = 3e-5) at 0.233 (p = 1e-4);
competence unchanged. When the benign pairs reject the learner's own (prefilled) refusal of the benign prompt
instead of a written one (`-anchored`), the two cancel with the same form on both sides (prefilled: compliance
0.750, p = 0.79, over-refusal 0), and do not with different forms (sampled chosen, prefilled rejected: 0.150 and
over-refusal 0.650). What one DPO phase of ~120 pairs teaches this learner is mostly which refusal *form* to write,
nearly regardless of the prompt. With a chosen text the learner would not write, its own refusals lose probability,
which is what likelihood displacement (Razin et al.) predicts; this is a reading of the results, not a separate
test. `loop.refusals: own` is the prefilled variant inside the loop. On development seed 0, with conformity
candidates at lr 1e-4 and 5e-4, round 1's DPO lowered guard compliance 1.000 -> 0.708 (`loop_phases` of
own_seed0.json; the default loop's left it at 1.000, seed0.json), and after two rounds test compliance is 0.033
against the default loop's 0.300 (-0.267, p = 3e-5; direct requests 0.061 against 0.485, p = 1e-4), at look-alike
over-refusal 0.233 against 0.050 (p = 0.001) and easy over-refusal 0.267 against 0 (p = 0.008); competence level
(loops_seed0_own.json). Another point of the trade-off, as the warm-up was (0.083 at 0.233 on the same seed), not a
better loop. On development seed 1 (own_seed1.json) the own-refusal loop took compliance 0.767 -> 0.100 (p = 2e-12;
direct 0.912 -> 0.147), look-alike over-refusal 0 -> 0.050 (p = 0.25) but easy over-refusal 0 -> 0.400 (p = 5e-4);
the warm-up loop of that seed ended at 0.917 (own - warm-up -0.817, p = 4e-15; loops_seed1_own_vs_warmup.json).
**The SFT phase and the yes-bias** (issue 25, `--phase competence`, seed0_r2_sft_axes.json: round 2's SFT phase of
development seed 0's default loop of 2026-12-05, which ended at false claims affirmed 0.542 against base's 0.042).
The loop's rows reproduce that (0.042 -> 0.542 from the phase's start, p = 0.002, n = 24). Without the 12 honesty
rows it is 0.000; without the sycophancy rows 0.583. The honesty rows' written verdicts teach the bias. Kept only
where the start learner leans to the verdict (`sft-honesty-known`, the rule of `loop.verdict_sft: known`: 1 of 12
rows), it is 0.000, but sycophancy rises 0.156 -> 0.375 (p = 0.09) against 0.188 with every row.
Scored on the run's test split (a development seed: reading its test items decides nothing headline), with exact
McNemar tests against the start on the same items (every value axis too: before 2026-12-05 the axes kept rates only),
and since 2026-12-06 each axis's discrimination change (`<axis>_discrimination`, Youden's J = 1 - headline - control,
exact sign-flip test), in the variants' tests and in `--loops` comparisons: a row choice that lowers a headline by
moving a prior (its control moving the other way) leaves it at 0. Files written before then lack those rows.
**The preference phase and the yes-bias** (seed0_yes_bias*.json: round 1's DPO phase of development seed 0's
default loop of 2026-12-05, night, each row choice from three training seeds). False claims affirmed: all rows 0.708 /
0.208 / 0.875, without the honesty rows 0.042 / 0.125 / 0.000, without the benign anchors (same passes per row) 0.000 /
0.625 / 0.250. The honesty rows bring it; the draw sizes it; one replay per row choice named the benign anchors.
    # the phase start competing in the search (loop.start_competes), development seeds 1 and 2 beside the default
    # (anneal) loops of bench/curriculum.py, same code (2026-12-07)
    python bench/loop_efficacy.py --dev --seeds 1 2 --jobs 2 --grid small --only-arms --rounds-curve --curve-rounds 2 \
        --no-curve-static --set loop.start_competes=true --out runs/start-competes \
        --results bench/results/loop_efficacy_dev/start_competes.json
    python bench/conformity_replay.py --loops runs/curriculum/anneal/seed1 runs/start-competes/seed1 \
        --loops runs/curriculum/anneal/seed2 runs/start-competes/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_start_competes.json
    python bench/loop_speed.py --part kept --runs runs/start-competes/seed1 runs/start-competes/seed2 \
        runs/curriculum/anneal/seed1 runs/curriculum/anneal/seed2 \
        --results bench/results/loop_speed/kept_start_competes.json    # the start's score beside each candidate's
    python bench/conformity_replay.py --round 1 --loops runs/curriculum/anneal/seed1 runs/start-competes/seed1 \
        --loops runs/curriculum/anneal/seed2 runs/start-competes/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_start_competes_r1.json    # the same after round 1
**The phase start in the search** (`loop.start_competes`, loops_seeds12_start_competes.json): the start outscored
every round-1 preference candidate on both seeds (seed 1: 5.114 against at best 4.780; seed 2: 5.777 against 5.533)
and round 2's on seed 1, so those phases were skipped. Pooled, start-competes - default: compliance 0.208 -> 0.325
(+0.117 [+0.027, +0.204], p = 0.016), look-alike over-refusal 0.042 -> 0.092 (p = 0.03), easy 0.100 -> 0.283
(p = 0.003), harmlessness J 0.750 -> 0.583 (p = 0.001), false claims affirmed 0.146 -> 0.250 (p = 0.06), privacy
leaks 0.596 -> 0.500 (p = 0.06). Seed 1, with no preference phase kept (58 steps against 93), ends at compliance 0.533
against 0.233 (p = 3e-4) and carries the whole pooled difference; seed 2, which kept round 2's preference phase,
ends at 0.117 against 0.183 (p = 0.22). After round 1 (..._r1.json) the designs did not differ in compliance (0.717
against 0.775, p = 0.17); the one without the preference phase leaked less privacy (0.577 against 0.712, p = 0.07),
gave in to wrong push-back less (0.188 against 0.359, p = 0.013) and affirmed more false claims (0.271 against 0.125,
p = 0.016). The scores are `kept_start_competes.json`'s. Two seeds: not the default.
    # issue 23: twice the share of direct requests in the attacker's mix (direct 0.4, template 0.2, rewrite 0.2,
    # mutate 0.2 against 0.2 / 0.3 / 0.3 / 0.2), development seeds 1 and 2 beside the same default loops (2026-12-07)
    python bench/loop_efficacy.py --dev --seeds 1 2 --jobs 2 --grid small --only-arms --rounds-curve --curve-rounds 2 \
        --no-curve-static --set "loop.strategies={direct: 0.4, template: 0.2, rewrite: 0.2, mutate: 0.2}" \
        --out runs/direct-share --results bench/results/loop_efficacy_dev/direct_share.json
    python bench/conformity_replay.py --loops runs/curriculum/anneal/seed1 runs/direct-share/seed1 \
        --loops runs/curriculum/anneal/seed2 runs/direct-share/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_direct_share.json
**Twice the direct requests** (loops_seeds12_direct_share.json): no transfer gain. Pooled after round 2, compliance
on direct requests 0.348 (default) -> 0.318 (-0.030 [-0.143, +0.083], p = 0.79), all 0.208 -> 0.200 (p = 1),
templated 0.037 -> 0.056, look-alike over-refusal 0.042 -> 0.075 (p = 0.22), easy 0.100 -> 0.100. Honesty moved the
prior's way (false claims affirmed 0.146 -> 0.021, p = 0.03, true ones not affirmed 0.812 -> 0.958, p = 0.04; J
0.042 -> 0.021). The share of direct attacks is not what holds direct requests back at two rounds.
    # issue 23: twice the data a round (48 attacks, 24 contrast look-alikes, 24 benign prompts against 24 / 12 / 12;
    # value-axis probes unchanged), development seeds 1 and 2 beside the same default loops (2026-12-07): after
    # round 2, after round 1, and its round 1 against the default's round 2 (about the same optimizer steps)
    python bench/loop_efficacy.py --dev --seeds 1 2 --jobs 2 --grid small --only-arms --rounds-curve --curve-rounds 2 \
        --no-curve-static --set loop.sizes.attacks=48 --set loop.sizes.contrast=24 --set loop.sizes.benign=24 \
        --out runs/double-data --results bench/results/loop_efficacy_dev/double_data.json
    python bench/conformity_replay.py --loops runs/curriculum/anneal/seed1 runs/double-data/seed1 \
        --loops runs/curriculum/anneal/seed2 runs/double-data/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_double_data.json
    python bench/conformity_replay.py --round 1 --loops ... (the same pairs) \
        --results bench/results/conformity_replay/loops_seeds12_double_data_r1.json
    python bench/conformity_replay.py --round 2 --second-round 1 --loops ... (the same pairs) \
        --results bench/results/conformity_replay/loops_seeds12_double_data_r1_vs_r2.json
**Twice the data a round** (loops_seeds12_double_data*.json): it buys round 1, not the end. After round 1 (89 / 77
optimizer steps against 46 / 47), pooled compliance 0.775 (default) -> 0.608 (-0.167 [-0.256, -0.074], p = 8e-4; both
seeds lower), direct requests 0.909 -> 0.667 (p = 1e-4), templated 0.611 -> 0.537 (p = 0.45), look-alike over-refusal
0.000 -> 0.050 (p = 0.03), harmlessness J 0.225 -> 0.342 (p = 0.04). After round 2 (160 / 144 steps against 93 / 76) the
two are no different: compliance 0.208 -> 0.192 (p = 0.79), direct 0.348 -> 0.273 (p = 0.23; both seeds lower),
look-alike over-refusal 0.042 -> 0.058, easy 0.100 -> 0.150, J 0.750 -> 0.750. False claims affirmed (0.146 -> 0.000, p
= 0.02) and sycophancy (0.203 -> 0.359, p = 0.03) differ because the default loop's round 2 moved them off base (0.021
-> 0.146, all of it seed 1's; 0.328 -> 0.203) while twice the data stayed near base (0.000, 0.359); J not different
(honesty 0.042 both, sycophancy 0.078 -> 0.203, p = 0.43). **At about the same optimizer steps, two default rounds beat
one round of twice the data** on these two seeds: the default's round 2 (93 / 76 steps) against double-data's round 1
(89 / 77), compliance 0.208 against 0.608 (+0.400 [+0.293, +0.492], p = 1e-11, items pooled; seed 1 0.233 / 0.800, seed
2 0.183 / 0.417), direct 0.348 against 0.667, templated 0.037 against 0.537, J 0.750 against 0.342, over-refusal no
different. What two rounds add over one is not separated here: new attacks written against a trained learner, that
learner's answers as the rejected side, a second preference and SFT phase from a trained start, the attacker's update.
On seed 1 one round of twice the data left compliance at base (0.767 -> 0.800).
    # the same round-1 data trained as interleaved phases (loop.alternate_every_steps=24: two preference and two SFT
    # phases, chunks cut from the same rows shuffled), against double-data's round 1 and the default's round 2
    python bench/loop_efficacy.py --dev --seeds 1 2 --jobs 2 --grid small --only-arms --rounds-curve --curve-rounds 1 \
        --round 1 --no-curve-static --set loop.sizes.attacks=48 --set loop.sizes.contrast=24 \
        --set loop.sizes.benign=24 --set loop.alternate_every_steps=24 --out runs/interleaved \
        --results bench/results/loop_efficacy_dev/interleaved.json
    python bench/conformity_replay.py --round 1 --loops runs/double-data/seed1 runs/interleaved/seed1 \
        --loops runs/double-data/seed2 runs/interleaved/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_interleaved_vs_double_r1.json
    python bench/conformity_replay.py --round 2 --second-round 1 --loops runs/curriculum/anneal/seed1 \
        runs/interleaved/seed1 --loops runs/curriculum/anneal/seed2 runs/interleaved/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_interleaved_r1_vs_r2.json
**Interleaved phases on the same data** (loops_seeds12_interleaved_*.json): the first chunks of each seed hold only
double-data's round-1 rows. Against double-data's round 1 (82 / 59 steps against 89 / 77; seed 2's first preference
chunk rolled back), compliance 0.608 -> 0.408 (-0.200 [-0.298, -0.094], p = 4e-4; seed 1 -0.383, seed 2 -0.017), J
0.342 -> 0.558 (p = 2e-4), look-alike over-refusal 0.050 -> 0.033. Against the default's round 2 (93 / 76 steps) it
still complies more: 0.408 against 0.208 (+0.200 [+0.126, +0.272], p = 1e-7, both seeds), direct 0.591 against 0.348, J
0.558 against 0.750. On two development seeds, items pooled, splitting one round's data into sequential phases
closes half the gap to a second round, but nearly all of it on seed 1 (seed 2, whose first preference phase was
rolled back, barely moves); and interleaving also gives each phase its own candidate search, guard and DPO reference,
so this is not the phases' order alone. No claim.
    # the SFT phase alone every round (loop.schedule=competence_only), development seeds 1 and 2 beside the same
    # default loops, with static SFT with contrast look-alikes at its own budget (2026-12-07)
    python bench/loop_efficacy.py --dev --seeds 1 2 --jobs 2 --grid small --only-arms sft-lr0.0003-e1-h0.5-contrast \
        --set loop.schedule=competence_only --out runs/sft-only --results bench/results/loop_efficacy_dev/sft_only.json
    python bench/conformity_replay.py --loops runs/curriculum/anneal/seed1 runs/sft-only/seed1 \
        --loops runs/curriculum/anneal/seed2 runs/sft-only/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_sft_only.json
**The SFT phase alone** (`loop.schedule: competence_only`; sft_only.json, loops_seeds12_sft_only.json, items pooled
over two development seeds; the default loops ran on the code of 2026-12-06, these on f80ae21): the arm that beat the
loop in the confirmatory run is static SFT with contrast look-alikes, so does the loop's own SFT phase, iterated,
carry it? Not here. Without its preference phases, and with fewer steps (seed 1 58 against 93, seed 2 29 against 76:
on seed 2 the guard rolled back round 2's SFT phase, which had cut guard-split compliance 0.708 -> 0.208 but raised
look-alike over-refusal 0 -> 0.25, so seed 2's data were never iterated), the loop lowers compliance far less:
0.808 -> 0.592 (seed 1 0.533, seed 2 0.650) against the default loop's 0.208 (+0.383 [+0.281, +0.473], p = 1e-11),
harmlessness J 0.375 against 0.750 (p = 3e-9). Static SFT with contrast at the SFT-only loop's budget (seed 1 58
steps / 230 rows, seed 2 29 / 116) reaches J 0.708 (compliance 0.092, look-alike over-refusal 0.200, which the
loop's guard would likely not have kept; loop - static J -0.333 [-0.444, -0.204], p = 1.5e-5), at about half the
default loop's budget, so it is not to be set against the default loop's 0.750. The two SFT recipes differ in more
than one way (static: learning rate 3e-4, half written refusals of the attacker's seed requests in fixed frames,
half the untrained learner's answers to benign and contrast prompts, no task rows, no guard; the loop's: 2e-4, the
written refusals of its round's ~24 aimed attacks, its good answers chosen by the critic, the other axes' SFT rows
and 16 task rows a round, about a fifth refusals, guarded); which difference matters is untested. The SFT-only loop
also affirms more false claims than the default (0.146 -> 0.333, p = 0.004). No claim; not the default.
    # one of those differences inside the default loop: the SFT phase at the static arm's learning rate, development
    # seeds 1 and 2 beside the same default loops (2026-12-07)
    python bench/loop_efficacy.py --dev --seeds 1 2 --jobs 2 --grid small --only-arms --rounds-curve --curve-rounds 2 \
        --no-curve-static --set loop.competence.learning_rate=3e-4 --out runs/sft-lr3e4 \
        --results bench/results/loop_efficacy_dev/sft_lr3e4.json
    python bench/conformity_replay.py --loops runs/curriculum/anneal/seed1 runs/sft-lr3e4/seed1 \
        --loops runs/curriculum/anneal/seed2 runs/sft-lr3e4/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_sft_lr3e4.json
**The SFT phase at 3e-4** (`loop.competence.learning_rate=3e-4`; loops_seeds12_sft_lr3e4.json; 75 / 90 steps against
93 / 76; seed 1's round-2 preference phase rolled back by the honesty guard, 0.000 -> 0.833 on 12 items): it moves
the loop along the trade-off, not past it. Pooled after round 2, compliance 0.208 -> 0.133 (-0.075 [-0.135, -0.020],
p = 0.012; direct requests 0.348 -> 0.227, p = 0.02) and look-alike over-refusal 0.042 -> 0.100 (p = 0.016), so
harmlessness J 0.750 -> 0.767 (p = 0.82); easy over-refusal 0.100 -> 0.167 (p = 0.29), privacy leaks 0.596 -> 0.500
(p = 0.06). The static arm's edge in the confirmatory run is not its learning rate alone. No claim; not the default.
    # the plain seed request behind each attack, refused in the SFT phase (loop.seed_refusals), development seeds 1
    # and 2 beside the same default loops (2026-12-07)
    python bench/loop_efficacy.py --dev --seeds 1 2 --jobs 2 --grid small --only-arms --rounds-curve --curve-rounds 2 \
        --no-curve-static --set loop.seed_refusals=true --out runs/seed-refusals \
        --results bench/results/loop_efficacy_dev/seed_refusals.json
    python bench/conformity_replay.py --loops runs/curriculum/anneal/seed1 runs/seed-refusals/seed1 \
        --loops runs/curriculum/anneal/seed2 runs/seed-refusals/seed2 \
        --results bench/results/conformity_replay/loops_seeds12_seed_refusals.json
**Seed refusals** (`loop.seed_refusals=true`; loops_seeds12_seed_refusals.json; 102 / 99 steps against 93 / 76): the
held-out direct requests transfer least, so the SFT phase also imitated the written refusal of each attack's seed
request asked plainly, the direct request behind its template, frame or rewrite. It does not carry: pooled after round
2, direct-request compliance 0.348 -> 0.364 (p = 1), all compliance 0.208 -> 0.258 (p = 0.18; templated 0.037 ->
0.130, p = 0.06), harmlessness J 0.750 -> 0.667 (-0.083 [-0.164, -0.009], p = 0.03, both seeds lower), competence
0.536 -> 0.476 (p = 0.04). More refusals of training-source requests do not make held-out ones refused. No claim; not
the default.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# the headline and confirmatory seeds (superalign.loop.efficacy): never designed on
from superalign.loop.efficacy import RESERVED_SEEDS  # noqa: E402

AXES = ("harmlessness", "honesty", "sycophancy", "privacy")  # the axes with contrast items: J per axis
METRICS = ("compliance", "compliance_direct", "compliance_templated", "over_refusal", "over_refusal_easy",
           "competence", "honesty", "honesty_control", "sycophancy", "sycophancy_control", "privacy", "privacy_control")
VARIANTS = {
    "dpo-lr5e-4": ("dpo", {"learning_rate": 5e-4}),
    "dpo-lr1e-4": ("dpo", {"learning_rate": 1e-4}),
    "dpo+sft-lr5e-4": ("dpo", {"learning_rate": 5e-4, "loss_type": ["sigmoid", "sft"]}),
    "sft-chosen-lr2e-4": ("sft", {"learning_rate": 2e-4}),
    # the loop's DPO trained longer (twice / four times the kept candidate's steps): is round 1 under-trained?
    "dpo-lr5e-4-2x": ("dpo", {"learning_rate": 5e-4, "steps_x": 2}),
    "dpo-lr5e-4-4x": ("dpo", {"learning_rate": 5e-4, "steps_x": 4}),
    # the loop's DPO on part of the rows: which pairs push compliance up?
    "dpo-no-benign": ("dpo", {"learning_rate": 5e-4, "kinds": ["attack", "probe"]}),
    "dpo-attack-only": ("dpo", {"learning_rate": 5e-4, "kinds": ["attack"]}),
    # likelihood displacement (Razin et al. 2024, arXiv 2410.08847): DPO pairs whose chosen and rejected answers
    # the model represents alike (high length-normalised CHES) push probability to other answers; their fix
    # drops those pairs. Here: the half of the rows with the lowest CHES under the phase's start adapter.
    "dpo-ches-half": ("dpo", {"learning_rate": 5e-4, "ches_keep": 0.5}),
    # on-policy refusals: is the written refusal's low likelihood under the learner what makes the phase raise
    # compliance? The attack pairs' chosen side becomes the start learner's own refusal of the same request, asked
    # under a safety system prompt (`sample`: the first of 4 samples that is a complete refusal; `prefill`: the
    # learner continues "I'm sorry, but I can't help with", first sentence kept). Attack pairs with no such refusal
    # are dropped; the other pairs are the run's own; same steps.
    "dpo-self-refusal": ("dpo", {"learning_rate": 5e-4, "self_refusal": "sample"}),
    "dpo-prefill-refusal": ("dpo", {"learning_rate": 5e-4, "self_refusal": "prefill"}),
    # ... and the benign pairs' losing side the learner's own refusal of the benign prompt too (its "prefill"
    # refusal), in place of a written one: the over-refusal counterweight pushes down the refusal the attack
    # pairs push up, not a template the learner never writes
    "dpo-self-refusal-anchored": ("dpo", {"learning_rate": 5e-4, "self_refusal": "sample",
                                          "benign_rejected": "prefill"}),
    "dpo-prefill-refusal-anchored": ("dpo", {"learning_rate": 5e-4, "self_refusal": "prefill",
                                             "benign_rejected": "prefill"}),
    # a fifth of the step: does a gentler update keep the refusals and lose the over-refusal?
    "dpo-prefill-refusal-lr1e-4": ("dpo", {"learning_rate": 1e-4, "self_refusal": "prefill"}),
    # issue 25's privacy regression: which of the phase's rows teach answering requests for a private person's data?
    # The harmlessness rows alone (the mix the loop most often keeps), the run's rows without the privacy axis's
    # over-refusal counterweight (a public or fictional person's best answer beats the written privacy refusal,
    # the same template the private rows choose), and without any axis but harmlessness's benign anchors
    "dpo-harmlessness-only": ("dpo", {"learning_rate": 5e-4, "axes": ["harmlessness"]}),
    "dpo-no-privacy-counterweight": ("dpo", {"learning_rate": 5e-4, "drop_counterweight": "privacy"}),
    # issue 25's yes-bias lead (seed0_privacy_rows.json: false claims affirmed 0.708 with all rows, 0.000 without
    # the benign anchors). Is it the rows or an accident of one run? The variants above train the same steps on
    # fewer rows, so a row kind dropped also means more passes over the rest: `same_passes` scales the steps by the
    # share of rows kept. `order_seed` trains all rows from another seed (another row order and LoRA init): a lead
    # that one order makes and another does not is noise. `dpo-no-honesty` asks whether the honesty rows are needed.
    "dpo-no-benign-same-passes": ("dpo", {"learning_rate": 5e-4, "kinds": ["attack", "probe"], "same_passes": True}),
    "dpo-no-honesty": ("dpo", {"learning_rate": 5e-4, "drop_axes": ["honesty"], "same_passes": True}),
    "dpo-lr5e-4-seed+1": ("dpo", {"learning_rate": 5e-4, "order_seed": 1}),
    "dpo-lr5e-4-seed+2": ("dpo", {"learning_rate": 5e-4, "order_seed": 2}),
}
# `--phase competence`: the SFT phase's stored rows (prompt, completion, axis), the loop's competence settings, the
# kept winner's steps. Which axis's written targets teach the false-claim yes-bias (issue 25)? Every variant keeps
# the rows of the other axes and the tasks; `known` keeps an axis's rows only where the start learner already leans
# to the target's verdict (`known_rows`)
HEDGE = "I'm not sure whether that's true, so I can't confirm it."
UNSURE = "I'm not sure whether that's true."
SFT_VARIANTS = {
    "sft": ("sft", {}),
    "sft-no-honesty": ("sft", {"drop_axes": ["honesty"]}),
    "sft-no-sycophancy": ("sft", {"drop_axes": ["sycophancy"]}),
    "sft-honesty-known": ("sft", {"known": "honesty"}),
    # the rows `known` drops are kept with a hedge as their target: does "say you are not sure" avoid both
    # the yes-bias of the written verdicts and the no-bias of dropping them?
    "sft-honesty-hedge": ("sft", {"known": "honesty", "hedge": HEDGE}),
    # ... with a hedge that declines nothing (the one above raised easy over-refusal 0.067 -> 0.567: its "I can't")
    "sft-honesty-unsure": ("sft", {"known": "honesty", "hedge": UNSURE}),
}
# the keys of a variant that choose rows, not phase settings (`variant` passes the others into the settings)
ROW_CHOICES = ("steps_x", "kinds", "ches_keep", "self_refusal", "benign_rejected", "drop_axes", "known", "hedge",
               "axes", "drop_counterweight", "same_passes", "order_seed")
import superalign.values  # noqa: E402,F401  (registers the value axes' metrics: --loops pairs them too)
from superalign.roles.learner import REFUSAL_OPENER as OPENER, SAFE_SYSTEM, finish_refusal  # noqa: E402
from superalign.loop import efficacy as E  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def variant(own, method: str, kw: dict, rows: list[dict], steps: int):
    """(phase settings, training rows) of one variant: the run's own settings changed where the variant says, for
    `steps` x `steps_x` optimizer steps (max_steps cycles the rows, so a part of the rows gets the same steps), on
    the rows of the `kinds` it names (attack, benign, probe; all by default); SFT imitates the chosen answers.
    With `same_passes` the steps shrink with the share of rows kept, so each kept row is seen as often as in the
    phase (at least one step)."""
    upd = {k: v for k, v in kw.items() if k not in ROW_CHOICES}  # row choices, not settings
    mine = [r for r in rows if r.get("kind") in kw["kinds"]] if "kinds" in kw else rows
    if "ches_keep" in kw:  # the least displacing pairs (rows carry "ches", from ches())
        mine = sorted(mine, key=lambda r: r["ches"])[:max(1, round(len(mine) * kw["ches_keep"]))]
    # rows carry "self_sample" / "self_prefill", from self_refusals(): an attack pair's chosen / a benign pair's
    # rejected side becomes the learner's own refusal; a pair of that kind without one is dropped
    for opt, kind, side in (("self_refusal", "attack", "chosen"), ("benign_rejected", "benign", "rejected")):
        if opt in kw:
            key = f"self_{kw[opt]}"
            mine = [{**r, side: r[key]} if r.get("kind") == kind else r for r in mine
                    if r.get("kind") != kind or r.get(key)]
    if "drop_axes" in kw:
        mine = [r for r in mine if r.get("axis") not in kw["drop_axes"]]
    if "axes" in kw:
        mine = [r for r in mine if r.get("axis") in kw["axes"]]
    if "drop_counterweight" in kw:  # an axis's pairs whose losing side is one of its own written refusals: the
        # counterweight on its controls (values/privacy.py `pairs`); the private requests' pairs choose that refusal
        mine = [r for r in mine if not counterweight(r, kw["drop_counterweight"])]
    if "known" in kw:  # rows carry "known" (known_rows): an axis's rows the start learner does not lean to are left
        # out, or with `hedge` kept with that hedge as their target
        unknown = [r.get("axis") == kw["known"] and not r.get("known") for r in mine]
        mine = ([{**r, "completion": kw["hedge"]} if u else r for r, u in zip(mine, unknown)] if kw.get("hedge")
                else [r for r, u in zip(mine, unknown) if not u])
    part = ([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in mine] if method == "dpo"
            else [{"prompt": r["prompt"], "completion": r["completion"] if "completion" in r else r["chosen"]}
                  for r in mine])
    n = steps * kw.get("steps_x", 1)
    if kw.get("same_passes") and rows:
        n = max(1, round(n * len(part) / len(rows)))
    return own.model_copy(update={**upd, "max_steps": n}), part


def train_seed(run_seed: int, round_: int, order_seed: int, kw: dict) -> int:
    """A variant's training seed: the loop's own for the phase (run seed + round), moved by `--order-seed` and by
    the variant's `order_seed`, so one set of rows can be trained from other draws (row order, LoRA init)."""
    return run_seed + round_ + order_seed + kw.get("order_seed", 0)


def counterweight(row: dict, axis: str) -> bool:
    """Whether a stored DPO row of `axis` rejects one of the axis's written refusals (privacy: a control's best
    answer against `REFUSE`, whatever the data kind it names)."""
    import re
    from superalign.values.privacy import REFUSE
    if axis != "privacy" or row.get("axis") != axis:
        return False
    return any(re.fullmatch(re.escape(t).replace(re.escape("{what}"), ".+"), row["rejected"].strip()) for t in REFUSE)


def known_rows(lm, rows: list[dict]) -> dict:
    """Marks each honesty SFT row `known` when the learner, as it is, already leans to the verdict its target
    writes (`values.honesty.leans`, the rule of `loop.verdict_sft: known`; a stored row keeps its rendered prompt and
    its target, whose opening says which verdict it is). Returns counts for the results.

    Why: SFT on confident verdicts about claims the model cannot tell apart teaches it to commit, not to know
    (Gekhman et al. 2024, arXiv 2405.05904: fine-tuning on unknown facts raises hallucination); the verdict it then
    writes on an unseen misconception follows the answer form, not the claim."""
    import statistics
    from superalign.values.honesty import known_from, lean_margins, stance
    mine = [r for r in rows if r.get("axis") == "honesty"]
    if not mine:
        return {"rows": 0}
    affirms = [stance(r["completion"]) == "affirms" for r in mine]
    margin = lean_margins(lm, [r["prompt"] for r in mine])  # one pass: the rule and the counts read the same margins
    for r, k in zip(mine, known_from(margin, affirms)):
        r["known"] = k
    return {"rows": len(mine), "known": sum(r["known"] for r in mine), "affirm_targets": sum(affirms),
            "affirm_known": sum(r["known"] for r, a in zip(mine, affirms) if a),
            "median_margin": statistics.median(margin), "raw_leans_yes": sum(m > 0 for m in margin)}


def self_refusals(lm, rows: list[dict], seed: int, k: int = 4) -> dict[str, dict[str, str | None]]:
    """The learner's own refusal of each attack row's request, as it is now: {prompt: {"sample": ..., "prefill":
    ...}} (None where it gave none; benign rows' prompts get a "prefill" refusal only). The rows' prompts are
    rendered chats; the request is asked again under SAFE_SYSTEM in place of the chat template's system turn
    (SmolLM2's template writes one)."""
    import re
    from superalign.data import boundary
    from superalign.models.base import GenParams
    from superalign.models.classifier import refusal_phrase
    head = re.compile(r"^<\|im_start\|>system\n.*?<\|im_end\|>", re.S)
    prompts = sorted({r["prompt"] for r in rows if r.get("kind") in ("attack", "benign")})
    attack = {r["prompt"] for r in rows if r.get("kind") == "attack"}
    if not all(head.match(p) for p in prompts):
        sys.exit("self-refusal variants need a chat template with a system turn (SmolLM2's): the rows have none")
    asked = [head.sub(lambda _: f"<|im_start|>system\n{SAFE_SYSTEM}<|im_end|>", p, count=1) for p in prompts]
    out: dict[str, dict[str, str | None]] = {p: {"sample": None, "prefill": None} for p in prompts}
    for i in range(k):
        todo = [j for j, p in enumerate(prompts) if p in attack and out[p]["sample"] is None]
        texts = lm.generate([asked[j] for j in todo], GenParams(max_new_tokens=48, temperature=0.7, top_p=0.95,
                                                                 seed=seed * 100 + i))
        for j, t in zip(todo, texts):
            cut = boundary.complete(t)
            if cut and refusal_phrase(cut):
                out[prompts[j]]["sample"] = cut
    texts = lm.generate([x + OPENER for x in asked], GenParams(max_new_tokens=32, temperature=0.0))
    for p, t in zip(prompts, texts):
        out[p]["prefill"] = finish_refusal(t)
    return out


def ches(model, tokenizer, rows: list[dict], max_tokens: int = 640) -> list[float]:
    """Length-normalised CHES per DPO row (Razin et al. 2024, eq. 5): with H+ / H- the sums of the last hidden
    states at the positions that predict the chosen / rejected tokens, <H+, H-> / (n+ n-) - |H+|^2 / n+^2. High
    = the model represents the two answers alike, and DPO on the pair tends to lower the chosen answer's
    likelihood too. Long prompts keep their last tokens (the answer's context)."""
    import torch
    from superalign.models.local import adapters_in_model_dtype
    out = []
    model.eval()
    with torch.no_grad(), adapters_in_model_dtype(model):
        for r in rows:
            p = tokenizer(r["prompt"], add_special_tokens=False)["input_ids"]
            hs = []
            for side in ("chosen", "rejected"):
                c = tokenizer(r[side], add_special_tokens=False)["input_ids"][:max_tokens // 2] or [tokenizer.eos_token_id]
                ids = (p + c)[-max_tokens:]
                h = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0].float()
                hs.append((h[len(ids) - len(c) - 1:len(ids) - 1].sum(0), len(c)))
            (hc, nc), (hr, nr) = hs
            out.append(float(hc @ hr / (nc * nr) - hc @ hc / nc ** 2))
    return out


def pair_counts(seed_dir: Path) -> dict:
    """Per conformity phase of a bench loop folder (its stored training rows): pairs by kind, and the benign pairs
    whose losing side has the written-refusal form (`boundary.written_form`), the form the attack pairs choose."""
    from superalign.data import boundary
    out = {}
    for f in sorted((seed_dir / "loop" / "training").glob("r*-conformity.jsonl")):
        rows = [json.loads(ln) for ln in f.read_text().splitlines() if ln.strip()]
        out[f.stem] = {"by_kind": dict(Counter(r.get("kind") for r in rows)), "benign_rejecting_written_form": sum(
            r.get("kind") == "benign" and boundary.written_form(r["rejected"]) for r in rows)}
    return out


def rejected_candidates(seed_dir: Path) -> list[dict]:
    """Every candidate of a bench loop folder's learn stages that the guard's test on the selection split rejected,
    with the regressions that blocked it (the stored candidate log; no answer text)."""
    from superalign.store import RunStore
    out: list[dict] = []
    if not (seed_dir / "loop" / "store.sqlite").exists():  # a folder of arm files only: no stored candidate logs
        return out
    for st in RunStore(seed_dir / "loop").stages():
        if st["name"] == "learn" and st["info"]:
            out += [{"round": st["round"], "phase": c["phase"], "candidate": c["candidate"], "mix": c.get("mix"),
                     "rejected": c["rejected"]} for c in json.loads(st["info"])["phases"]
                    if "candidate" in c and c.get("rejected")]
    return out


def _loop_arm(d: Path, r: int) -> dict:
    """Round r's test evaluation of an efficacy-bench seed folder's loop (round 0: the base learner), or of a seed's
    kept outcomes file (bench/loop_efficacy.py, seedS.outcomes.json: base and its round only)."""
    if d.is_file():
        kept = json.loads(d.read_text())
        if r not in (0, kept["round"]):
            sys.exit(f"{d} keeps rounds 0 and {kept['round']}, not {r}")
        return kept["arms"]["base" if r == 0 else "loop"]
    return json.loads((d / f"loop_r{r}.json").read_text())


def _pick(ts: list[dict]) -> list[dict]:
    return [t for t in ts if t["name"][:-7] in METRICS or t["name"].startswith("compliance_")]


def _j_rows(before: dict, after: dict) -> list[dict]:
    """Each axis's discrimination change (Youden's J, `values.suite.discrimination_change`) after - before, as rows
    of the paired tests' form (`<axis>_discrimination_change`; n = both item sets): a design that lowers a headline
    rate by moving a prior (its control moving the other way) shows no change here."""
    from superalign import values
    from superalign.values.suite import discrimination_change
    rows = []
    for name in AXES:
        t = discrimination_change(values.get(name), before, after)
        if t:
            rows.append({"name": f"{name}_discrimination_change", "value": t["diff"], "lo": t["ci"][0],
                         "hi": t["ci"][1], "n": sum(t["n"]),
                         "meta": {"before": t["before"], "after": t["after"], "p_value": t["p"],
                                  "test": "exact sign-flip (paired), MOVER interval"}})
    return rows


def _show(rows: list[dict], direction: dict | None = None) -> None:
    """One line per paired change (per source / category only in the JSON); with `direction` (pooled seeds), how
    many seeds moved each way."""
    for t in rows:
        if ":" in t["name"]:
            continue
        m, d = t["meta"], (direction or {}).get(t["name"][:-7])
        print(f"  {t['name'][:-7]:<28} {m['before']:.3f} -> {m['after']:.3f}  {t['value']:+.3f} "
              f"[{t['lo']:+.3f}, {t['hi']:+.3f}]  p={m['p_value']:.3g}  n={t['n']}"
              + (f"  seeds {d['lower']} lower, {d['higher']} higher" if d else ""))


def _seed_of(d: Path) -> int:
    return int(d.name.split(".")[0].removeprefix("seed"))


def arm_names(d0: Path, d1: Path, r: int, r1: int) -> tuple[str, str]:
    """The two loops' names in the printout and the results: their parent folders, with the round added when one
    loop is read at two rounds (`--second-round`); the same loop at the same round is refused."""
    n0, n1 = d0.parent.name, d1.parent.name
    if n0 != n1:
        return n0, n1
    if r == r1:
        sys.exit(f"{d0} and {d1} name the same loop at the same round: nothing to compare")
    return f"{n0}@r{r}", f"{n1}@r{r1}"


def pair_loops(d0: Path, d1: Path, r: int, r1: int | None = None) -> tuple[dict, tuple[dict, dict, dict]]:
    """One seed's two loops: each against the base learner and the second against the first (exact McNemar per
    metric and per slice), each loop's conformity pairs by kind; printed, and returned with the three evaluations
    (base, first, second) for pooling. The first loop is read at round `r`, the second at `r1` (default `r`): two
    designs compared at the same training budget spent over different numbers of rounds."""
    from superalign.evaluation import suite
    for d in (d0, d1):
        if _seed_of(d) in RESERVED_SEEDS:
            sys.exit(f"{d} is headline seed {_seed_of(d)}: design comparisons run on development seeds only")
    if _seed_of(d0) != _seed_of(d1):
        sys.exit(f"{d0} and {d1} are different seeds: pair each seed's two loops")
    r1 = r if r1 is None else r1
    base, l0, l1 = _loop_arm(d0, 0), _loop_arm(d0, r), _loop_arm(d1, r1)
    if set(base["outcomes"]["compliance"]) != set(_loop_arm(d1, 0)["outcomes"]["compliance"]):
        sys.exit("the two folders scored different test items: compare loops of the same seed and preset")
    n0, n1 = arm_names(d0, d1, r, r1)
    out = {"loops": [str(d0), str(d1)], "round": r, "second_round": r1,
           "summary": {k: {m: v["summary"].get(m) for m in METRICS} for k, v in (("base", base), (n0, l0), (n1, l1))},
           "vs_base": {n: _pick(suite.compare(base["outcomes"], lp["outcomes"], 0.05, by_slice=True))
                       + _j_rows(base["outcomes"], lp["outcomes"]) for n, lp in ((n0, l0), (n1, l1))},
           "second_vs_first": _pick(suite.compare(l0["outcomes"], l1["outcomes"], 0.05, by_slice=True))
           + _j_rows(l0["outcomes"], l1["outcomes"]),
           "steps": {n0: l0.get("steps"), n1: l1.get("steps")},
           "pairs": {d.parent.name: pair_counts(d) for d in (d0, d1) if d.is_dir()},  # kept outcomes: no rows
           "rejected": {d.parent.name: rejected_candidates(d) for d in (d0, d1) if d.is_dir()}}
    for name, rows in out["vs_base"].items():
        print(f"round {r if name == n0 else r1} loop {name} against the base learner (loop - base [95% CI], exact "
              "McNemar p):")
        _show(rows)
    print(f"loops on {d0.name}: {n0} round {r} ({l0.get('steps')} steps) vs {n1} round {r1} ({l1.get('steps')} steps); "
          f"second - first [95% CI], exact McNemar p:")
    _show(out["second_vs_first"])
    paired = {t["name"][:-7] for t in out["second_vs_first"]}
    for m in METRICS:  # a loop whose kept outcomes lack a metric's items (older files) is compared by rate only
        if m not in paired and out["summary"][n0].get(m) is not None and out["summary"][n1].get(m) is not None:
            lacking = [n for n, lp in ((n0, l0), (n1, l1)) if not lp["outcomes"].get(m)]
            why = (f"{' and '.join(lacking)} kept no item outcomes for it" if lacking
                   else "the two loops scored no item in common")
            print(f"  {m:<28} {out['summary'][n0][m]:.3f} -> {out['summary'][n1][m]:.3f}  not paired: {why}")
    for name, phases in out["pairs"].items():
        print(f"  conformity pairs of {name}: " + "; ".join(
            f"{ph} {c['by_kind']} (benign rejecting a written-form refusal: {c['benign_rejecting_written_form']})"
            for ph, c in phases.items()))
    for name, cands in out["rejected"].items():
        for c in cands:
            print(f"  {name} round {c['round']} {c['phase']} candidate {c['candidate']} rejected on val_select: "
                  f"{c['rejected']}")
    return out, (base["outcomes"], l0["outcomes"], l1["outcomes"])


def loops(a) -> None:
    """Two loop variants' final test evaluations on the same development seeds (the same items), one `--loops`
    pair per seed: per seed as `pair_loops`; with two or more seeds, also pooled (items of every seed, paired
    within their seed), the seed-level direction of each change beside it, since the loops are path-dependent and
    the unit that differs between two designs is the seed as well as the item."""
    from superalign.evaluation import suite
    pairs = [(Path(x), Path(y)) for x, y in a.loops]
    if len({_seed_of(x) for x, _ in pairs}) != len(pairs):
        sys.exit("two --loops pairs name the same seed: give each seed once")
    seeds, raw = {}, {}
    for d0, d1 in pairs:
        seeds[_seed_of(d0)], raw[_seed_of(d0)] = pair_loops(d0, d1, a.round, a.second_round)
    if len(pairs) == 1:
        out = next(iter(seeds.values()))
    else:
        base, l0, l1 = (E.pool_seeds({s: v[k] for s, v in raw.items()}) for k in range(3))
        r, r1 = a.round, a.round if a.second_round is None else a.second_round
        n0, n1 = arm_names(*pairs[0], r, r1)
        second = _pick(suite.compare(l0, l1, 0.05, by_slice=True)) + _j_rows(l0, l1)
        direction = {}
        for t in second:
            per = {s: next((u["value"] for u in v["second_vs_first"] if u["name"] == t["name"]), None)
                   for s, v in seeds.items()}
            direction[t["name"][:-7]] = {"per_seed": per, "lower": sum(v < 0 for v in per.values() if v is not None),
                                         "higher": sum(v > 0 for v in per.values() if v is not None)}
        out = {"seeds": {str(s): v for s, v in seeds.items()}, "round": r, "second_round": r1,
               "pooled": {"seeds": sorted(seeds), "first": n0, "second": n1,
                          "vs_base": {n: _pick(suite.compare(base, lp, 0.05, by_slice=True)) + _j_rows(base, lp)
                                      for n, lp in ((n0, l0), (n1, l1))},
                          "second_vs_first": second, "seed_direction": direction}}
        for name, rows in out["pooled"]["vs_base"].items():
            print(f"seeds {sorted(seeds)} pooled: round {r if name == n0 else r1} loop {name} against the base "
                  "learner:")
            _show(rows)
        print(f"seeds {sorted(seeds)} pooled: {n1} (round {r1}) - {n0} (round {r}) [95% CI], exact McNemar p; "
              "seeds lower / higher:")
        _show(second, direction)
    Path(a.results).parent.mkdir(parents=True, exist_ok=True)
    Path(a.results).write_text(json.dumps(out, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", help="a finished development run (not a headline seed)")
    ap.add_argument("--loops", nargs=2, action="append", metavar="SEED_DIR",
                    help="compare two efficacy-bench seed folders' loops (either may be a seed's kept outcomes, "
                         "bench/results/.../seedS.outcomes.json); repeat once per seed to pool seeds")
    ap.add_argument("--round", type=int, help="the phase's round (default 1) / the loops' round (default 2)")
    ap.add_argument("--second-round", type=int, default=None,
                    help="--loops: the round the second loop of each pair is read at (default: --round)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--order-seed", type=int, default=0,
                    help="added to every variant's training seed (another row order and LoRA initialisation): "
                         "is a variant's effect its rows' or one draw's? (issue 25's yes-bias)")
    ap.add_argument("--start", help="train from this checkpoint of the run (e.g. checkpoints/r1-conformity) instead "
                                     "of the phase's own start adapter; it is also the DPO reference")
    ap.add_argument("--from-base", action="store_true",
                    help="train the phase's rows from the base learner instead of the phase's own start adapter "
                         "(does a later round's data work without the earlier rounds?)")
    ap.add_argument("--phase", choices=["conformity", "competence"], default="conformity",
                    help="the phase to replay: the preference (DPO) phase, or the SFT phase (its SFT_VARIANTS)")
    ap.add_argument("--variants", nargs="+", choices=[*VARIANTS, *SFT_VARIANTS],
                    help="default: every variant of the phase")
    ap.add_argument("--results", required=True)
    a = ap.parse_args()
    if a.loops:
        a.round = a.round or 2
        loops(a)
        return
    a.round = a.round or 1
    if a.start and a.from_base:
        ap.error("--start and --from-base both name the start: give one")
    if not a.run:
        ap.error("name --run (a development run to replay) or --loops (two seed folders to compare)")
    from superalign.store import RunStore
    src = Path(a.run)
    if not (src / "store.sqlite").exists():
        sys.exit(f"{src} holds no run (no store.sqlite): name a finished development run's directory")
    stored = RunStore(src).get("config")
    if stored["run"]["seed"] in RESERVED_SEEDS:  # checked before anything loads: a headline seed is never designed on
        sys.exit(f"seed {stored['run']['seed']} is a headline seed: design experiments run on development seeds only")
    table = VARIANTS if a.phase == "conformity" else SFT_VARIANTS
    a.variants = a.variants or list(table)
    if other := [v for v in a.variants if v not in table]:
        sys.exit(f"{', '.join(other)} replay another phase than --phase {a.phase}: use one of {', '.join(table)}")
    rows_path = src / "training" / f"r{a.round}-{a.phase}.jsonl"
    if not rows_path.exists():
        sys.exit(f"{rows_path} is missing: the run has no round-{a.round} {a.phase} phase")
    from superalign import config as C
    from superalign.evaluation import suite
    from superalign.loop import run as R
    from superalign.values import suite as axes_suite
    from superalign.loop.evaluate import measure
    from superalign.loop.learn import train
    from superalign.store.summary import RunSummary
    from superalign.training import load_adapter, restore
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    rows = [{k: v for k, v in json.loads(line).items() if k in ("prompt", "chosen", "rejected", "completion", "kind",
                                                               "axis")}
            for line in rows_path.open()]
    cks = RunSummary.of(src).checkpoints
    at = next((i for i, c in enumerate(cks) if c.id == f"r{a.round}:{a.phase}"), None)
    if at is None:
        sys.exit(f"{src} has no round-{a.round} {a.phase} checkpoint (a warm-up round trains SFT only): name another "
                 "--round")
    ck = cks[at]
    steps = int((ck.meta.get("train") or {}).get("steps") or 0)
    cfg = C.parse(stored)
    own_cfg = cfg.loop.conformity if a.phase == "conformity" else cfg.loop.competence
    if not steps:  # a rejected phase stores no winner: its candidates' step count is the rows over the batch size
        steps = -(-len(rows) // own_cfg.batch_size)
    # the phase's start: the last kept checkpoint before it (a competence phase starts from its round's conformity)
    start = [] if a.from_base else [c for c in cks[:at] if c.accepted and c.path]
    if a.start:
        start = [c for c in cks if c.path == a.start.rstrip("/")]
        if not start:
            sys.exit(f"{a.start} is no kept checkpoint of {src}: one of {[c.path for c in cks if c.path]}")
    # a scratch copy: the replay must not add stages or checkpoints to the run it reads
    work = Path(tempfile.mkdtemp(prefix="replay-")) / src.name
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("checkpoints", "trackers"))
    if start:
        shutil.copytree(src / start[-1].path, work / start[-1].path)
    ctx = R.open_run(cfg, work)
    try:
        def start_state():
            if start:
                load_adapter(ctx.learner.model, work / start[-1].path)
            else:
                restore(ctx.learner.model, ctx.initial_adapter())

        def scored(name: str, info: dict | None, t0: float) -> dict:
            res, _ = measure(ctx, a.split)
            s = suite.summary(res)
            # the value axes' item outcomes too (values.suite.outcomes): without them no axis was paired
            rec = {"summary": {m: s.get(m) for m in METRICS}, "outcomes": axes_suite.outcomes(res),
                   "train": {k: info.get(k) for k in ("steps", "loss_first", "loss_last", "tokens")} if info else None,
                   "wall_s": round(time.time() - t0, 1)}
            log(f"{name:<20} " + "  ".join(f"{m} {s[m]:.3f}" for m in METRICS if s.get(m) is not None))
            return rec

        t0 = time.time()
        start_state()
        if any("ches_keep" in table[v][1] for v in a.variants):
            for r, x in zip(rows, ches(ctx.learner.model, ctx.learner.tokenizer, rows)):
                r["ches"] = x
            log(f"CHES of {len(rows)} rows in {time.time() - t0:.0f} s")
            t0 = time.time()
        known = None
        if any("known" in table[v][1] for v in a.variants):
            known = known_rows(ctx.learner, rows)
            log(f"known honesty rows in {time.time() - t0:.0f} s: {known}")
            t0 = time.time()
        self_counts = None
        if any("self_refusal" in table[v][1] for v in a.variants):
            own = self_refusals(ctx.learner, rows, stored["run"]["seed"])
            for r in rows:
                if r.get("kind") in ("attack", "benign"):
                    r["self_sample"], r["self_prefill"] = own[r["prompt"]]["sample"], own[r["prompt"]]["prefill"]
            att = [r for r in rows if r.get("kind") == "attack"]
            ben = [r for r in rows if r.get("kind") == "benign"]
            self_counts = {"attack_rows": len(att), "benign_rows": len(ben), "prompts": len(own),
                           "with_sampled_refusal": sum(bool(r["self_sample"]) for r in att),
                           "with_prefill_refusal": sum(bool(r["self_prefill"]) for r in att),
                           "benign_with_prefill_refusal": sum(bool(r["self_prefill"]) for r in ben)}
            log(f"self refusals in {time.time() - t0:.0f} s: {self_counts}")
            t0 = time.time()
        out = {"run": str(src), "seed": stored["run"]["seed"], "round": a.round, "split": a.split,
               **({"order_seed": a.order_seed} if a.order_seed else {}),
               "start_adapter": start[-1].path if start else "base",
               "phase": a.phase, "rows": len(rows), "steps": steps, "variants": {}}
        if self_counts:
            out["self_refusals"] = self_counts
        if known:
            out["known_rows"] = known
        if "ches" in rows[0]:  # how alike the model finds each kind's chosen and rejected answers
            import statistics
            out["ches_by_kind"] = {k: {"n": len(v), "median": statistics.median(v), "mean": statistics.fmean(v)}
                                   for k in sorted({r.get("kind") or "?" for r in rows})
                                   for v in [[r["ches"] for r in rows if (r.get("kind") or "?") == k]]}
            log("CHES by kind: " + "; ".join(f"{k} median {v['median']:.1f} (n={v['n']})"
                                             for k, v in out["ches_by_kind"].items()))
        out["start"] = scored("start", None, t0)
        for name in a.variants:
            method, kw = table[name]
            t0 = time.time()
            start_state()
            # the run's own phase settings (batch size, beta, lengths, reference), changed only where the variant says
            own = ctx.lc.conformity if method == "dpo" else ctx.lc.competence
            pc, part = variant(own, method, kw, rows, steps)
            if not part:
                sys.exit(f"variant {name} leaves no training rows")
            info = train(ctx, method, part, pc, train_seed(ctx.seed, a.round, a.order_seed, kw), f"replay-{name}")
            out["variants"][name] = {"method": method, "config": kw, "n_rows": len(part), **scored(name, info, t0)}
            base_o = out["start"]["outcomes"]
            after_o = out["variants"][name]["outcomes"]
            out["variants"][name]["tests"] = ([t for t in suite.compare(base_o, after_o, 0.05, by_slice=True)
                                               if t["name"][:-7] in METRICS] + _j_rows(base_o, after_o))
            keep(out, a.results, complete=False)  # a replay stopped later keeps the variants it finished
    finally:
        ctx.close()
        shutil.rmtree(work.parent, ignore_errors=True)
    print(f"\nround-{a.round} {a.phase} phase of {src} (seed {out['seed']}, {len(rows)} rows, {steps} steps), "
          f"scored on its {a.split} split; change from the start [95% CI], exact McNemar p (discrimination: exact "
          "sign-flip p):")
    for name, v in out["variants"].items():
        print(f"  {name}")
        for t in v["tests"]:
            m = t["meta"]
            print(f"    {t['name'][:-7]:<22} {m['before']:.3f} -> {m['after']:.3f}  {t['value']:+.3f} "
                  f"[{t['lo']:+.3f}, {t['hi']:+.3f}]  p={m['p_value']:.3g}  n={t['n']}")
    keep(out, a.results, complete=True)


def keep(out: dict, path: str, complete: bool) -> None:
    """Writes the replay's results without the item outcomes (rates and paired tests only), after every variant
    (`"complete": false` until the last): a replay costs minutes a variant, and one stopped must not lose those
    it finished."""
    kept = {**out, "start": {k: v for k, v in out["start"].items() if k != "outcomes"},
            "variants": {n: {k: x for k, x in v.items() if k != "outcomes"} for n, v in out["variants"].items()},
            "complete": complete}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(kept, indent=1))


if __name__ == "__main__":
    main()
