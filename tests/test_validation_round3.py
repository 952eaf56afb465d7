"""Validation round 3: what ``run`` refuses, ``validate``, sweeps and hazard spaces refuse
too (kernel backend choices), with located one-line problems; verbatim YAML tags; parser
messages (depth, huge integers, complex keys, long keys, many problems, non-ASCII digits);
hazard space messages. Each test pins the exit code, the exact line and what is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gicsim.cli import main
from gicsim.hazards.space import expand, load_space_file
from gicsim.linux.fetch import REQUIRED
from gicsim.scenario import ScenarioError, load_scenario, load_scenario_text, resolved_dict
from gicsim.scenario.fields import parse_range
from gicsim.sweeps import SweepError, load_sweep

ROOT = Path(__file__).resolve().parent.parent
CLEAN = (ROOT / "scenarios" / "clean-migration.yaml").read_text()
HAZARD = ROOT / "scenarios" / "hazard-small.yaml"
LINUX = ("overrides release 6.12's behaviour; the linux backend runs the kernel's own code "
         "(drop the override, or use backend: python)")  # fmt: skip
ORDER = "[memory, redistributors, its_init, gits_cbaser, gits_regs, its_restore_tables, gits_ctlr, resume]"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def _problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, "f.yaml")
    return e.value.problems


def _cli(*args: str):
    r = CliRunner().invoke(main, list(args))
    assert "Traceback" not in r.output
    return r.exit_code, r.stdout, r.stderr


def _fake_tree(root: Path) -> Path:
    """A directory that looks like a kernel tree to gicsim.linux.fetch (never built here)."""
    for rel in REQUIRED:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    return root


# ---------------------------------------------------------------- kernel backend choices


def test_validate_refuses_a_variant_field_on_the_linux_backend(tmp_path):
    f = _write(tmp_path, "v.yaml", CLEAN + "kernel:\n  backend: linux\n  restore_scan: head_pointer\n")
    line = CLEAN.count("\n") + 3
    code, out, err = _cli("validate", str(f))
    assert (code, out) == (2, "")
    assert err == f"{f}:{line}:3: kernel.restore_scan: {LINUX}\n"


def test_a_variant_field_on_the_python_backend_is_fine():
    sc = load_scenario_text(CLEAN + "kernel: {backend: python, restore_scan: head_pointer}\n")
    assert sc.kernel.restore_scan == "head_pointer"


@pytest.mark.parametrize("tree, message", [
    ("/nonexistent/linux", "'/nonexistent/linux' is neither a release (6.12, 6.1) nor an existing path"),
    ("/etc/passwd", "'/etc/passwd' is not a directory or a .tar[.gz|.xz|.bz2] tarball of a kernel tree"),
    ("/etc", "'/etc' is not a kernel tree: no arch/arm64/kvm/vgic/vgic-its.c"),
    ("/x/" + "y" * 100_000, "cannot use '/x/" + "y" * 77 + "'... (100,003 characters): File name too long"),
], ids=["missing", "a-file", "not-a-tree", "name-too-long"])  # fmt: skip
def test_validate_refuses_a_tree_run_cannot_use(tmp_path, tree, message):
    f = _write(tmp_path, "t.yaml", CLEAN + f"kernel:\n  tree: {tree}\n")
    code, out, err = _cli("validate", str(f))
    assert (code, out) == (2, "")
    assert err == f"{f}:{CLEAN.count(chr(10)) + 2}:9: kernel.tree: {message}\n"


def test_a_tree_lacking_files_and_a_tree_with_backend_python_are_refused(tmp_path):
    tree = _fake_tree(tmp_path / "linux")
    (tree / "lib/list_sort.c").unlink()
    assert _problems(CLEAN + f"kernel: {{tree: {tree}}}\n") == [
        f"f.yaml:{CLEAN.count(chr(10)) + 1}:16: kernel.tree: {str(tree)!r} is a kernel tree but "
        "lacks lib/list_sort.c"]  # fmt: skip
    assert _problems(CLEAN + f"kernel: {{backend: python, tree: {tree}}}\n") == [
        f"f.yaml:{CLEAN.count(chr(10)) + 1}:33: kernel.tree: a tree runs on the linux backend, "
        "but backend is python (drop one of them)"]  # fmt: skip


def test_a_relative_tree_is_resolved_to_an_absolute_path(tmp_path, monkeypatch):
    _fake_tree(tmp_path / "src" / "linux")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    sc = load_scenario_text(CLEAN + "kernel: {tree: ./linux/}\n")
    assert sc.kernel.tree == str(tmp_path / "src" / "linux")
    resolved = resolved_dict(sc)
    assert resolved["kernel"]["tree"] == str(tmp_path / "src" / "linux")
    monkeypatch.chdir(tmp_path / "elsewhere")  # what `gicsim tables RUN` does with resolved.yaml
    from gicsim.scenario import scenario_from_dict

    assert scenario_from_dict(resolved) == sc


def test_run_kernel_tree_option_is_checked_and_made_absolute(tmp_path, monkeypatch):
    from gicsim.scenario.kernel_backend import with_kernel_backend

    _fake_tree(tmp_path / "linux")
    monkeypatch.chdir(tmp_path)
    sc = load_scenario_text(CLEAN)
    assert with_kernel_backend(sc, tree="linux").kernel.tree == str(tmp_path / "linux")
    with pytest.raises(ScenarioError) as e:
        with_kernel_backend(sc, tree="nope")
    assert e.value.problems == ["clean-migration: --kernel-tree: 'nope' is neither a release "
                                "(6.12, 6.1) nor an existing path"]  # fmt: skip
    v5 = load_scenario_text(CLEAN + "kernel: {pending_sync_on_ctlr: true}\n")
    with pytest.raises(ScenarioError) as e:
        with_kernel_backend(v5, backend="linux")
    assert e.value.problems == [f"clean-migration: kernel.pending_sync_on_ctlr {LINUX}"]


def test_a_sweep_refuses_kernel_overrides_run_would_refuse(tmp_path):
    _write(tmp_path, "base.yaml", CLEAN)
    sw = _write(tmp_path, "sw.yaml", "name: tiny\nbase: base.yaml\ngrid:\n"
                "  kernel: [{backend: linux, restore_scan: head_pointer}]\n  kernel.tree: [/nonexistent]\n")  # fmt: skip
    with pytest.raises(SweepError) as e:
        load_sweep(sw)
    assert e.value.problems == [
        f"{sw}:4:29: kernel.restore_scan: {LINUX} (in run 0)",
        f"{sw}:5:17: kernel.tree: '/nonexistent' is neither a release (6.12, 6.1) nor an existing "
        "path (in run 0)",
    ]
    code, _, err = _cli("sweep", str(sw), "-o", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 2 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("kernel, at, message", [
    ("{backend: linux, tree: /etc}", "3:33: kernel.tree",
     "'/etc' is not a kernel tree: no arch/arm64/kvm/vgic/vgic-its.c"),
    ('{backend: linux, release: "6.12", translation_cache: stale}', "3:44: kernel.translation_cache", LINUX),
    ("{backend: linux, tree: /nonexistent}", "3:33: kernel.tree",
     "'/nonexistent' is neither a release (6.12, 6.1) nor an existing path"),
], ids=["not-a-tree", "variant-on-linux", "missing-tree"])  # fmt: skip
def test_a_hazard_space_refuses_kernel_values_run_would_refuse(tmp_path, kernel, at, message):
    sp = _write(tmp_path, "sp.yaml", f"destination_orders: [{ORDER}]\nleave_out: false\nkernel: [{kernel}]\n")
    out = tmp_path / "out"
    code, stdout, err = _cli("hazards", str(HAZARD), "--space", str(sp), "-o", str(out))
    assert (code, stdout) == (2, "") and not out.exists()
    assert err == f"{sp}:{at}: {message}\n"


def test_a_release_written_as_a_number_says_so():
    n = CLEAN.count("\n") + 1
    assert _problems(CLEAN + "kernel: {release: 6.1}\n") == [
        f"f.yaml:{n}:19: kernel.release: expected '6.12' or '6.1', got the number 6.1; write it "
        'as a string: "6.1"']  # fmt: skip
    assert _problems(CLEAN + "kernel: {release: 6.12}\n") == [
        f"f.yaml:{n}:19: kernel.release: expected '6.12' or '6.1', got the number 6.12; write it "
        'as a string: "6.12"']  # fmt: skip
    assert _problems(CLEAN + "kernel: {release: 5.4}\n") == [
        f"f.yaml:{n}:19: kernel.release: expected '6.12' or '6.1', got the number 5.4"]


# ---------------------------------------------------------------- verbatim YAML tags


@pytest.mark.parametrize("text, where, tag", [
    ("name: x\nguest:\n  boot: !<tag:yaml.org,2002:python/object/apply:os.system>\n    - its_enable: true\n",
     "3:9: guest.boot", "!<tag:yaml.org,2002:python/object/apply:os.system>"),
    ("name: x\nvm: !<tag:yaml.org,2002:python/object:os.system> {vcpus: 4}\n", "2:5: vm",
     "!<tag:yaml.org,2002:python/object:os.system>"),
    ("name: x\nvm: {vcpus: !<!foo> 2}\n", "2:13: vm.vcpus", "!<!foo>"),
    ("name: x\n!<!k> seed: 1\n", "2:1: seed", "!<!k>"),
], ids=["on-a-list", "on-a-mapping", "on-a-scalar", "on-a-key"])  # fmt: skip
def test_verbatim_tags_are_refused(text, where, tag):
    assert _problems(text) == [f"f.yaml:{where}: YAML tag {tag} is not supported (plain "
                               "mappings, lists and scalars only)"]  # fmt: skip


def test_verbatim_core_tags_only_restate_the_plain_reading():
    sc = load_scenario_text("name: x\nseed: !<tag:yaml.org,2002:int> 3\nvm: !<tag:yaml.org,2002:map> {vcpus: 2}\n")
    assert (sc.seed, sc.vm.vcpus) == (3, 2)


def test_a_sweep_refuses_a_verbatim_tag(tmp_path):
    _write(tmp_path, "base.yaml", CLEAN)
    sw = _write(tmp_path, "sw.yaml", "name: tiny\nbase: base.yaml\ngrid:\n"
                "  until_us: !<tag:yaml.org,2002:python/tuple> [3000]\n")  # fmt: skip
    with pytest.raises(SweepError) as e:
        load_sweep(sw)
    assert e.value.problems == [f"{sw}:4:13: grid.until_us: YAML tag !<tag:yaml.org,2002:python/"
                                "tuple> is not supported (plain mappings, lists and scalars only)"]  # fmt: skip


# ---------------------------------------------------------------- parser messages

DEEP = "nested more than 100 levels deep (lists and mappings inside each other; MAX_DEPTH)"


def test_nesting_is_capped_with_a_located_line():
    load_scenario_text("name: x\nvm: {its: {}}\nexpect: {}\nguest: {boot: []}\n")
    assert _problems("name: x\ndescription: " + "[" * 99 + "]" * 99 + "\n") == [
        "f.yaml:2:14: description: expected a string, got a list"]
    for n in (100, 300, 5000):  # composed (deep enough to exhaust the stack in ruamel, too)
        assert _problems("name: x\ndescription: " + "[" * n + "]" * n + "\n") == [
            f"f.yaml:2:113: <yaml>: {DEEP}"]
    assert _problems("name: x\ndescription: " + "{a: " * 3000 + "1" + "}" * 3000) == [
        f"f.yaml:2:410: <yaml>: {DEEP}"]


def test_nesting_through_aliases_counts():
    inner = "[" * 60 + "1" + "]" * 60
    text = f"name: x\na: &a {inner}\nb: " + "[" * 45 + "*a" + "]" * 45 + "\n"
    assert _problems(text) == [f"f.yaml:2:61: <yaml>: {DEEP}"]  # inside the anchor, as written


def test_an_integer_too_long_to_read_is_located():
    assert _problems("name: x\nseed: " + "9" * 5000 + "\n") == [
        "f.yaml:2:7: seed: integer with more than 4,300 digits (5,000): too large to read"]


@pytest.mark.parametrize("text, line", [
    ("name: x\nvm:\n  ? {a: 1}\n  : 2\n", "f.yaml:3:5: vm: a mapping as a key is not allowed (keys are plain strings)"),
    ("name: x\nvm:\n  ? [a, 1]\n  : 2\n", "f.yaml:3:5: vm: a list as a key is not allowed (keys are plain strings)"),
    ("? {a: 1}\n: 2\nname: x\n", "f.yaml:1:3: <root>: a mapping as a key is not allowed (keys are plain strings)"),
], ids=["mapping", "list", "top-level"])  # fmt: skip
def test_a_complex_key_is_named_not_printed(text, line):
    assert _problems(text) == [line]


def test_other_problems_next_to_a_complex_key_are_reported():
    assert _problems("name: x\nvm:\n  ? {a: 1}\n  : 2\n  vcpus: x\n") == [
        "f.yaml:3:5: vm: a mapping as a key is not allowed (keys are plain strings)",
        "f.yaml:5:10: vm.vcpus: expected an integer, got 'x'",
    ]


def test_a_long_key_is_cut_in_the_path_and_the_message_is_kept(tmp_path):
    f = _write(tmp_path, "k.yaml", "name: x\nvm:\n  " + "k" * 1000 + ": 1\n")
    code, _, err = _cli("validate", str(f))
    assert code == 2
    assert err == (f"{f}:3:3: vm.{'k' * 40}…: unknown key {'k' * 40!r}... (1,000 characters); "
                   "valid keys: vcpus, memory_mib, its\n")  # fmt: skip


def test_many_problems_are_capped():
    text = "name: x\ndevices:\n" + "".join(
        f"  - {{device: 99999, events: 0, at_us: [{i + 1}]}}\n" for i in range(60))
    problems = _problems(text)
    assert len(problems) == 21
    assert problems[0] == "f.yaml:3:14: devices.0.device: device 99999 out of range 0..65535"
    assert problems[19] == "f.yaml:22:14: devices.19.device: device 99999 out of range 0..65535"
    assert problems[20] == "f.yaml:23:14: <root>: … and 40 more problems (from here on, not shown)"


def test_many_duplicate_keys_are_capped():
    problems = _problems("name: x\n" + "".join(f"a: {i}\n" for i in range(30)))
    assert len(problems) == 21 and problems[-1] == (
        "f.yaml:23:1: <root>: … and 9 more problems (from here on, not shown)")


@pytest.mark.parametrize("value, message", [
    ("١-٣", "bad range '١-٣': expected 'A-B' (inclusive) or an integer"),
    ("٣", "bad range '٣': expected 'A-B' (inclusive) or an integer"),
    ("017", "bad range '017': expected 'A-B' (inclusive) or an integer"),
    ("0-" + "9" * 5000, "event of 5,000 digits out of range 0..65535"),
], ids=["arabic-range", "arabic-digit", "leading-zero", "5000-digits"])  # fmt: skip
def test_ranges_are_ascii_numbers(value, message):
    with pytest.raises(ValueError) as e:
        parse_range(value, hi=65535, what="event")
    assert str(e.value) == message
    assert parse_range("0x10-0x12", hi=65535) == (16, 17, 18)
    assert parse_range(" 3 - 5 ", hi=65535) == (3, 4, 5)


def test_a_non_ascii_device_range_is_refused_in_a_scenario():
    assert _problems('name: x\ndevices:\n  - {device: "١-٣", events: 0, at_us: [1]}\n') == [
        "f.yaml:3:14: devices.0.device: bad range '١-٣': expected 'A-B' (inclusive) or an integer"]


# ---------------------------------------------------------------- hazard space messages


def test_too_many_steps_without_a_space_names_the_scenario(tmp_path):
    steps = ("memory, redistributors, its_init, gits_cbaser, gits_iidr, gits_regs, gits_creadr, "
             "gits_cwriter, gits_baser, its_restore_tables, gits_ctlr, resume")  # fmt: skip
    f = _write(tmp_path, "ten.yaml", CLEAN.replace("migration:\n  at_us: 2000\n",
               f"migration:\n  at_us: 2000\n  destination:\n    steps: [{steps}]\n"))  # fmt: skip
    line = f.read_text().splitlines().index(f"    steps: [{steps}]") + 1
    base = resolved_dict(load_scenario(f))
    with pytest.raises(SweepError) as e:
        expand(base, {}, scenario=f)
    assert e.value.problems == [
        f"{f}:{line}:12: migration.destination.steps: 479,001,600 orders of 12 steps; 'all' is "
        "refused above 9 steps (the default space, every order): give --space with the orders listed"]  # fmt: skip


def test_an_empty_space_file_is_called_a_space_file(tmp_path):
    sp = _write(tmp_path, "sp.yaml", "")
    with pytest.raises(SweepError) as e:
        load_space_file(sp)
    assert e.value.problems == [f"{sp}:1:1: <root>: empty space file (expected a mapping with "
                                "keys such as destination_orders, leave_out, source_orders)"]  # fmt: skip


@pytest.mark.parametrize("text, lines", [
    ("destination_orders: 5\n", ["1:21: destination_orders: expected 'all' or a list of step orders, got 5"]),
    ("destination_orders: []\n", ["1:21: destination_orders: expected 'all' or at least one step order, got an empty list"]),
    ("source_orders: [[memory, 5], x]\n", ["1:26: source_orders.0.1: expected a step name, got 5",
                                           "1:30: source_orders.1: expected a step order (a list of step names), got 'x'"]),
    ("quiesce_devices: [true, true, true]\n",
     ["1:25: quiesce_devices.1: duplicate value (the same as item 0): it would run the same combinations again",
      "1:31: quiesce_devices.2: duplicate value (the same as item 0): it would run the same combinations again"]),
    (f"destination_orders: [{ORDER}, {ORDER}]\n",
     [f"1:{24 + len(ORDER)}: destination_orders.1: duplicate value (the same as item 0): it would run the same "
      "combinations again"]),
    ('kernel: [{release: "6.1"}, {release: "6.1"}]\n',
     ["1:28: kernel.1: duplicate value (the same as item 0): it would run the same combinations again"]),
], ids=["orders-type", "orders-empty", "orders-items", "dup-bool", "dup-order", "dup-kernel"])  # fmt: skip
def test_space_file_shape_problems_are_one_line_each(tmp_path, text, lines):
    sp = _write(tmp_path, "sp.yaml", text)
    with pytest.raises(SweepError) as e:
        load_space_file(sp)
    assert e.value.problems == [f"{sp}:{ln}" for ln in lines]


def test_duplicate_space_values_are_refused_before_anything_runs(tmp_path):
    sp = _write(tmp_path, "sp.yaml", f"destination_orders: [{ORDER}]\nleave_out: false\n"
                "quiesce_devices: [true, true]\n")  # fmt: skip
    out = tmp_path / "out"
    code, stdout, err = _cli("hazards", str(HAZARD), "--space", str(sp), "-o", str(out))
    assert (code, stdout) == (2, "") and not out.exists()
    assert err == (f"{sp}:3:25: quiesce_devices.1: duplicate value (the same as item 0): it "
                   "would run the same combinations again\n")  # fmt: skip
