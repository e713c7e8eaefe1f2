"""Typed run configuration (schema.py) and the YAML presets that sit beside it."""
from configs.schema import (
    CONFIG_DIR,
    ConfigError,
    DataConfig,
    EngineConfig,
    EvalConfig,
    FinetuneConfig,
    PMCConfig,
    RayConfig,
    RunConfig,
    load_config,
)

__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "DataConfig",
    "EngineConfig",
    "EvalConfig",
    "FinetuneConfig",
    "PMCConfig",
    "RayConfig",
    "RunConfig",
    "load_config",
]
