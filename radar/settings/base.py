"""The base of every settings section: frozen, and unknown keys are an error (a typo in
radar.toml must not be silently ignored)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
