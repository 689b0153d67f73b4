"""The one reader of YAML that a user hands hatast (option files, every ``--force_yml`` value, release cards).

Option files are data, never code. The reader is PyYAML's safe loader with four changes, so that whatever a file
holds, reading it either gives plain data (dicts with text keys, lists, text, numbers, booleans, None) or raises
:class:`YAMLFileError` with one line naming the file, the line and the problem:

* **No tags but the plain ones.** ``!!python/object/apply:os.system [...]`` (which BasicSR's full loader runs),
  ``!!binary``, ``!!set``, ``!!timestamp``, custom ``!tags``: refused, the file is not acted on. Dates stay text
  (``name: 2024-05-01`` is a name, not a ``datetime``).
* **Aliases limited.** At most :data:`MAX_ALIASES` aliases, no recursive ones, and at most :data:`MAX_NODES` values
  once aliases are expanded (a "billion laughs" file is refused instead of filling the memory).
* **Duplicate keys are an error** (YAML says so; PyYAML keeps the last one silently, so a second ``lr:`` further
  down a file used to win without a word). Keys must be text.
* **UTF-8** (a BOM is accepted); a file in another encoding or with bytes that are not UTF-8 is refused with the
  position of the first bad byte, and files larger than :data:`MAX_BYTES` are refused before parsing.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .errors import HatastError

MAX_ALIASES = 100
MAX_NODES = 100_000
MAX_BYTES = 1 << 20
"""Option files are a few KiB; a larger file is almost certainly not one."""
_PLAIN_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map")}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLFileError(HatastError):
    """YAML that hatast will not read, with where and why."""


def _where(node_or_mark) -> str:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    line = getattr(mark, "line", None)
    return f"line {line + 1}, column {mark.column + 1}" if line is not None else "somewhere"


class _Refusal(Exception):
    """Raised inside the loader; turned into a :class:`YAMLFileError` with the source by :func:`load_yaml`."""


class _PlainDataLoader(yaml.SafeLoader):
    """``SafeLoader`` limited to plain data (see the module docstring)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refusal(f"{_where(self.peek_event())}: more than {MAX_ALIASES} aliases (*name); option files "
                               "need few or none")
        return super().compose_node(parent, index)

    def construct_object(self, node, deep=False):  # noqa: D102
        if node.tag not in _PLAIN_TAGS and node.tag != _MERGE_TAG:
            raise _Refusal(f"{_where(node)}: the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed: "
                           "option files hold plain data (text, numbers, lists, mappings) and hatast never runs code "
                           "or builds objects from them")
        return super().construct_object(node, deep)

    def construct_mapping(self, node, deep=False):  # noqa: D102
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, object] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise _Refusal(f"{_where(key_node)}: the key {key!r} is not text (write it in quotes if it is a "
                                   "name)")
                if key in seen:
                    raise _Refusal(f"{_where(key_node)}: the key '{key}' appears twice in one mapping (first at "
                                   f"{_where(seen[key])}); YAML allows a key once, and the second would silently win")
                seen[key] = key_node
        return super().construct_mapping(node, deep)


# dates stay text: the timestamp resolver is left out (every other implicit type of YAML 1.1 is kept, as BasicSR
# reads them)
_PlainDataLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _count_nodes(value, limit: int) -> int:
    """The number of values in ``value`` with aliases expanded (shared sub-trees counted each time they occur);
    raises :class:`_Refusal` past ``limit`` or for a value that contains itself."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(item) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        key = id(item)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Refusal("a value contains itself (a recursive alias)")
        active.add(key)
        children = item.values() if isinstance(item, dict) else item
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                raise _Refusal(f"more than {limit} values once aliases are expanded (aliases that nest aliases)")
        active.discard(key)
        sizes[key] = total
        return total

    return size(value)


def load_yaml(text: str | bytes, source: str) -> object:
    """Parse ``text`` (``bytes`` are decoded as UTF-8) as plain data; ``source`` names it in errors (a file, or
    ``--force_yml a:b=...``)."""
    if isinstance(text, bytes):
        text = decode_utf8(text, source)
    try:
        value = yaml.load(text, Loader=_PlainDataLoader)  # noqa: S506  (the plain-data loader above)
        _count_nodes(value, MAX_NODES)
    except _Refusal as refusal:
        raise YAMLFileError(f"{source}: {refusal}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at {_where(mark)}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).strip().splitlines()[0]
        raise YAMLFileError(f"{source}: YAML syntax error{where}: {problem}") from None
    except RecursionError:
        raise YAMLFileError(f"{source}: nested too deeply to be an option file") from None
    return value


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as text: UTF-8 (a BOM is accepted), or :class:`YAMLFileError` saying where the first bad byte is."""
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
                      (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise YAMLFileError(f"{source}: the file is {name}; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise YAMLFileError(f"{source}: not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}, offset "
                            f"{err.start}); save the file as UTF-8") from None


def read_yaml_file(path: str | os.PathLike, what: str = "file") -> object:
    """Read and parse a YAML file as plain data (see :func:`load_yaml`); ``what`` names it in errors (``option
    file``, ``--card``)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise YAMLFileError(f"{what} {path} is a folder, not a YAML file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise YAMLFileError(f"{what} {path} is {size / 1e6:.1f} MB; option files are a few KB (is it the right "
                                "file?)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise YAMLFileError(f"{what} {path} does not exist") from None
    except OSError as err:
        raise YAMLFileError(f"{what} {path} cannot be read ({err.strerror or err})") from None
    return load_yaml(data, str(path))
