"""The registry of methods and the interface they share."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pmc_unlearning.configs.methods import METHOD_CLASSES
from pmc_unlearning.methods import method_class
from pmc_unlearning.methods.method import Method


@pytest.mark.parametrize("name", sorted(METHOD_CLASSES))
def test_every_registered_method_is_a_method_class_in_a_file_of_its_own(name):
    cls = method_class(name)
    assert issubclass(cls, Method) and cls.__module__ == f"pmc_unlearning.methods.{name}"


@pytest.mark.heavy
def test_the_configuration_knows_the_methods_without_importing_them():
    """configs/ is the bottom layer: loading a config of any method imports no method (nor torch)."""
    probe = ("import sys; from pmc_unlearning.configs import load_config; load_config(None, ['method=rmu']); "
             "print(sorted(m for m in sys.modules if m.startswith(('pmc_unlearning.methods', 'torch'))))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"
