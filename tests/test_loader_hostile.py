"""Hostile scenario files: the loader never hangs, never runs out of memory, never leaks a
traceback, and ``validate`` accepts exactly what ``run`` accepts.

- alias bombs (with and without a duplicate key) and recursive aliases are refused from the
  composed node graph, before anything expands: one ``FILE:LINE:COL: <yaml>: ...`` line;
- FIFOs, sockets and devices given as a scenario are refused without being opened for a
  blocking read;
- every explicit YAML tag other than the core ones (``!!str``, ``!!int``, ``!!map``...) is
  refused on scalars, mappings, sequences and keys alike, one line at the tagged node;
- numbers go through one conversion (finite, int64 ns, exact): huge or tiny values that ran
  into ``OverflowError`` or a resolved scenario that does not load back are refused when
  validating; text that cannot be written as UTF-8 and names that cannot be directory names
  too;
- property: whatever the loader accepts, ``resolved_dict`` writes as strict JSON and YAML that
  loads back to an equal scenario.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from gicsim.cli import main
from gicsim.scenario import (
    MAX_NODES,
    ScenarioError,
    load_scenario,
    load_scenario_text,
    resolved_dict,
    scenario_from_dict,
    yamlpos,
)
from gicsim.scenario import timing as T

ROOT = Path(__file__).parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
SMALL = [p for p in SCENARIOS if p.stat().st_size < 16_000]
LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<msg>.+)$")


def refused(tmp_path: Path, text: str | bytes, command: str = "validate") -> re.Match:
    """``gicsim validate`` (or run) of the text: exit 2, exactly one located line."""
    f = tmp_path / "s.yaml"
    if isinstance(text, str):
        f.write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        f.write_bytes(text)
    args = [command, str(f)] + (["-o", str(tmp_path / "out")] if command == "run" else [])
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    (ln,) = r.stderr.splitlines()
    m = LINE.match(ln)
    assert m and m["file"] == str(f), ln
    return m


def bomb(levels: int, width: int = 10) -> str:
    text = "name: x\na: &a [" + ", ".join(["1"] * width) + "]\n"
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        text += f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * width) + "]\n"
    return text


# ------------------------------------------------------------------------ hangs ----


def _in_subprocess(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter: a hang is a failed test, not a stuck suite."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)  # fmt: skip


@pytest.mark.parametrize("tail", ["", "name: again\n", "a: 1\n"], ids=["plain", "dup-name", "dup-anchor-key"])
def test_alias_bomb_is_refused_at_once(tmp_path, tail):
    """10**9 values from 600 bytes; with a duplicate key the old loader walked them all."""
    text = bomb(9) + tail
    f = tmp_path / "bomb.yaml"
    f.write_text(text)
    code = ("from gicsim.scenario import check_scenario\n"
            f"print('\\n'.join(check_scenario({str(f)!r})))\n")  # fmt: skip
    try:
        r = _in_subprocess(code)
    except subprocess.TimeoutExpired:
        pytest.fail("the loader hangs on an alias bomb")
    (ln,) = r.stdout.splitlines()
    m = LINE.match(ln)
    assert m and m["path"] == "<yaml>" and "MAX_NODES" in m["msg"], ln


def test_alias_bomb_is_measured_without_expanding_it():
    """The node graph of a 10**9-value document is measured in a few hundred steps."""
    root = YAML(typ="rt").compose(bomb(9))
    assert yamlpos._expanded_size(root, MAX_NODES) == MAX_NODES + 1
    small = YAML(typ="rt").compose(bomb(3))  # root, name, a = 1 + 10, b = 1 + 10 a's, c...
    assert yamlpos._expanded_size(small, MAX_NODES) == 1 + 1 + 11 + 111 + 1111


def test_just_under_the_node_cap_loads_the_same_as_before():
    """An alias-expanding document under MAX_NODES still reaches the schema (unknown key)."""
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(bomb(4), "b.yaml")
    assert any("unknown key 'a'" in p for p in e.value.problems), e.value.problems


def test_recursive_alias_is_refused_where_it_is(tmp_path):
    m = refused(tmp_path, "name: x\nvm:\n  its: &r {device_table: [*r]}\n")
    assert m["path"] == "vm.its" and m["line"] == "3" and "recursive" in m["msg"]


def _fifo_check(path: Path) -> subprocess.CompletedProcess:
    code = ("import sys\nfrom click.testing import CliRunner\nfrom gicsim.cli import main\n"
            f"r = CliRunner().invoke(main, ['validate', {str(path)!r}])\n"
            "sys.stdout.write(r.stderr)\nsys.exit(r.exit_code)\n")  # fmt: skip
    try:
        return _in_subprocess(code)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the loader blocks on {path}")


def test_fifo_scenario_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)
    r = _fifo_check(fifo)
    assert r.returncode == 2, r
    (ln,) = r.stdout.splitlines()
    assert ln.startswith(f"{fifo}: is a FIFO") and "regular file" in ln, ln  # FILE: message


def test_socket_and_devices_are_refused(tmp_path):
    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        targets = [sock_path] + [Path(p) for p in ("/dev/zero", "/dev/null") if os.path.exists(p)]
        for t in targets:
            with pytest.raises(ScenarioError) as e:
                load_scenario(t)
            (p,) = e.value.problems
            assert p.startswith(f"{t}: is a ") and "regular file" in p, p
    finally:
        s.close()


def test_missing_file_is_file_colon_message(tmp_path):
    """``FILE: no such file`` (issue 16: no ``0:0`` position for a file that is not there)."""
    with pytest.raises(ScenarioError) as e:
        load_scenario(tmp_path / "nope.yaml")
    assert e.value.problems == [f"{tmp_path / 'nope.yaml'}: no such file"]


# ------------------------------------------------------------------------- tags ----

TAGGED = {
    "mapping": ("name: x\nvm: !foo {vcpus: 2}\n", "vm", 2, "!foo"),
    "sequence": ("name: x\ndevices: !!python/object [1]\n", "devices", 2, "!!python/object"),
    "python_object_map": ("name: x\nvm: !!python/object:os.system {vcpus: 2}\n", "vm", 2, "!!python/object:os.system"),
    "omap": ("name: x\nvm: !!omap [vcpus: 2]\n", "vm", 2, "!!omap"),
    "pairs": ("name: x\nvm: !!pairs [vcpus: 2]\n", "vm", 2, "!!pairs"),
    "set": ("name: x\nvm: !!set {a, b}\n", "vm", 2, "!!set"),
    "nested_block": ("name: x\nvm:\n  its: !local\n    device_table: flat\n", "vm.its", 3, "!local"),
    "scalar": ("name: x\nseed: !foo 3\n", "seed", 2, "!foo"),
    "binary": ("name: x\nseed: !!binary aGVsbG8=\n", "seed", 2, "!!binary"),
    "key": ("name: x\n!foo vm: {vcpus: 2}\n", "vm", 2, "!foo"),
    "in_list": ("name: x\nguest:\n  boot:\n    - !step {its_enable: true}\n", "guest.boot.0", 4, "!step"),
    "tag_directive": ("%TAG !e! tag:example.com,2000:\n---\nname: x\nvm: !e!vm {vcpus: 2}\n", "vm", 4, "!e!vm"),
}


@pytest.mark.parametrize("case", sorted(TAGGED))
def test_tags_are_refused_on_every_kind_of_node(tmp_path, case):
    text, path, line, tag = TAGGED[case]
    m = refused(tmp_path, text)
    assert m["path"] == path and int(m["line"]) == line, m.group(0)
    assert f"YAML tag {tag} is not supported" in m["msg"], m.group(0)


def test_core_tags_only_restate_the_type():
    sc = load_scenario_text("name: !!str x\nseed: !!int 7\nvm: !!map {vcpus: !!int 2}\n"
                            "devices: !!seq []\n", "t.yaml")  # fmt: skip
    assert (sc.name, sc.seed, sc.vm.vcpus, sc.devices) == ("x", 7, 2, ())


# ------------------------------------------------ validate accepts what run accepts ----

REFUSED = {
    # each passed validate and then failed in run (OverflowError, or resolved.yaml not loading)
    "until_huge": ("name: x\nuntil_us: 1.0e306\n", "until_us", "too large"),
    "at_us_max_float": ("name: x\nmigration: {at_us: 1.7976931348623157e308}\n", "migration.at_us", "too large"),
    "override_huge": ("name: x\ntiming: {base: altra-6.12, overrides: {vcpu_exit_us: 1.0e308}}\n",
                      "timing.overrides.vcpu_exit_us", "too large"),
    "override_downtime_huge": ("name: x\ntiming: {base: altra-6.12, overrides: {downtime_limit_ms: 1.0e300}}\n"
                               "migration: {at_us: 1}\n", "timing.overrides.downtime_limit_ms", "too large"),
    "override_downtime_tiny": ("name: x\ntiming: {base: altra-6.12, overrides: {downtime_limit_ms: 1.0e-300}}\n"
                               "migration: {at_us: 1}\n", "timing.overrides.downtime_limit_ms", "> 0"),
    "override_number_huge": ("name: x\ntiming: {base: altra-6.12, overrides: {dest_prefault_ms_per_gib: 1.0e300}}\n",
                             "timing.overrides.dest_prefault_ms_per_gib", "MAX_NUMBER"),
    "downtime_tiny": ("name: x\nmigration: {at_us: 1, precopy: {downtime_limit_ms: 1.0e-300}}\n",
                      "migration.precopy.downtime_limit_ms", "> 0"),
    "until_tiny": ("name: x\nuntil_us: 1.0e-300\n", "until_us", "> 0"),
    "rate_tiny": ("name: x\ndevices: [{device: 1, events: 0, rate_per_s: 1.0e-300}]\n",
                  "devices.0.rate_per_s", "MIN_RATE_PER_S"),
    "surrogate_description": ('name: x\ndescription: "ok \\ud800"\n', "description", "UTF-8"),
    "long_name": ("name: " + "a" * 250 + "\n", "name", "MAX_NAME_LEN"),
    "name_newline": ('name: "abc\\n"\n', "name", "directory name"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_validate_refuses_what_run_cannot_finish(tmp_path, case):
    text, path, words = REFUSED[case]
    for command in ("validate", "run"):
        m = refused(tmp_path, text, command)
        assert m["path"] == path and words in m["msg"], m.group(0)
    assert not (tmp_path / "out").exists()


def test_lone_surrogates_are_refused_where_they_are_keys_or_values():
    text = 'name: x\n"\\ud800k": 1\nvm: {"\\udfff": 2}\nguest: {boot: [{mapc: "\\ud801"}]}\n'
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, "u.yaml")
    got = [(p.split(": ")[0], p.split(": ")[1]) for p in e.value.problems]
    assert got == [("u.yaml:2:1", "\ud800k"), ("u.yaml:3:6", "vm.\udfff"),
                   ("u.yaml:4:23", "guest.boot.0.mapc")], e.value.problems  # fmt: skip
    assert all("not encodable as UTF-8" in p for p in e.value.problems)


def test_long_values_are_not_echoed_whole():
    text = "name: x\nvm: {device_table: '" + "A" * 100_000 + "'}\n"
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, "l.yaml")
    assert all(len(p) < 400 for p in e.value.problems), [len(p) for p in e.value.problems]
    seed = "name: x\nseed: " + "9" * 4000 + "\n"
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(seed, "s.yaml")
    (p,) = e.value.problems
    assert "seed" in p and len(p) < 300 and "of 4,000 digits" in p, p


def test_nested_typo_is_named_with_a_suggestion(tmp_path):
    m = refused(tmp_path, "name: x\nmigration: {at_us: 1, source: {on_ebusy: {retyr: 5, backoff_us: 1}}}\n")
    assert m["path"] == "migration.source.on_ebusy.retyr", m.group(0)
    assert "did you mean 'retry'?" in m["msg"], m.group(0)


@pytest.mark.parametrize("value, ns", [(9223372036854775.807, None), (2.0**53 / 1000 + 0.0001, None),
                                       (0.0015, 2), (1.5e-3, 2), (4503599627370.497, None)])  # fmt: skip
def test_time_conversion_is_a_fixed_point(value, ns):
    """The ns a float reads as are the ns its write-back reads as (also beyond 2**53 ns)."""
    from gicsim.scenario.units import from_ns, to_ns

    try:
        n = to_ns(value, 1000)
    except ValueError:
        assert value > 9223372036854775, value
        return
    assert to_ns(from_ns(n, 1000), 1000) == n
    if ns is not None:
        assert n == ns


# ---------------------------------------------------------- resolved scenarios ----


def _docs() -> list[dict]:
    y = YAML(typ="safe", pure=True)
    return [y.load(p.read_text()) for p in SMALL]


DOCS = _docs()
OVERRIDES = sorted(T.override_keys())
# numbers at every edge: subnormals, just around the int64-ns limits, 2**53, huge, negative
EDGE_FLOATS = [5e-324, 1e-300, 1e-10, 1e-9, 0.0004, 0.0005, 0.0015, 1.0, 2.5e-3,
               4503599627370.497, 9007199254740.993, 9223372036854.775, 9223372036854775.0,
               9223372036854775.807, 9.3e15, 1e300, 1.7976931348623157e308, -0.0, -1.0]  # fmt: skip
NUMBERS = st.one_of(
    st.sampled_from(EDGE_FLOATS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=0, max_value=1e7),
    st.integers(-(2**70), 2**70),
    st.integers(0, 10**6),
)
TEXTS = st.one_of(
    st.sampled_from(["", "plain", "\x1b[31mred\x1b[0m", "ok \ud800", "\udfff", "é ✓ 🙂", "a\nb"]),
    st.text(max_size=30),
)
NAMES = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,130}\n?", fullmatch=True),
    st.sampled_from(["..", ".hidden", "a/b", "x" * 100, "x" * 101, "abc\n"]),
)


def _numeric_paths(doc, path=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _numeric_paths(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _numeric_paths(v, path + (i,))
    elif isinstance(doc, int | float) and not isinstance(doc, bool):
        yield path


@st.composite
def scenario_docs(draw):
    """A shipped scenario with numbers, the description, the name and timing overrides
    replaced by edge values (the valid-scenario generator for the round trip)."""
    doc = copy.deepcopy(draw(st.sampled_from(DOCS)))
    paths = list(_numeric_paths(doc))
    for _ in range(draw(st.integers(0, 3))):
        if paths:
            p = draw(st.sampled_from(paths))
            node = doc
            for c in p[:-1]:
                node = node[c]
            node[p[-1]] = draw(NUMBERS)
    if draw(st.booleans()):
        overrides = draw(st.dictionaries(st.sampled_from(OVERRIDES), NUMBERS, max_size=3))
        doc["timing"] = {"base": draw(st.sampled_from(sorted(T.PROFILES))), "overrides": overrides}
    if draw(st.booleans()):
        doc["description"] = draw(TEXTS)
    if draw(st.booleans()):
        doc["name"] = draw(NAMES)
    for k in ("until_us",):
        if draw(st.booleans()):
            doc[k] = draw(NUMBERS)
    return doc


@settings(derandomize=True, max_examples=300, deadline=None)
@given(scenario_docs())
def test_everything_accepted_loads_back_from_its_resolved_form(doc):
    try:
        sc = scenario_from_dict(doc)
    except ScenarioError as e:
        assert e.problems and all(LINE.match(p) for p in e.problems), e.problems
        return
    d = resolved_dict(sc)
    assert scenario_from_dict(d) == sc
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN, no inf, no object
    text.encode("utf-8")  # no lone surrogate
    assert scenario_from_dict(json.loads(text)) == sc
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(d, buf)
    buf.getvalue().encode("utf-8")
    again = load_scenario_text(buf.getvalue(), "resolved.yaml")
    assert again == sc and resolved_dict(again) == d
    assert sc.until_ns <= (1 << 63) - 1 and sc.timing.downtime_limit_ns > 0
