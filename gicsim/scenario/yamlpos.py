"""YAML -> plain data with the line/column of every key and value, under node and size caps."""

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

# ----------------------------------------------------------------------------------------------
# YAML -> plain data + positions


class _Positions:
    def __init__(self) -> None:
        self.count = 0
        self.key: dict[tuple[Any, ...], tuple[int, int]] = {}
        self.value: dict[tuple[Any, ...], tuple[int, int]] = {}


MAX_NODES = 500_000  # YAML values after alias expansion (ruamel: ~75 us and ~1.3 KiB each)
MAX_FILE_BYTES = 4 << 20  # 200x the largest shipped scenario; parsing it takes ~10 s


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
    if isinstance(node, TaggedScalar):
        tag = str(node.tag.value)
        if tag == "tag:yaml.org,2002:str":
            return str(node.value)
        problems.append((path, f"YAML tag {tag} is not supported"))
        return node.value
    return _scalar(node)


def _scalar(v: Any) -> Any:
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


def _duplicate_keys(text: str) -> list[tuple[int, int, str, str]]:
    """All duplicate mapping keys (ruamel stops at the first): (line, col, path, message)."""
    try:
        root = YAML(typ="rt").compose(text)
    except YAMLError:
        return []
    found: list[tuple[int, int, str, str]] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for kn, vn in node.value:
                if isinstance(kn, ScalarNode) and kn.value != "<<":
                    ident = (str(getattr(kn.tag, "value", kn.tag)), kn.value)
                    if ident in first:
                        found.append(
                            (
                                kn.start_mark.line + 1,
                                kn.start_mark.column + 1,
                                ".".join(path + (kn.value,)),
                                f"duplicate key {kn.value!r} (first at line {first[ident]})",
                            )
                        )
                    else:
                        first[ident] = kn.start_mark.line + 1
                walk(vn, path + (str(getattr(kn, "value", "?")),))
        elif isinstance(node, SequenceNode):
            for i, vn in enumerate(node.value):
                walk(vn, path + (str(i),))

    walk(root, ())
    return found


def _yaml_problem(filename: str, text: str, e: YAMLError) -> list[str]:
    if isinstance(e, DuplicateKeyError):
        dups = _duplicate_keys(text)
        if dups:
            return [f"{filename}:{ln}:{col}: {p}: {msg}" for ln, col, p, msg in dups]
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


