"""A fixture for tests that register a loss of their own: the registration is undone after the test."""

from __future__ import annotations

import pytest

from align.losses import loss_names, register_loss
from align.losses.registry import unregister_loss


@pytest.fixture(name="register_test_loss")
def register_test_loss_fixture():
    """`register_test_loss(name, needs_reference=..., ...)` is `register_loss` whose names are removed from the
    registry when the test ends (passed or failed), so a test-only loss never leaks into later tests — e.g. into
    the parametrised every-loss tests or `--explain loss` — and no test depends on another having run first."""
    added: list[str] = []

    def register(name: str, **kwargs):
        decorate = register_loss(name, **kwargs)

        def wrap(fn):
            decorate(fn)
            added.append(name)
            return fn

        return wrap

    yield register
    for name in added:
        if name in loss_names():
            unregister_loss(name)
