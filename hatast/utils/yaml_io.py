"""The one reader of YAML that a user hands hatast (option files, every ``--force_yml`` value, release cards).

Option files are data, never code. The reader is PyYAML's safe loader with four changes, so that whatever a file
holds, reading it either gives plain data (dicts with text keys, lists, text, numbers, booleans, None) or raises
:class:`YAMLFileError` with one line naming the file, the line and the problem:

* **No tags but the plain ones.** ``!!python/object/apply:os.system [...]`` (which BasicSR's full loader runs),
  ``!!binary``, ``!!set``, ``!!timestamp``, custom ``!tags``: refused, the file is not acted on. Dates stay text
  (``name: 2024-05-01`` is a name, not a ``datetime``).
* **Aliases limited.** At most :data:`MAX_ALIASES` aliases, no recursive ones, and at most :data:`MAX_NODES` values
  once aliases (and merge keys, ``<<: *name``) are expanded (a "billion laughs" file is refused instead of filling
  the memory); values nest at most :data:`MAX_DEPTH` levels deep.
* **Duplicate keys are an error** (YAML says so; PyYAML keeps the last one silently, so a second ``lr:`` further
  down a file used to win without a word). Keys must be text.
* **Values that are data.** A scalar its tag cannot read (``!!int abc``), a number too large for a float (a
  5000-digit integer, a long ``1:2:3`` base-60 one) and text that is not Unicode (``"\\ud800"``) are refused with
  their line, instead of an exception from deep inside the parser.
* **UTF-8** (a BOM is accepted); a file in another encoding or with bytes that are not UTF-8 is refused with the
  position of the first bad byte, and files larger than :data:`MAX_BYTES` are refused before parsing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from .errors import HatastError

MAX_ALIASES = 100
MAX_NODES = 100_000
MAX_BYTES = 1 << 20
"""Option files are a few KiB; a larger file is almost certainly not one."""
MAX_DEPTH = 50
"""Option files nest four or five levels; deeper nesting is refused with its line (before Python's recursion limit)."""
MAX_NUMBER_CHARS = 400
"""An integer written with more characters than this is refused (a float holds at most 309 digits; a long base-60
``1:2:3:...`` literal would also take quadratic time to read)."""
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
        self._open: set[str] = set()  # anchors whose value is being composed: an alias to one is recursive
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values in it once aliases are expanded

    def compose_node(self, parent, index):  # noqa: D102
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refusal(f"{_where(event)}: more than {MAX_ALIASES} aliases (*name); option files need few or "
                               "none")
            if event.anchor in self._open:
                raise _Refusal(f"{_where(event)}: the alias *{event.anchor} is inside the value &{event.anchor} it "
                               "names (a recursive alias)")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refusal(f"{_where(event)}: values nested more than {MAX_DEPTH} levels deep; option files nest a "
                           "few")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        self._open.discard(anchor)
        self._depth -= 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
            size = 1 + sum(self._sizes.get(id(child), 1) for child in children)
            if size > MAX_NODES:
                raise _Refusal(f"{_where(node)}: this value holds more than {MAX_NODES} values once its aliases are "
                               "expanded (aliases that nest aliases)")
            self._sizes[id(node)] = size
        return node

    def construct_object(self, node, deep=False):  # noqa: D102
        if node.tag not in _PLAIN_TAGS and node.tag != _MERGE_TAG:
            raise _Refusal(f"{_where(node)}: the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed: "
                           "option files hold plain data (text, numbers, lists, mappings) and hatast never runs code "
                           "or builds objects from them")
        try:
            data = super().construct_object(node, deep)
        except (ValueError, KeyError, TypeError, OverflowError) as err:  # a scalar its tag cannot read (!!int abc)
            what = f"{node.value[:40]!r}" if isinstance(node.value, str) else "this value"
            why = f" ({str(err).splitlines()[0][:80]})" if str(err) and not isinstance(err, KeyError) else ""
            raise _Refusal(f"{_where(node)}: {what} is not a valid "
                           f"{node.tag.replace('tag:yaml.org,2002:', '!!')}{why}") from None
        if isinstance(data, str):
            try:
                data.encode("utf-8")
            except UnicodeEncodeError:
                raise _Refusal(f"{_where(node)}: the text {data[:40]!r} is not valid Unicode (an escaped surrogate "
                               "such as \\ud800)") from None
        return data

    def construct_yaml_int(self, node):  # noqa: D102
        if len(node.value) > MAX_NUMBER_CHARS:
            raise _Refusal(f"{_where(node)}: a number of {len(node.value)} characters is too large for an option")
        value = super().construct_yaml_int(node)
        if abs(value) > sys.float_info.max:
            raise _Refusal(f"{_where(node)}: the number {node.value[:40]}... is too large for an option")
        return value

    def construct_mapping(self, node, deep=False):  # noqa: D102
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, object] = {}
            for key_node, _ in node.value:
                key = "<<" if key_node.tag == _MERGE_TAG else self.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise _Refusal(f"{_where(key_node)}: the key {key!r} is not text (write it in quotes if it is a "
                                   "name)")
                if key in seen:
                    raise _Refusal(f"{_where(key_node)}: the key '{key}' appears twice in one mapping (first at "
                                   f"{_where(seen[key])}); YAML allows a key once, and the second would silently win")
                seen[key] = key_node
        return super().construct_mapping(node, deep)


_PlainDataLoader.add_constructor("tag:yaml.org,2002:int", _PlainDataLoader.construct_yaml_int)

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
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (a control character)
        line = text.count("\n", 0, err.position) + 1
        shown = f"#x{err.character:04x}" if isinstance(err.character, int) else repr(err.character)
        raise YAMLFileError(f"{source}: YAML syntax error at line {line}: the character {shown} is not allowed "
                            f"({err.reason})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f" at {_where(mark)}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).strip().splitlines()[0]
        context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and context_mark is not None and context_mark is not mark:  # "duplicate anchor; first at ..."
            problem = f"{problem} ({context} at {_where(context_mark)})"
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
    if b"\x00" in data:
        at = data.index(b"\x00")
        line = data.count(b"\n", 0, at) + 1
        raise YAMLFileError(f"{source}: a NUL byte at line {line}, offset {at}: not text (UTF-16 without a byte order "
                            "mark, or a binary file?); save it as UTF-8")
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
