"""Model backends behind one interface (`base.Backend`); `superalign.roles.build` binds a role's config to one."""
from __future__ import annotations

from superalign.models.base import Backend, GenParams, Prompt  # noqa: F401
