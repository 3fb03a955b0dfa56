import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny():
    """A random-initialised 2-layer Llama with a byte-level tokenizer: fast, no assets."""
    from superalign.models.local import LocalLM
    return LocalLM("tiny-random", device="cpu", batch_size=4)
