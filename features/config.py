"""The one typed configuration of Account Radar.

Every default lives here, documented where it is declared. Values come, in order of
precedence, from keyword arguments, environment variables (``RADAR_`` prefix, ``__`` for
nesting, e.g. ``RADAR_DOMAIN__HORIZON_DAYS=60``), then ``radar.toml``, then these defaults.
The settings object is loaded once at the edge (CLI or service start) and passed down.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("radar.toml")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IngestSettings(_Section):
    """How `radar ingest` reads a workspace folder."""

    column_mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per table, your column name -> contract column name, "
        "e.g. {usage_events = {ts = 'occurred_at'}}.",
    )
    batch_rows: int = Field(
        500_000, gt=0, description="Rows read per batch; bounds ingest memory."
    )
    memory_limit: str = Field(
        "2GB", description="DuckDB memory limit during ingest (it spills to disk beyond)."
    )
    threads: int = Field(2, gt=0, description="DuckDB worker threads.")


class DomainSettings(_Section):
    """The semantics of DOMAIN sections 1 and 2."""

    grace_days: int = Field(
        30, ge=0, description="Gap between subscription lines still counted as one relationship."
    )
    horizon_days: int = Field(90, gt=0, description="How far labels look forward from as_of.")
    expansion_min_pct: float = Field(
        0.10, ge=0, description="MRR growth over the horizon that counts as expansion."
    )
    renewal_window_mode: bool = Field(
        False,
        description="Train only on snapshots with a renewal (end_date) inside the horizon.",
    )


class Settings(BaseSettings):
    """All of Account Radar's settings."""

    model_config = SettingsConfigDict(
        env_prefix="RADAR_",
        env_nested_delimiter="__",
        toml_file=DEFAULT_CONFIG_FILE,
        frozen=True,
        extra="forbid",
    )

    output_dir: Path = Field(
        Path("out"),
        description="Where the workspace database, rejects and reports are written.",
    )
    database_name: str = Field("radar.duckdb", description="Workspace database file name.")
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    domain: DomainSettings = Field(default_factory=DomainSettings)

    @field_validator("database_name")
    @classmethod
    def _plain_file_name(cls, v: str) -> str:
        if "/" in v or not v:
            raise ValueError("database_name is a file name inside output_dir, not a path")
        return v

    @property
    def database_path(self) -> Path:
        return self.output_dir / self.database_name

    @property
    def rejects_dir(self) -> Path:
        return self.output_dir / "rejects"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


class ConfigError(ValueError):
    """A configuration file or override that cannot be used, with what to fix."""


def load_settings(config_file: Path | None = None, **overrides) -> Settings:
    """Load settings from ``config_file`` (default ``./radar.toml`` if present) and env.

    An explicitly named file that does not exist is an error; the default file is optional.
    """
    if config_file is not None and not Path(config_file).is_file():
        raise ConfigError(f"config file not found: {config_file}")
    target = Path(config_file) if config_file is not None else DEFAULT_CONFIG_FILE
    bound = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": target}})
    try:
        return bound(**overrides)
    except Exception as exc:  # pydantic ValidationError or TOML decode error
        raise ConfigError(f"invalid configuration ({target}): {exc}") from exc


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def settings_toml(settings: BaseModel, section: str = "") -> str:
    """The settings as a commented radar.toml: every key, its value and what it means."""
    lines: list[str] = []
    nested: list[tuple[str, BaseModel]] = []
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            nested.append((f"{section}.{name}" if section else name, value))
            continue
        if info.description:
            lines.append(f"# {info.description}")
        lines.append(f"{name} = {_toml_value(value)}")
    out = ([f"[{section}]"] if section else []) + lines
    for sub, model in nested:
        out += ["", settings_toml(model, sub)]
    return "\n".join(out)
