"""Optional features and the pip extra that installs each: a missing one is a clear error, not an ImportError."""
from __future__ import annotations

import importlib.util

from superalign.errors import SuperalignError

EXTRAS = {"ray": "ray", "fastapi": "review", "uvicorn": "review", "gguf": "gguf", "tensorboard": "tensorboard",
          "mlflow": "mlflow", "wandb": "wandb"}


def need(module: str, feature: str, extra: str | None = None) -> None:
    """Raise, naming `feature` and the extra to install (`extra`, or the module's usual one), unless `module` is
    importable."""
    if importlib.util.find_spec(module) is None:
        extra = extra or EXTRAS.get(module, module)
        raise SuperalignError(f"{feature} needs the `{module}` package, which is not installed",
                              f"pip install 'superalign[{extra}]'")
