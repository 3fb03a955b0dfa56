"""superalign: attacker -> learner -> critic loops, alternating competence/conformity
optimization, weak-to-strong, scalable oversight and trustworthy evaluation."""
from importlib import metadata as _metadata

try:  # the one version source is pyproject.toml; the installed metadata carries it
    __version__ = _metadata.version("superalign")
except _metadata.PackageNotFoundError:  # a source tree on PYTHONPATH without `pip install`
    __version__ = "0+unknown"
