"""The hyper-parameter defaults a loss's docstring states, read from the docstring text itself.

Loss docstrings write a default as "β (default 0.1", "label_smoothing ε (default 0.1", "α in [0, 1] (default 0.5":
a symbol, optionally followed by its range, then "(default V". The symbols are the papers'; this table says which
keyword argument each names.
"""

from __future__ import annotations

import inspect
import re

SYMBOLS = {"β": "beta", "α": "alpha", "γ": "gamma", "ε": "label_smoothing", "λ": "odds_ratio_weight"}
_DEFAULT_RE = re.compile(r"([βαγελ])(?: in \[[^\]]*\])? \(default ([-+0-9.e]+)")


def documented_defaults(fn) -> dict[str, float]:
    """{keyword: default} as `fn`'s docstring states them; a symbol documented twice is an error (ambiguous)."""
    found = [(SYMBOLS[symbol], float(value.rstrip("."))) for symbol, value in _DEFAULT_RE.findall(inspect.getdoc(fn))]
    names = [name for name, _ in found]
    if len(set(names)) != len(names):
        raise AssertionError(f"{fn.__name__}: a default documented twice: {found}")
    return dict(found)


def signature_defaults(fn) -> dict[str, float]:
    """The keyword-only hyper-parameter defaults `fn` actually has (its float-valued keyword defaults)."""
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY and isinstance(p.default, float)
    }


def assert_documented(name: str, fn, expected: dict[str, float]) -> None:
    """`fn`'s docstring states `expected` (written by hand in the test), `fn` has exactly those defaults, and the
    registry (what `--explain loss` and the recipe checks use) lists the same."""
    from align.losses import get_loss, loss_info

    assert get_loss(name) is fn, f"{name!r} is not registered to {fn.__name__}"
    assert documented_defaults(fn) == expected, f"{name}: the docstring states other defaults than {expected}"
    assert signature_defaults(fn) == expected, f"{name}: the function's defaults are not {expected}"
    assert loss_info(name).defaults == expected, f"{name}: the registry lists other defaults than {expected}"
