"""Reading configuration files and reporting their problems, for every config kind.

Every configuration file of journeylib (journey definitions, ``sources.yaml``,
report suites and parameter sets) is read by :func:`read_yaml` or
:func:`parse_yaml` and validated by :func:`validate_config`:

* **Dates stay text.** :class:`NoDatesSafeLoader` is PyYAML's safe loader
  without the timestamp resolver (the loader Papermill uses for ``-f``
  parameter files), so ``as_of: 2024-06-30`` is the string
  ``"2024-06-30"`` everywhere; models parse dates explicitly.
* **Keys have lines.** A :class:`YamlDocument` keeps the line of every key
  and list item, so a problem names the line it is on.
* **One message format.** :func:`config_problems` turns a pydantic
  ``ValidationError`` into one line per problem, ``<key path> (line N): <what
  is allowed>; found <what was given>``, e.g.
  ``stages[1].rule.all[0].colour (line 8): unknown key 'colour'; allowed keys
  here: event, events, min_count, within_days, of, where``. They are raised
  together as one :class:`~journeylib.exceptions.ConfigError`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, Tag, ValidationError

from journeylib.exceptions import ConfigError

__all__ = [
    "KeyPath",
    "NoDatesSafeLoader",
    "YamlDocument",
    "allowed_keys",
    "config_problems",
    "format_key_path",
    "parse_yaml",
    "read_yaml",
    "validate_config",
]

#: A key path in a document: mapping keys (str) and list positions (int).
KeyPath = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)

#: Longest rendering of a found value in a message (longer ones are cut with "...").
_MAX_SHOWN = 120


class NoDatesSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader that leaves dates and timestamps as strings (as Papermill does)."""


NoDatesSafeLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document with the line of each of its keys.

    Attributes
    ----------
    data : object
        The parsed content (``None`` for an empty document); dates are strings.
    source : str
        Where it came from (a file path or ``"<yaml text>"``), for messages.
    lines : dict of KeyPath to int
        1-based line of every mapping key and list item, by key path
        (``("stages", 1, "rule")``); ``()`` is the document's first line.
    """

    data: Any
    source: str
    lines: Mapping[KeyPath, int] = field(default_factory=dict)


def parse_yaml(text: str, *, source: str = "<yaml text>") -> YamlDocument:
    r"""Parse YAML text, keeping dates as strings and recording the line of each key.

    Parameters
    ----------
    text : str
        The YAML text.
    source : str, default "<yaml text>"
        Where the text came from, for messages.

    Returns
    -------
    YamlDocument
        The parsed data and the line of every key.

    Raises
    ------
    ConfigError
        If the text is not valid YAML (the message has PyYAML's line and column).

    Examples
    --------
    >>> doc = parse_yaml("name: t\nas_of: 2024-06-30\n")
    >>> doc.data, doc.lines[("as_of",)]
    ({'name': 't', 'as_of': '2024-06-30'}, 2)
    """
    loader = NoDatesSafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source) from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return YamlDocument(data, source, lines)


def read_yaml(path: str | Path, *, what: str = "file") -> YamlDocument:
    """Read a YAML file (UTF-8), keeping dates as strings and recording the line of each key.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    what : str, default "file"
        What the file is, for the not-found message (e.g. ``"suite file"``).

    Returns
    -------
    YamlDocument
        The parsed data, the path as ``source`` and the line of every key.

    Raises
    ------
    ConfigError
        If the file does not exist (``"<what> not found: <path>"``), is a
        folder, or is not valid YAML.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError([f"{p} is a folder; a {what} was expected"], str(p))
    if not p.is_file():
        raise ConfigError([f"{what} not found: {p}"], str(p))
    return parse_yaml(p.read_text(encoding="utf-8"), source=str(p))


def _index_lines(node: yaml.Node, path: KeyPath, out: dict[KeyPath, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a complex key (a list or mapping as key) is no key path
            key = (*path, key_node.value)
            out[key] = key_node.start_mark.line + 1
            _index_lines(value_node, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), out)


# -- validation problems --------------------------------------------------------------------


def format_key_path(path: Sequence[str | int]) -> str:
    """Render a key path as in messages: ``stages[1].rule.all[0].event``.

    Parameters
    ----------
    path : sequence of str or int
        Mapping keys and list positions.

    Returns
    -------
    str
        Keys joined by ``.``, positions in brackets; ``"(top level)"`` for an
        empty path.

    Examples
    --------
    >>> format_key_path(("stages", 1, "rule", "all", 0, "event"))
    'stages[1].rule.all[0].event'
    """
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """Return the keys a configuration model accepts, in declaration order.

    Parameters
    ----------
    model : type of pydantic.BaseModel
        The model.

    Returns
    -------
    list of str
        Field names (their alias when they have one), without excluded fields.
    """
    return [f.alias or name for name, f in model.model_fields.items() if not f.exclude]


def config_problems(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    lines: Mapping[KeyPath, int] | None = None,
    hints: Mapping[str, str] | None = None,
) -> list[str]:
    """Turn a pydantic ``ValidationError`` into one message per problem.

    Each message names the key path (union tags left out), its line when
    *lines* are given, what is allowed and what was found:

    * unknown key — ``<path> (line N): unknown key 'k'; allowed keys here: a, b``
    * missing key — ``<path> (line N): required key is missing`` (the line of
      the mapping that lacks it)
    * wrong choice — ``<path> (line N): must be 'a' or 'b'; found 'c'``
    * a validator's own message — ``<path> (line N): <message>``, with
      ``; found <value>`` when the message does not show the value; a
      model-wide validator's lines come as they are (they name their keys)
    * the alternatives of a union at one key are joined into one message
      (left out when a branch failed deeper inside, whose error is shown)
    * anything else — ``<path> (line N): <pydantic's message>; found <value>``

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error of validating *model*.
    model : type of pydantic.BaseModel
        The validated (root) model; it gives the allowed keys at each place.
    lines : mapping of KeyPath to int, optional
        Line of each key (:attr:`YamlDocument.lines`).
    hints : mapping of str to str, optional
        Wording of what is allowed, by pydantic error type (e.g.
        ``{"string_pattern_mismatch": "not a valid name; use letters ..."}``);
        it replaces pydantic's message and is followed by ``; found <value>``.

    Returns
    -------
    list of str
        The problems, in pydantic's order, without repeats.
    """
    lines = lines or {}
    hints = hints or {}
    errors = exc.errors()
    walked = [_walk(model, err["loc"]) for err in errors]
    out: list[str] = []
    union_done: set[KeyPath] = set()

    def add(msg: str) -> None:
        if msg not in out:
            out.append(msg)

    for err, (path, in_union, owner) in zip(errors, walked, strict=True):
        kind = err["type"]
        value = err.get("input")
        key = format_key_path(path)
        at = _line_note(path, lines)
        deeper = any(len(p) > len(path) and p[: len(path)] == path for p, _, _ in walked)
        if deeper and (kind == "too_short" or in_union):
            continue  # the errors inside say what is wrong (the items', or the closest union branch's)
        if kind in hints:
            add(f"{key}{at}: {hints[kind]}; found {_shown(value)}")
        elif kind == "extra_forbidden":
            allowed = ", ".join(allowed_keys(owner)) if owner is not None else "?"
            add(f"{key}{at}: unknown key {str(path[-1])!r}; allowed keys here: {allowed}")
        elif kind == "missing":
            add(f"{key}{at}: required key is missing")
        elif kind == "literal_error":
            add(f"{key}{at}: must be {err['ctx']['expected']}; found {_shown(value)}")
        elif kind in ("value_error", "assertion_error"):
            text = str(err["ctx"]["error"])
            if not path:
                for line in text.split("\n"):
                    add(line)
            else:
                found = "" if repr(value) in text else f"; found {_shown(value)}"
                add(f"{key}{at}: {text}{found}")
        elif in_union:
            if path in union_done:
                continue
            union_done.add(path)
            msgs = [str(e["msg"]) for e, (p, u, _) in zip(errors, walked, strict=True) if u and p == path]
            if all(m.startswith("Input should be ") for m in msgs):
                text = "must be " + " or ".join(dict.fromkeys(m.removeprefix("Input should be ") for m in msgs))
            else:
                text = "; or ".join(dict.fromkeys(msgs))
            add(f"{key}{at}: {text}; found {_shown(value)}")
        else:
            add(f"{key}{at}: {err['msg']}; found {_shown(value)}")
    return out or [str(exc)]


def validate_config(
    model: type[ModelT],
    data: Any,
    *,
    source: str,
    lines: Mapping[KeyPath, int] | None = None,
    hints: Mapping[str, str] | None = None,
) -> ModelT:
    """Validate *data* as *model*, raising every problem at once.

    Parameters
    ----------
    model : type of pydantic.BaseModel
        The configuration model.
    data : object
        The parsed configuration.
    source : str
        Where it came from (a path, ``"<dict>"``), for the error.
    lines : mapping of KeyPath to int, optional
        Line of each key, for messages.
    hints : mapping of str to str, optional
        See :func:`config_problems`.

    Returns
    -------
    pydantic.BaseModel
        The validated model.

    Raises
    ------
    ConfigError
        With every problem (:func:`config_problems`) and *source*.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(config_problems(exc, model, lines=lines, hints=hints), source) from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _line_note(path: KeyPath, lines: Mapping[KeyPath, int]) -> str:
    """Return `` (line N)`` for the key, or for the nearest enclosing key that has a line."""
    for n in range(len(path), 0, -1):
        line = lines.get(path[:n])
        if line is not None:
            return f" (line {line})"
    return ""


# -- walking a model along an error location ---------------------------------------------------


def _plain(annotation: Any) -> Any:
    """Strip ``Annotated`` wrappers and a ``| None``."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        members = _union_members(annotation)
        if members is not None and len(members) == 1:
            annotation = members[0]
            continue
        return annotation


def _union_members(annotation: Any) -> list[Any] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for m in typing.get_args(annotation) if m is not type(None)]
    return None


def _member_tag(member: Any) -> str | None:
    """Return the tag of a member of a discriminated union, if it has one."""
    if typing.get_origin(member) is Annotated:
        for meta in typing.get_args(member)[1:]:
            if isinstance(meta, Tag):
                return meta.tag
    return None


def _member_label(member: Any) -> str:
    """Return the label pydantic puts in an error location for a union member (its tag or type name)."""
    tag = _member_tag(member)
    if tag is not None:
        return tag
    base = _plain(member)
    origin = typing.get_origin(base) or base
    return str(getattr(origin, "__name__", origin))


def _child(annotation: Any, part: str | int) -> Any:
    """Return the annotation one step down: a model's field, a list's item or a dict's value."""
    ann = _plain(annotation)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        for name, f in ann.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in (list, tuple, set, frozenset, Sequence) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def _walk(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[KeyPath, bool, type[BaseModel] | None]:
    """Follow an error location through *model*.

    Returns the key path without union labels, whether the location ends in a
    branch of a plain union (every branch failed at that key), and the model
    whose keys are allowed where the last key is (for unknown keys).
    """
    annotation: Any = model
    path: list[str | int] = []
    in_union = False
    parent: Any = None
    for part in loc:
        members = _union_members(_plain_annotated(annotation)) if annotation is not None else None
        if members is not None and len(members) > 1 and isinstance(part, str):
            labels = {_member_label(m): m for m in members}
            annotation = labels.get(part, labels.get(part.split("[")[0]))
            # a discriminated union's tag names the one branch the user wrote;
            # a plain union's label means every branch failed at this key
            in_union = not any(_member_tag(m) == part for m in members)
            continue
        in_union = False
        parent = annotation
        path.append(part)
        annotation = _child(annotation, part) if annotation is not None else None
    plain = _plain(parent) if parent is not None else None
    owner = plain if isinstance(plain, type) and issubclass(plain, BaseModel) else None
    return tuple(path), in_union, owner


def _plain_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation
