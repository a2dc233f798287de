"""Shared by the recipe tests: a folder holding one pairs file, and the problems a recipe raises."""

import pytest

from align.errors import AlignError
from align.recipe import load_recipe


@pytest.fixture
def recipe_dir(write):
    """`write` in a folder that already holds `pairs.jsonl` (one valid row), for recipes to point at."""
    write("pairs.jsonl", '{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    return write


def recipe_problems(path, overrides=()) -> list[str]:
    """The one-line problems loading the recipe at `path` (with `--set` overrides) raises; fails if it loads."""
    with pytest.raises(AlignError) as info:
        load_recipe(path, list(overrides))
    return [str(p) for p in info.value.problems]
