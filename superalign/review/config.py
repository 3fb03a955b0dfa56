"""The `review:` config section (the human review page). Light: pydantic and superalign.errors only."""
from __future__ import annotations

from pydantic import Field

from superalign.errors import Strict, validate


class ReviewConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    lease_minutes: float = Field(10.0, gt=0)


def parse(section) -> ReviewConfig:
    if isinstance(section, ReviewConfig):
        return section
    return validate(ReviewConfig, section, "config", prefix="review")


def from_config(config) -> ReviewConfig:
    """The root config's `review` section (defaults when the root config has none)."""
    return parse(getattr(config, "review", None))
