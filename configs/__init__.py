"""Typed run configuration (schema.py) and the YAML presets that sit beside it."""
from configs.schema import (
    BaselineConfig,
    CONFIG_DIR,
    METHODS,
    ConfigError,
    DataConfig,
    EngineConfig,
    EntropyConfig,
    EvalConfig,
    FinetuneConfig,
    PMCConfig,
    RayConfig,
    RunConfig,
    load_config,
    load_method_config,
)

__all__ = [
    "BaselineConfig",
    "CONFIG_DIR",
    "METHODS",
    "ConfigError",
    "DataConfig",
    "EngineConfig",
    "EntropyConfig",
    "EvalConfig",
    "FinetuneConfig",
    "PMCConfig",
    "RayConfig",
    "RunConfig",
    "load_config",
    "load_method_config",
]
