"""The `w2s:` config section. Pydantic only: the root config imports this module, so it must stay light
(no torch, nothing from superalign but `errors`).

Model specs (`weak`, `strong`, `ladder` rungs, `control`) name a shallow reader, a featurizer or a trainable LM:
`tfidf` (TF-IDF + logistic regression), `hashing[:N]`, `minilm-l6` / `st:NAME`, or an LM `NAME[@LAYER]` (linear
probe on that layer, default the last); `NAME+lora:K` trains LoRA adapters on the LM's top K blocks (K=`all`: every
block) with a head, as `finetune` says. The strong spec is trained the `finetune.mode` way unless it carries its own
`+lora:K`. A weak spec may end in `#N`: it is trained on the first N of its gold rows only (a few-label supervisor;
the data-matched control drops the budget).
"""
from __future__ import annotations

from typing import Literal, Union

from pydantic import Field

from superalign.errors import Strict, validate

LOSS_NAMES = ("xent", "logconf", "bootstrap")
METHODS = ("xent", "logconf", "bootstrap", "ladder", "iterative")


class TaskSpec(Strict):
    """A task with its own split sizes (None: the section-wide sizes). `untuned`: kept out of every tuning
    decision (model choice, epochs, learning rates); reported as such."""
    name: str
    n_weak: int | None = Field(None, ge=8)
    n_transfer: int | None = Field(None, ge=10)
    n_test: int | None = Field(None, ge=4)
    untuned: bool = False
    # intermediate supervisors for this task (None: the section's `ladder`); bench/w2s.py picks them by the share
    # of the gap they close on gold validation rows
    ladder: list[str] | None = None

    @property
    def size(self) -> int:
        """Items the task needs (weak + transfer + test), once `W2SConfig.task_specs` filled the sizes in."""
        return (self.n_weak or 0) + (self.n_transfer or 0) + (self.n_test or 0)


class HeadCfg(Strict):
    """Linear head on frozen features (the weak model, probe rungs, the fast `linear` strong mode)."""
    max_epochs: int = Field(40, ge=1)
    # epochs without a better validation score before stopping: weak-labelled validation scores are noisy, and
    # head epochs are cheap, so wait long
    patience: int = Field(10, ge=1)
    lr: float = Field(5e-3, gt=0)
    batch_size: int = Field(32, ge=2)
    weight_decay: float = Field(1e-3, ge=0)
    # L2 penalties (on the mean loss) to sweep; each head keeps the one its own validation labels prefer, so the weak
    # supervisor is tuned as well as the students (until 2026-12-05 none: [0.0], under which a MiniLM head on
    # sarcasm's 320 weak rows overfit to 0.647 test where a tuned one reaches 0.70, inflating the W2S gap)
    l2: list[float] = Field([0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0], min_length=1)


class LogconfCfg(Strict):
    """Burns et al.'s auxiliary confidence loss as in openai/weak-to-strong `logconf_loss_fn`."""
    aux_coef: float = Field(0.5, ge=0, le=1)
    warmup_frac: float = Field(0.1, ge=0, le=1)


class BootstrapCfg(Strict):
    """Soft bootstrapping (Reed et al. 2014): target = (1-b) weak + b student probabilities."""
    beta: float = Field(0.5, ge=0, le=1)
    warmup_frac: float = Field(0.2, ge=0, le=1)


class FinetuneCfg(Strict):
    """How the strong LM is trained. `linear`: a head on frozen pooled states (the fast variant);
    `lora`: LoRA adapters on the `lora_layers` blocks below `exit_layer` plus a head on their pooled output
    (`all`: every block, end to end; the frozen blocks below are run once per task and their output cached);
    `full`: every weight of those blocks. `exit_layer` None: the whole network (with its final norm); an int
    cuts the network there. `dtype: bfloat16` runs the frozen weights in bfloat16 (LoRA and head in float32)."""
    # defaults = the strong student as able as the embedded learner allows (bench/w2s.py): LoRA on every block of
    # SmolLM2 below a read-out at block 16 (more able than reading out after all 30 blocks, at half the cost), 3
    # epochs after the probe warm start; the first fine-tuning epoch dips below the probe, so patience covers all
    mode: Literal["linear", "lora", "full"] = "lora"
    lora_layers: Union[int, Literal["all"]] = "all"
    exit_layer: int | None = Field(16, ge=1)
    pool: Literal["last", "mean"] = "mean"
    lora_r: int = Field(8, ge=1)
    max_epochs: int = Field(3, ge=1)   # after the linear-probe warm start (epoch 0)
    patience: int = Field(3, ge=1)
    lr: float = Field(5e-4, gt=0)
    head_lr: float = Field(2e-3, gt=0)
    # learning-rate schedule over all max_epochs' steps (transformers' schedulers): a linear warm-up over this share
    # of the steps, then `decay` to 0 ("constant": none). Off by default, as before 2026-12-05
    warmup_frac: float = Field(0.0, ge=0, lt=1)
    decay: Literal["constant", "linear", "cosine"] = "constant"
    batch_size: int = Field(16, ge=1)
    dtype: Literal["float32", "bfloat16"] = "float32"
    # whether the probe warm start (epoch 0) competes in early stopping. True: fine-tuning is kept only where the
    # supervisor's labels say it helps; False: the best fine-tuning epoch is kept, so the student is always more than
    # a probe (on the 2026-12-05 headline seeds 16 of 18 students kept the probe)
    keep_probe: bool = True


class W2SConfig(Strict):
    tasks: list[Union[str, TaskSpec]] = ["sarcasm", "quartz",
                                         TaskSpec(name="harm_labels", n_weak=300, n_transfer=400, n_test=299)]
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    weak: str = "minilm-l6"
    strong: str = "smollm2-135m-instruct"
    # intermediate supervisors, weakest first (gap annealing); empty: no ladder
    ladder: list[str] = ["smollm2-135m-instruct@-1"]   # SmolLM2 frozen + probe on its last layer
    methods: list[Literal["xent", "logconf", "bootstrap", "ladder", "iterative"]] = ["xent", "logconf", "ladder",
                                                                                     "iterative"]
    ladder_loss: Literal["xent", "logconf", "bootstrap"] = "xent"
    iterate: int = Field(3, ge=1)   # rounds of the iterative teacher-student (method `iterative`)
    # data-matched control: the weak model trained on the ceiling's gold rows, so ceiling - control is capacity
    control: bool = True
    n_weak: int = Field(400, ge=8)
    n_transfer: int = Field(500, ge=10)
    n_test: int = Field(400, ge=4)
    val_frac: float = Field(0.2, gt=0, lt=0.5)   # of the transfer (and weak-train) split: early-stopping rows
    pool_seed: int = 0
    max_tokens: int = Field(64, ge=4)
    device: Literal["auto", "cpu", "cuda", "mps"] = "cpu"
    bootstrap_samples: int = Field(2000, ge=100)
    threads: int = Field(0, ge=0)   # torch CPU threads (0: torch's default); 1 is fastest on a shared small CPU
    head: HeadCfg = HeadCfg()
    logconf: LogconfCfg = LogconfCfg()
    bootstrap: BootstrapCfg = BootstrapCfg()
    finetune: FinetuneCfg = FinetuneCfg()

    def task_specs(self) -> list[TaskSpec]:
        out = []
        for t in self.tasks:
            t = TaskSpec(name=t) if isinstance(t, str) else t
            out.append(t.model_copy(update={k: getattr(t, k) or getattr(self, k)
                                            for k in ("n_weak", "n_transfer", "n_test")}))
        return out

    def loss_kwargs(self, loss: str) -> dict:
        return {"logconf": self.logconf.model_dump(), "bootstrap": self.bootstrap.model_dump()}.get(loss, {})


def parse_config(section: dict | None) -> W2SConfig:
    """Validate a `w2s:` section; a bad key fails naming its dotted path (`w2s.head.epoch: unknown key`)."""
    if isinstance(section, W2SConfig):
        return section
    return validate(W2SConfig, section, "w2s config", prefix="w2s",
                    fix="fix the key(s) named above; the fields are in superalign/w2s/config.py")
