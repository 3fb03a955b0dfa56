"""The role configs: which backend a role is bound to and its settings. They live with the backends (roles.build
reads them) and the root config composes them under `roles:`."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from superalign.errors import Strict


class Generation(Strict):
    """How every role samples (`generation:` in the config): the one place these defaults are stated. `GenParams`
    takes its defaults from here, and each role's stage passes the config's values (a judge or a held-out
    evaluation decodes greedily instead, by design)."""
    max_new_tokens: int = Field(48, ge=1)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)


class LocalModel(Strict):
    """A transformers causal LM: a built-in alias, any HF hub name, a local path, or `tiny-random`."""
    backend: Literal["local"] = "local"
    model: str = "smollm2-135m-instruct"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # rows per generation batch, and the padded prompt tokens one batch may hold (long prompts go in narrower
    # batches); on a 2-core CPU, 64 short rows decode 1.8x faster per token than 16 (bench/loop_speed.py)
    batch_size: int = Field(64, ge=1)
    batch_tokens: int = Field(8192, ge=64)
    static_cache: bool = False  # pre-allocated KV cache (CUDA decode; see models/local.py)
    compile: bool | None = None  # torch.compile the static-cache decode step (None: CUDA only)
    # CPU only: processes one generation or scoring call may split its batches across, each with 1/workers of the
    # torch threads (forked at the call, so each holds the current adapter; models/workers.py). Decoding a small
    # model is bound by per-step overhead, not arithmetic: 2 on 2 cores decodes faster than 1 process with 2 threads
    # (bench/loop_speed.py --part workers). Training is unaffected; ignored on CUDA/MPS and by `superalign serve`.
    workers: int = Field(1, ge=1)
    # while generating or scoring, each LoRA layer runs as one linear layer holding base + scaling * B @ A (rounded
    # once to the model's dtype; the base weights are put back after): generation 1.15x faster on a CPU with a
    # trained adapter (models/local.py merged_lora, loop_speed.py --part lora). Off by default since 2026-12-05: the
    # rounding changes answers, and on 3 development seeds the loop with it was not shown non-inferior on look-alike
    # over-refusal (docs/performance.md, bench/results/loop_speed/noninferiority); false is peft's low-rank path
    merge_lora: bool = False
    # executor: ray - one actor per replica, each reserving these resources
    num_gpus: float = Field(0, ge=0)
    num_cpus: float = Field(1, ge=0)
    replicas: int = Field(1, ge=1)


class OpenAIEndpoint(Strict):
    """Any OpenAI-compatible chat endpoint (vLLM, TGI, llama.cpp server, a hosted API)."""
    backend: Literal["openai"] = "openai"
    model: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    concurrency: int = Field(4, ge=1)
    price_per_1k_tokens: float = Field(0.0, ge=0)  # cost written beside each request's latency


class Classifier(Strict):
    """Sentence embedder + scikit-learn heads trained on human-labelled judge data."""
    backend: Literal["classifier"] = "classifier"
    embedder: str = "minilm-l6"
    heads: list[str] = ["refusal_labels", "harm_labels", "objective_labels"]
    holdout: float = Field(0.25, gt=0, lt=1)


class EvalJudge(Strict):
    """The evaluation judge: response-only heads fit on data disjoint from the critic's rows
    (`superalign.evaluation.judge`); it never sees the prompt, so an off-topic answer earns nothing."""
    backend: Literal["eval_judge"] = "eval_judge"
    embedder: str = "minilm-l6"
    # arms_dev (not a default): hand-labelled declines of static DPO learners on a development seed; added to the
    # defaults it left the judge's accuracy on the headline seed's DPO arms where it was (0.796 and 0.875 on their
    # harmful-prompt answers; `bench/eval_audit_arms.py --rejudge`), so the default judge is unchanged (issue 22)
    train_on: list[Literal["uncensorbench", "audit_dev", "arms_dev", "arms_headline", "arms_devloops",
                           "arms_confirm"]] = ["uncensorbench", "audit_dev"]
    # inverse regularisation per head and the weight of an audit dev row relative to an UncensorBench row, chosen by
    # grouped 5-fold CV on the audit dev split: weaker ones make the harmful head over-call the learner's fluent but
    # useless answers (UncensorBench's compliant answers are all fluent and useful)
    C_refusal: float = Field(1.0, gt=0)
    C_harmful: float = Field(4.0, gt=0)
    audit_weight: float = Field(10.0, gt=0)
    # which refusal-phrase features the heads read (`superalign.evaluation.judge.text_features`). 2, written from the
    # development seed's audit of static DPO learners, lifts the judge there (their harmful-prompt answers 0.881 ->
    # 0.898, 0.883 -> 0.983). On the headline audit it lifts one DPO arm by one answer (0.796 -> 0.875) and costs base
    # and static SFT without contrast 5-11 points, so it is not the default: "sorry for any misunderstanding" opened a
    # real answer on the development seed and opens declines on the headline one (`bench/eval_audit_arms.py --rejudge
    # ... --phrases 2`, issue 22). 3 reads a decline, an apology, a sympathy formula ("sorry to hear") and the request's
    # topic words apart, written after reading the confirmatory audit's errors. Leaving each labelled-answers file out
    # (bench/judge_select.py) ranks it first (the worst arm's accuracy, mean over four files, 0.903 against 0.883 for
    # version 1's best setting and 0.876 for this default), but that audit is one of the files; on the second audit of
    # the confirmatory seeds, read by neither, it does worse than version 1 with the same sources and C on the static
    # DPO arm (0.836 against 0.912; `bench/eval_audit_arms.py --rejudge bench/audit/arms_confirm_fresh --phrases 3 ...`)
    # and it reads no new seed's DPO learner better (--seed-folds), so it is not the default either
    phrases: Literal[1, 2, 3] = 1
    seed: int = 0


RoleConfig = Annotated[Union[LocalModel, OpenAIEndpoint, Classifier, EvalJudge], Field(discriminator="backend")]
