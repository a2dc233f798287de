"""Read YAML safely, remembering the line of every key, and apply `--set key.path=value` overrides."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from align.errors import AlignError, Problem

KeyPath = tuple[str | int, ...]


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no Python objects), reading `1e-4` and `3e9` as floats.

    PyYAML follows YAML 1.1, where a float needs a dot (`1.0e-4`): `learning_rate: 1e-4` would arrive as the string
    "1e-4", pass trl's config and fail inside the optimizer. YAML 1.2 (and every ML config users copy from) reads
    it as a number.
    """


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_scalar(text: str):
    """A `--set` value, parsed as YAML by the recipe loader (so `0.05` and `1e-4` are floats, `[a, b]` a list)."""
    return yaml.load(text, Loader=RecipeLoader)


def format_path(path: KeyPath) -> str:
    """`("stages", 0, "loss", "beta")` → `stages[0].loss.beta`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class YamlDocument:
    """A parsed mapping plus the 1-based line where each key path starts (for error messages)."""

    data: dict
    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # Key paths that came from another file (a `base:` recipe), and which one; all others are from `file`.
    files: dict[KeyPath, str] = field(default_factory=dict)

    def locate(self, path: KeyPath) -> tuple[str, int | None]:
        """The file and line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.files.get(path, self.file), self.lines[path]
            path = path[:-1]
        return self.file, None


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], duplicates: list) -> None:
    if isinstance(node, yaml.MappingNode):
        # PyYAML silently keeps the last of two equal keys in one mapping (`learning_rate:` twice: the first is
        # ignored); YAML requires keys to be unique, so collect them as `(path, line, first line)` for an error.
        first_at: dict[tuple, int] = {}
        for key_node, value_node in node.value:
            key_path = path + (key_node.value,)
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode):
                identity = (key_node.tag, key_node.value)
                if identity in first_at:
                    duplicates.append((key_path, line, first_at[identity]))
                first_at.setdefault(identity, line)
            lines[key_path] = line
            _record_lines(value_node, key_path, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _record_lines(item, path + (index,), lines, duplicates)


def load_yaml(path: str | Path) -> YamlDocument:
    """Parse a YAML mapping with the safe loader (no Python objects); errors name the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AlignError(Problem(str(path), "no such file")) from None
    except OSError as exc:
        raise AlignError(Problem(str(path), f"cannot read: {exc.strerror}")) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Name the line holding the bad byte (a Latin-1 "é" pasted in), not just the file.
        line = raw[: exc.start].count(b"\n") + 1
        message = f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise AlignError(Problem(str(path), message, line)) from None
    try:
        node = yaml.compose(text, Loader=RecipeLoader)
        data = yaml.load(text, Loader=RecipeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        raise AlignError(Problem(str(path), f"invalid YAML: {reason}", line=line)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AlignError(Problem(str(path), f"the top level must be a mapping of keys, not {type(data).__name__}", 1))
    lines: dict[KeyPath, int] = {}
    duplicates: list = []
    if node is not None:
        _record_lines(node, (), lines, duplicates)
    if duplicates:
        message = "duplicate key (first at line {}); YAML keeps only the last: remove one"
        raise AlignError(
            [Problem(str(path), message.format(first), line, format_path(at)) for at, line, first in duplicates]
        )
    return YamlDocument(data=data, file=str(path), lines=lines)


def _step_into(container: Any, segment: str, where: str) -> tuple[Any, str | int]:
    """The child key for `segment`: a dict key, a list index, or the list item whose `name` is `segment`."""
    if isinstance(container, dict):
        return container, segment
    if isinstance(container, list):
        if segment.lstrip("-").isdigit():
            index = int(segment)
            if not -len(container) <= index < len(container):
                raise AlignError(
                    Problem("--set", f"index {index} is out of range (there are {len(container)})", key=where)
                )
            return container, index
        for index, item in enumerate(container):
            if isinstance(item, dict) and item.get("name") == segment:
                return container, index
        names = [str(item.get("name")) for item in container if isinstance(item, dict)]
        raise AlignError(Problem("--set", f"no item named {segment!r}; names: {', '.join(names)}", key=where))
    raise AlignError(Problem("--set", f"{where} is a {type(container).__name__}, not a mapping", key=where))


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `a.b.c=value` in place; the value is parsed as YAML (so `0.05` is a float, `[a, b]` a list)."""
    key, sep, raw_value = assignment.partition("=")
    if not sep or not key.strip():
        raise AlignError(Problem("--set", f"{assignment!r} is not key.path=value"))
    try:
        value = parse_scalar(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError as exc:
        # Taking the text as a string instead made `kinds=[verbose, vague` the one kind "[verbose, vague" (every row
        # then filtered out) and `name=[x` a valid name: an unparseable value is an error, as in the file.
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        message = f"{raw_value!r} is not valid YAML ({reason}); quote it to mean the text, e.g. {key.strip()}='\"...\"'"
        raise AlignError(Problem("--set", message, key=key.strip())) from None
    segments = key.strip().split(".")
    container: Any = data
    for depth, segment in enumerate(segments):
        where = ".".join(segments[: depth + 1])
        container, child = _step_into(container, segment, where)
        if depth == len(segments) - 1:
            container[child] = value
        else:
            if isinstance(container, dict) and child not in container:
                container[child] = {}
            container = container[child]
