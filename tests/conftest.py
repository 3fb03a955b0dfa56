import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# evaluations cached by earlier sessions (or by code a test patched) are never read back by another session
os.environ.setdefault("SUPERALIGN_EVAL_CACHE", tempfile.mkdtemp(prefix="superalign-evals-"))


@pytest.fixture(scope="session")
def tiny():
    """A random-initialised 2-layer Llama with a byte-level tokenizer: fast, no assets."""
    from superalign.models.local import LocalLM
    return LocalLM("tiny-random", device="cpu", batch_size=4)
