"""Test modules are imported by basename (rootdir-less, as their sibling helpers expect): keep names unique."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def test_test_module_basenames_are_unique() -> None:
    tests = Path(__file__).resolve().parent
    names = Counter(p.name for p in tests.rglob("*.py") if p.name != "__init__.py" and p.name != "conftest.py")
    assert [n for n, c in names.items() if c > 1] == []
