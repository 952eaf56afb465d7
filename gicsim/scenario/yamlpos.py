"""YAML -> plain data with the line/column of every key and value, under node and size caps."""

import sys
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import (
    CommentedKeyMap,
    CommentedKeySeq,
    CommentedMap,
    CommentedSeq,
    TaggedScalar,
)
from ruamel.yaml.docinfo import DocInfo, version
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from gicsim.scenario.errors import ScenarioError, _show, _shown

# ----------------------------------------------------------------------------------------------
# YAML -> plain data + positions


class _Positions:
    def __init__(self) -> None:
        self.count = 0
        self.key: dict[tuple[Any, ...], tuple[int, int]] = {}
        self.value: dict[tuple[Any, ...], tuple[int, int]] = {}


# YAML values after alias expansion (building them: ~75 us and ~1.3 KiB each). Counted on the
# composed node graph, each distinct node once, before anything is built (``parse_yaml``).
MAX_NODES = 500_000
MAX_FILE_BYTES = 4 << 20  # 200x the largest shipped scenario; parsing it takes ~10 s
MAX_DEPTH = 100  # lists and mappings inside each other (shipped scenarios: 6); Python recurses

#: the path component of a problem with a mapping key that is itself a list or a mapping
#: (shown as the mapping's own path: the key has no name)
COMPLEX_KEY = type("_ComplexKey", (), {"__repr__": lambda self: "COMPLEX_KEY"})()


class _TooLarge(Exception):
    pass


def _plain(node: Any, path: tuple[Any, ...], pos: _Positions, problems: list[tuple]) -> Any:
    """ruamel round-trip objects -> dict/list/int/float/str/bool, recording 1-based positions."""
    pos.count += 1
    if pos.count > MAX_NODES:
        raise _TooLarge(f"more than {MAX_NODES} values (aliases expanding?)")
    if isinstance(node, CommentedMap):
        out = {}
        for k in node:
            if isinstance(k, CommentedKeyMap | CommentedKeySeq):
                continue  # refused on the node graph (``_check_nodes``)
            p = path + (k,)
            lc = node.lc.data.get(k) if node.lc.data is not None else None
            if lc:
                pos.key[p] = (lc[0] + 1, lc[1] + 1)
                pos.value[p] = (lc[2] + 1, lc[3] + 1)
            out[_scalar(k)] = _plain(node[k], p, pos, problems)
        return out
    if isinstance(node, CommentedSeq):
        out_l = []
        for i, v in enumerate(node):
            lc = node.lc.data.get(i) if node.lc.data is not None else None
            if lc:
                pos.value[path + (i,)] = (lc[0] + 1, lc[1] + 1)
            out_l.append(_plain(v, path + (i,), pos, problems))
        return out_l
    if isinstance(node, TaggedScalar):  # refused on the node graph (``_check_nodes``)
        return str(node.value)
    return _scalar(node)


def _scalar(v: Any) -> Any:
    if isinstance(v, TaggedScalar):  # refused on the node graph (``_check_nodes``)
        return str(v.value)
    if isinstance(v, bool):
        return bool(v)
    if type(v).__name__ == "ScalarBoolean":
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    return v


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")
)  # explicit tags that only restate what the plain loader reads anyway


def _tag_shown(node: Any) -> str:
    ct = node.ctag
    if ct.handle and ct.suffix is not None:
        return f"{ct.handle}{ct.suffix}"
    return f"!<{ct}>"  # a verbatim tag


def _tag_refused(node: Any, resolver: Any) -> bool:
    """Whether ``node`` carries an explicit tag other than a core one: a shorthand
    (``!foo``, ``!!python/...``) or a verbatim one (``!<...>``, which has no handle). A node
    without a tag has the tag the resolver gives its plain text (a date: timestamp)."""
    tag = str(node.tag)
    if tag in _CORE_TAGS:
        return False
    if node.ctag.handle is not None or not isinstance(node, ScalarNode):
        return True
    return resolver is None or str(resolver.resolve(ScalarNode, node.value, (True, False))) != tag


def _key_part(kn: Any) -> Any:
    """A path component for a key node, as the constructed key reads (str, int or the text)."""
    if isinstance(kn, ScalarNode):
        if str(kn.tag) == "tag:yaml.org,2002:int":
            try:
                return int(kn.value.replace("_", ""), 0)
            except ValueError:
                return kn.value
        return kn.value
    return "?"


def _expanded_size(root: Any, cap: int) -> int | Any:
    """Values of the document after alias expansion (as ``_plain`` counts them: every value,
    plus keys that are collections), at most ``cap + 1``; or, when an alias refers to a node
    it is inside (a recursive document), that node.

    Each distinct node is looked at once (sizes are memoised), so an alias bomb of a few
    hundred bytes costs a few hundred steps, not 10**N."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        nid = id(node)
        if children_done:
            on_path.discard(nid)
            n = 1 + sum(size[id(c)] for c in _counted(node))
            size[nid] = min(n, cap + 1)
            continue
        if nid in size:
            continue
        on_path.add(nid)
        stack.append((node, True))
        for c in _counted(node):
            cid = id(c)
            if cid in on_path:
                return c
            if cid not in size:
                stack.append((c, False))
    return size[id(root)]


def _counted(node: Any) -> list[Any]:
    """The child nodes ``_plain`` counts: values, and keys that are not scalars."""
    if isinstance(node, MappingNode):
        return [x for k, v in node.value for x in ((v,) if isinstance(k, ScalarNode) else (k, v))]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _path_to(root: Any, target: Any) -> tuple[Any, ...]:
    """The first path (depth first, each node once) from ``root`` to ``target``."""
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            stack += [(v, path + (_key_part(k),)) for k, v in reversed(node.value)]
        elif isinstance(node, SequenceNode):
            stack += [(v, path + (i,)) for i, v in reversed(list(enumerate(node.value)))]
    return ()


class _Checked:
    """Problems of a composed document found on its node graph, before anything is built."""

    def __init__(self) -> None:
        self.duplicates: list[tuple[int, int, str, str]] = []  # (line, col, path, message)
        self.tags: list[tuple[tuple[Any, ...], str, int, int]] = []  # (path, message, line, col)
        self.fatal = False  # a problem the document cannot even be built with


def _check_nodes(root: Any, resolver: Any = None) -> _Checked:
    """Duplicate keys and explicit tags, each distinct node visited once (aliases are not
    followed twice: what is inside an anchor is reported once, where it is written)."""
    out = _Checked()
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if _tag_refused(node, resolver):
            m = node.start_mark
            out.tags.append((path, f"YAML tag {_tag_shown(node)} is not supported (plain "
                             "mappings, lists and scalars only)", m.line + 1, m.column + 1))  # fmt: skip
            continue  # nothing inside a refused node is looked at
        if isinstance(node, ScalarNode):
            bad = _not_utf8(node) or _int_too_long(node)
            if bad:
                m = node.start_mark
                out.tags.append((path, bad, m.line + 1, m.column + 1))
                out.fatal |= bad.startswith("integer")
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for kn, vn in reversed(node.value):
                if isinstance(kn, ScalarNode):
                    stack.append((vn, path + (_key_part(kn),)))
            for kn, _ in node.value:
                if not isinstance(kn, ScalarNode):
                    m = kn.start_mark
                    what = "a mapping" if isinstance(kn, MappingNode) else "a list"
                    out.tags.append((path + (COMPLEX_KEY,), f"{what} as a key is not allowed (keys "
                                     "are plain strings)", m.line + 1, m.column + 1))  # fmt: skip
                    continue
                if kn.value == "<<":
                    continue
                if _tag_refused(kn, resolver):
                    m = kn.start_mark
                    out.tags.append((path + (_key_part(kn),), f"YAML tag {_tag_shown(kn)} is not "
                                     "supported (plain mappings, lists and scalars only)",
                                     m.line + 1, m.column + 1))  # fmt: skip
                bad = _not_utf8(kn) or _int_too_long(kn)
                if bad:
                    m = kn.start_mark
                    out.tags.append((path + (_key_part(kn),), bad, m.line + 1, m.column + 1))
                    out.fatal |= bad.startswith("integer")
                ident = (str(kn.tag), kn.value)
                if ident in first:
                    out.duplicates.append((
                        kn.start_mark.line + 1, kn.start_mark.column + 1,
                        ".".join(str(p) for p in path + (kn.value,)),
                        f"duplicate key {_show(kn.value)} (first at line {first[ident]})",
                    ))  # fmt: skip
                else:
                    first[ident] = kn.start_mark.line + 1
        elif isinstance(node, SequenceNode):
            for i in range(len(node.value) - 1, -1, -1):
                stack.append((node.value[i], path + (i,)))
    out.duplicates.sort()
    return out


def _int_too_long(node: Any) -> str:
    """Why an integer scalar cannot be read (Python converts at most
    ``sys.get_int_max_str_digits()`` decimal digits), or ''."""
    limit = sys.get_int_max_str_digits()
    if not limit or str(node.tag) != "tag:yaml.org,2002:int" or len(node.value) <= limit:
        return ""
    digits = node.value.replace("_", "").lstrip("+-")
    if digits[:2].lower() in ("0x", "0o", "0b") or len(digits) <= limit:
        return ""  # a power-of-two base has no such limit
    return f"integer with more than {limit:,} digits ({len(digits):,}): too large to read"


def _not_utf8(node: Any) -> str:
    """Why a scalar cannot be written back as UTF-8 (a lone surrogate from a ``\\ud800``
    escape), or ''."""
    v = node.value
    if not isinstance(v, str) or v.isascii():
        return ""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as e:
        return (f"not encodable as UTF-8: character {e.start + 1} is a lone surrogate "
                f"(U+{ord(v[e.start]):04X}); results are written as UTF-8")  # fmt: skip
    return ""


class _Doc:
    """A YAML text parsed once: plain data, positions, and problems found on the way."""

    def __init__(self, raw: Any, pos: _Positions, problems: list[tuple]) -> None:
        self.raw = raw
        self.pos = pos
        self.problems = problems  # (path, message) or (path, message, line, col)


def parse_yaml(text: str, filename: str) -> _Doc:
    """YAML text -> plain data under the caps, or a ScenarioError of ``FILE:LINE:COL`` lines.

    One pass: compose the node graph (no objects built), measure it after alias expansion
    (``MAX_NODES``) and look for recursion, duplicate keys and explicit tags on it, then
    build the data. An alias bomb is refused in microseconds, before anything expands."""
    yaml = YAML(typ="rt")
    yaml.doc_infos.append(DocInfo(requested_version=version(yaml.version)))
    yaml.tags = {}
    parser = None
    try:
        try:
            constructor, parser = yaml.get_constructor_parser(text)
            root = constructor.composer.get_single_node()
        except YAMLError as e:
            raise ScenarioError(_yaml_problem(filename, text, e)) from None
        except RecursionError:
            raise ScenarioError([_too_deep(filename, _deep_mark(text))]) from None
        except Exception as e:  # ruamel can raise plain errors on odd input; never a traceback
            raise ScenarioError([f"{filename}:0:0: <yaml>: cannot parse: {_first_line(e)}"]) from None
        if root is None:
            return _Doc(None, _Positions(), [])
        size = _expanded_size(root, MAX_NODES)
        where = f"{filename}:{root.start_mark.line + 1}:{root.start_mark.column + 1}"
        if not isinstance(size, int):
            m = size.start_mark
            path = ".".join(str(p) for p in _path_to(root, size)) or "<root>"
            raise ScenarioError([f"{filename}:{m.line + 1}:{m.column + 1}: {path}: an alias "
                                 "inside this node refers to it (recursive YAML is not "
                                 "supported)"])  # fmt: skip
        if size > MAX_NODES:
            raise ScenarioError([f"{where}: <yaml>: more than {MAX_NODES:,} values after alias "
                                 "expansion (MAX_NODES; aliases expanding?)"])  # fmt: skip
        deep = _deep_node(root, MAX_DEPTH)
        if deep is not None:
            raise ScenarioError([_too_deep(filename, deep.start_mark)])
        checked = _check_nodes(root, constructor.resolver)
        if checked.fatal:
            raise ScenarioError(_shown([(ln, col, f"{filename}:{ln}:{col}: {_dotted(p)}: {msg}")
                                        for p, msg, ln, col in checked.tags], filename))  # fmt: skip
        if checked.duplicates:
            raise ScenarioError(_shown([(ln, col, f"{filename}:{ln}:{col}: {p}: {msg}")
                                        for ln, col, p, msg in checked.duplicates], filename))  # fmt: skip
        try:
            doc = constructor.construct_document(root)
        except YAMLError as e:
            raise ScenarioError(_yaml_problem(filename, text, e)) from None
        except RecursionError:  # not with MAX_DEPTH checked; kept as a last resort
            raise ScenarioError([_too_deep(filename, root.start_mark)]) from None
        except Exception as e:  # noqa: BLE001 - ruamel's own errors on odd input
            raise ScenarioError([f"{filename}:0:0: <yaml>: cannot parse: {_first_line(e)}"]) from None
    finally:
        if parser is not None:
            parser.dispose()
    pos = _Positions()
    if isinstance(doc, CommentedMap | CommentedSeq):
        pos.value[()] = (doc.lc.line + 1, doc.lc.col + 1)
    else:
        pos.value[()] = (1, 1)
    problems: list[tuple] = list(checked.tags)
    try:
        raw = _plain(doc, (), pos, problems)
    except RecursionError:  # not with MAX_DEPTH checked; kept as a last resort
        raise ScenarioError([_too_deep(filename, root.start_mark)]) from None
    except _TooLarge as e:
        raise ScenarioError([f"{where}: <yaml>: {e}"]) from None
    return _Doc(raw, pos, problems)


def _deep_node(root: Any, cap: int) -> Any:
    """The first node (depth first) nested more than ``cap`` levels deep, or None; on the
    composed graph (no cycles: checked before), each distinct node measured once."""
    height: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            height[id(node)] = 1 + max((height[id(c)] for c in _counted(node)), default=0)
        elif id(node) not in height:
            stack.append((node, True))
            stack += [(c, False) for c in _counted(node) if id(c) not in height]
    if height[id(root)] <= cap:
        return None
    node = root
    for _ in range(cap):  # down the first deepest branch to the level beyond the cap
        node = next(c for c in _counted(node) if height[id(c)] == height[id(node)] - 1)
    return node


def _deep_mark(text: str) -> Any:
    """Where the YAML first nests more than MAX_DEPTH levels (from the event stream, which
    does not recurse: composing a document that deep ran out of stack)."""
    depth = 0
    try:
        for ev in YAML(typ="rt").parse(text):
            if isinstance(ev, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return ev.start_mark
            elif isinstance(ev, CollectionEndEvent):
                depth -= 1
    except Exception:  # noqa: BLE001 - a syntax error further on: the depth is the problem
        pass
    return None


def _too_deep(filename: str, mark: Any) -> str:
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return (f"{filename}:{line}:{col}: <yaml>: nested more than {MAX_DEPTH} levels deep (lists "
            "and mappings inside each other; MAX_DEPTH)")  # fmt: skip


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path if p is not COMPLEX_KEY) or "<root>"


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    line = s.splitlines()[0] if s else type(e).__name__
    return line if len(line) <= 200 else line[:200] + "..."


def _yaml_problem(filename: str, text: str, e: YAMLError) -> list[str]:
    if isinstance(e, MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        msg = e.problem or e.context or "invalid YAML"
        if e.problem and e.context:
            where = ""
            if e.context_mark is not None:
                where = f" started at {e.context_mark.line + 1}:{e.context_mark.column + 1}"
            msg = f"{e.problem} ({e.context}{where})"
        return [f"{filename}:{line}:{col}: <yaml>: {msg}"]
    if isinstance(e, ReaderError):
        line, col = _line_col(text, e.position)
        ch = e.character
        shown = f"0x{ch:x}" if isinstance(ch, int) else repr(ch)
        return [f"{filename}:{line}:{col}: <yaml>: {e.reason} (character {shown})"]
    return [
        f"{filename}:0:0: <yaml>: {str(e).strip().splitlines()[0] if str(e).strip() else 'invalid YAML'}"
    ]


