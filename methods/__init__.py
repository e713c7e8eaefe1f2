"""The unlearning methods: PMC and the baselines it is compared with, each one file behind one interface
(method.py), driven round by round by rounds.py. configs/methods.py names them; a class is imported only
when its method runs."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pmc_unlearning.configs import RunConfig
from pmc_unlearning.configs.methods import METHOD_CLASSES

if TYPE_CHECKING:  # the interface imports torch: not for what only needs a method's name or its checkpoints
    from pmc_unlearning.methods.method import Method, Task


def method_class(name: str) -> type[Method]:
    module, _, cls = METHOD_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_method(config: RunConfig, task: Task) -> Method:
    """The method `config.method`, with its settings from `config`, on `task`."""
    return method_class(config.method)(config, task)
