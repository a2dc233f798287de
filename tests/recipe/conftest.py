"""Shared by the recipe tests: the problems a recipe raises (the `recipe_dir` fixture is in tests/conftest.py)."""

import pytest

from align.errors import AlignError
from align.recipe import load_recipe


def recipe_problems(path, overrides=()) -> list[str]:
    """The one-line problems loading the recipe at `path` (with `--set` overrides) raises; fails if it loads."""
    with pytest.raises(AlignError) as info:
        load_recipe(path, list(overrides))
    return [str(p) for p in info.value.problems]
