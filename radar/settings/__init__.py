"""The one typed configuration of Account Radar: the root model, loading, and printing.

Every default is documented where it is declared: the sections live in `data` (ingest,
domain, features, health, Spark), `training`, `serving` (tiers, service, alerts,
digest, leadership, pages) and `delivery` (the weekly run, mail, Slack) beside this
module, and are re-exported here. Values come, in order of precedence, from keyword
arguments, environment variables (``RADAR_`` prefix, ``__`` for nesting, e.g.
``RADAR_DOMAIN__HORIZON_DAYS=60``), then ``radar.toml``, then these defaults.
The settings object is loaded once at the edge (CLI or service start) and passed down.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from radar.settings.data import DomainSettings, FeatureSettings, HealthSettings, IngestSettings, SparkSettings
from radar.settings.delivery import MailSettings, RunSettings, SlackSettings
from radar.settings.serving import (
    AlertRule,
    AlertSettings,
    DigestSettings,
    HealthBand,
    InsightWeights,
    LeadershipSettings,
    MonitorSettings,
    RiskTier,
    Routing,
    ServingSettings,
    UiSettings,
    Weekday,
    serving_settings,
)
from radar.settings.training import LightGBMSettings, TrainingSettings

__all__ = [
    "AlertRule",
    "AlertSettings",
    "CONFIG_FILE_ENV",
    "ConfigError",
    "DigestSettings",
    "DomainSettings",
    "FeatureSettings",
    "HealthBand",
    "HealthSettings",
    "IngestSettings",
    "InsightWeights",
    "LeadershipSettings",
    "LightGBMSettings",
    "MailSettings",
    "MonitorSettings",
    "RiskTier",
    "Routing",
    "RunSettings",
    "ServingSettings",
    "Settings",
    "SlackSettings",
    "SparkSettings",
    "TrainingSettings",
    "UiSettings",
    "Weekday",
    "load_settings",
    "serving_settings",
    "settings_toml",
]

DEFAULT_CONFIG_FILE = Path("radar.toml")


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
    workspace_url: str | None = Field(
        None,
        description="Read the contract tables from this database instead of the local workspace database: an "
        "Ibis or SQLAlchemy connection URL, e.g. postgres://user@host:5432/db/schema; outputs stay local. "
        "Keep passwords out of it (PGPASSWORD, ~/.pgpass, or RADAR_WORKSPACE_URL in the environment).",
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    domain: DomainSettings = Field(default_factory=DomainSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    leadership: LeadershipSettings = Field(default_factory=LeadershipSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)

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


CONFIG_FILE_ENV = "RADAR_CONFIG_FILE"


class ConfigError(ValueError):
    """A configuration file or override that cannot be used, with what to fix."""


def load_settings(config_file: Path | None = None, **overrides) -> Settings:
    """Load settings from ``config_file`` (default ``./radar.toml`` if present) and env.

    An explicitly named file that does not exist is an error; the default file is optional.
    Without ``config_file``, the file named by RADAR_CONFIG_FILE is used if set (how
    `radar --config FILE` reaches the processes it starts, such as the service).
    """
    if config_file is None and os.environ.get(CONFIG_FILE_ENV):
        config_file = Path(os.environ[CONFIG_FILE_ENV])
    if config_file is not None and not Path(config_file).is_file():
        raise ConfigError(f"config file not found: {config_file}")
    target = Path(config_file) if config_file is not None else DEFAULT_CONFIG_FILE
    bound = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": target}})
    try:
        return bound(**overrides)
    except Exception as exc:  # pydantic ValidationError or TOML decode error
        raise ConfigError(f"invalid configuration ({target}): {exc}") from exc


def _toml_key(key: str) -> str:
    """A bare TOML key as is; any other (spaces, accents: an owner's name) quoted."""
    return key if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key) else _toml_value(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
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
        lines.append(f"# {name} = (not set)" if value is None else f"{name} = {_toml_value(value)}")
    out = ([f"[{section}]"] if section else []) + lines
    for sub, model in nested:
        out += ["", settings_toml(model, sub)]
    return "\n".join(out)
