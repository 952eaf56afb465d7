"""``gicsim sweep --dask`` against a real ``dask scheduler`` and ``dask worker``, each started
here as its own process (plain TCP, and TLS with certificates made by ``openssl``); an
unreachable or malformed address is one line, exit 3 or 2, within a bounded time."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

distributed = pytest.importorskip("dask.distributed")

from gicsim.cli import main  # noqa: E402
from gicsim.sweep import execute, load_sweep  # noqa: E402

ROOT = Path(__file__).parent.parent
STABLE = ["run", "key", "seed", "status", "lost", "spurious", "misrouted", "ebusy", "accepted",
          "delivered", "downtime_ns", "state_match", "events", "trace_digest"]  # fmt: skip
READY_S = 90  # a loaded CI machine starts a scheduler in ~2 s, a worker in ~3 s


def _start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    # its own session: the worker's children (if any) go with it when we kill the group
    return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=cwd, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _stop(p: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)


def _wait_for_file(f: Path, p: subprocess.Popen[bytes], log: Path) -> dict:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if p.poll() is not None:
            pytest.fail(f"dask scheduler exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return json.loads(f.read_text())
        time.sleep(0.05)
    pytest.fail(f"dask scheduler not ready in {READY_S} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def cluster(tmp: Path, tls: list[str] | None = None, security: object = None) -> Iterator[str]:
    """A scheduler and one worker (2 threads) as separate processes; yields the address."""
    tmp.mkdir(parents=True, exist_ok=True)
    sfile = tmp / "scheduler.json"
    procs = []
    try:
        extra = ["--protocol", "tls", *tls] if tls else []
        procs.append(_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                             "--scheduler-file", str(sfile), *extra], tmp, tmp / "scheduler.log"))  # fmt: skip
        address = _wait_for_file(sfile, procs[0], tmp / "scheduler.log")["address"]
        procs.append(_start(["worker", "--scheduler-file", str(sfile), "--nthreads", "2", "--no-nanny",
                             "--no-dashboard", *(tls or [])], tmp, tmp / "worker.log"))  # fmt: skip
        kw = {"security": security} if security is not None else {}
        with distributed.Client(address, timeout=READY_S, set_as_default=False, **kw) as c:
            c.wait_for_workers(1, timeout=READY_S)
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)


def write_sweep(tmp_path: Path) -> Path:
    f = tmp_path / "s.yaml"
    f.write_text(f"base: {ROOT / 'scenarios' / 'straggler-retry.yaml'}\nseed: 7\n"
                 "grid:\n  migration.source.stragglers.0.exit_us: [50, 400]\n"
                 "  migration.source.on_ebusy: [abort, continue]\n")  # fmt: skip
    return f


def sweep_cmd(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gicsim", "sweep", *args, "--no-progress"], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def stable(df: pd.DataFrame) -> pd.DataFrame:
    return df[STABLE].sort_values("run").reset_index(drop=True)


def test_sweep_on_a_real_scheduler_and_worker(tmp_path):
    f = write_sweep(tmp_path)
    local, _ = execute(load_sweep(f), tmp_path / "local", None, progress=False)
    out = tmp_path / "out"
    with cluster(tmp_path / "cluster") as address:
        r = sweep_cmd(str(f), "--dask", address, "-o", str(out))
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        assert "4 runs (4 run now, 0 already done)" in r.stdout
        again = sweep_cmd(str(f), "--dask", address, "-o", str(out))
        assert again.returncode == 0 and "(0 run now, 4 already done)" in again.stdout, again.stderr
    df = pd.read_parquet(out / "summaries.parquet")
    assert len(df) == 4 and (out / "report.md").read_text().startswith("# Sweep: 4 runs")
    pd.testing.assert_frame_equal(stable(df), stable(pd.DataFrame(local)))


def _openssl_certs(d: Path) -> tuple[Path, Path, Path]:
    d.mkdir()
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "key.pem", "req.csr", "cert.pem"))

    def ossl(*a: str) -> None:
        subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=60)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
         "-days", "2", "-subj", "/CN=gicsim-test-ca")  # fmt: skip
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
         "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_sweep_over_tls(tmp_path):
    ca, cert, key = _openssl_certs(tmp_path / "certs")
    tls = ["--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)]
    sec = distributed.security.Security(tls_ca_file=str(ca), tls_client_cert=str(cert),
                                        tls_client_key=str(key), require_encryption=True)  # fmt: skip
    f = write_sweep(tmp_path)
    with cluster(tmp_path / "cluster", tls=tls, security=sec) as address:
        assert address.startswith("tls://")
        r = sweep_cmd(str(f), "--dask", address, "--dask-tls-ca", str(ca), "--dask-tls-cert", str(cert),
                      "--dask-tls-key", str(key), "-o", str(tmp_path / "out"))  # fmt: skip
        assert r.returncode == 0, r.stderr
        # no certificates for a tls:// address: refused before connecting
        nocert = CliRunner().invoke(main, ["sweep", str(f), "--dask", address, "-o", str(tmp_path / "o2")])
        assert nocert.exit_code == 2, nocert.output
        assert nocert.output.strip().splitlines() == [
            "gicsim: a tls:// address needs --dask-tls-ca, --dask-tls-cert and --dask-tls-key "
            "(or distributed.comm.tls.* in a Dask config)"]  # fmt: skip
        # plain TCP to the TLS scheduler does not get in: one line, exit 3
        plain = sweep_cmd(str(f), "--dask", address.replace("tls://", "tcp://"), "--dask-timeout", "2",
                          "-o", str(tmp_path / "o3"))  # fmt: skip
        assert plain.returncode == 3, plain.stderr
        assert len(plain.stderr.strip().splitlines()) == 1 and "Traceback" not in plain.stderr
        # files that are not certificates: one line, exit 3
        bad = sweep_cmd(str(f), "--dask", address, "--dask-tls-ca", str(f), "--dask-tls-cert", str(f),
                        "--dask-tls-key", str(f), "--dask-timeout", "2", "-o", str(tmp_path / "o4"))  # fmt: skip
        assert bad.returncode == 3, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and ": TLS: " in bad.stderr
    assert len(pd.read_parquet(tmp_path / "out" / "summaries.parquet")) == 4


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connecting is refused


def test_unreachable_scheduler_is_one_line_exit_3_in_bounded_time(tmp_path):
    f = write_sweep(tmp_path)
    t = time.monotonic()
    r = sweep_cmd(str(f), "--dask", f"tcp://127.0.0.1:{_refused_port()}", "--dask-timeout", "1",
                  "-o", str(tmp_path / "out"), timeout=120)  # fmt: skip
    assert r.returncode == 3, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("gicsim: cannot reach the Dask scheduler at tcp://127.0.0.1:") and "within 1 s" in line
    assert time.monotonic() - t < 60  # before: 30 s of retries, then a traceback
    assert not (tmp_path / "out" / "summaries.parquet").exists()


@pytest.mark.parametrize("address", ["not an address", "tcp://", "tcp://host:port", "foo://h:1",
                                     "tcp://127.0.0.1:99999", "h:0", "tcp://a b:1", "\x1b[2Jx:1"])  # fmt: skip
def test_malformed_address_is_one_line_exit_2(tmp_path, address):
    r = CliRunner().invoke(main, ["sweep", str(write_sweep(tmp_path)), "--dask", address, "--no-progress"])
    assert r.exit_code == 2, r.output
    (line,) = r.output.strip().splitlines()
    assert line.startswith("gicsim: --dask: ") and "\x1b" not in line


@pytest.mark.parametrize("args, msg", [
    (["--dask-tls-ca", "x.pem"], "--dask-tls-* need --dask ADDRESS"),
    (["--dask", "tcp://127.0.0.1:1", "--dask-tls-ca", "x.pem", "--dask-tls-cert", "x", "--dask-tls-key", "x"],
     "TLS needs a tls:// scheduler address"),
    (["--dask", "tls://127.0.0.1:1", "--dask-tls-ca", "x.pem"], "go together"),
    (["--dask", "tls://127.0.0.1:1", "--dask-tls-ca", "no.pem", "--dask-tls-cert", "no.pem",
      "--dask-tls-key", "no.pem"], "--dask-tls-ca: no.pem: no such file"),
    (["--dask", "tcp://127.0.0.1:1", "-j", "2"], "exclude each other"),
    (["--dask", "tcp://127.0.0.1:1", "--dask-timeout", "0"], "--dask-timeout"),
    (["--dask", "tcp://127.0.0.1:1", "--dask-timeout", "nan"], "--dask-timeout"),
])  # fmt: skip
def test_bad_dask_options_exit_2(tmp_path, args, msg):
    r = CliRunner().invoke(main, ["sweep", str(write_sweep(tmp_path)), *args, "--no-progress"])
    assert r.exit_code == 2, r.output
    (line,) = r.output.strip().splitlines()
    assert msg in line


def test_help_says_who_must_be_trusted_and_how_to_use_tls():
    r = CliRunner().invoke(main, ["sweep", "--help"])
    text = " ".join(r.output.split())
    assert "pickles" in text and "trust" in text
    for opt in ("tls://", "--dask-tls-ca", "--dask-tls-cert", "--dask-tls-key", "distributed.comm.tls"):
        assert opt in text
