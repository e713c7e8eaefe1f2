"""Typed run configuration (schema.py) and the YAML presets that sit beside it."""
from configs.schema import (
    BaselineConfig,
    CONFIG_DIR,
    METHODS,
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
    "BaselineConfig",
    "CONFIG_DIR",
    "METHODS",
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
