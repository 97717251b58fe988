"""The forked parallel scan: the same report as a serial scan, and fail-closed when a worker dies."""

from __future__ import annotations

import ast
import io
import os
import pickle
import signal
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwarden.checks.models import scanner
from loopwarden.checks.models.numpy_ import _canonical_header
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "corpus"))
import _container_payloads as cp

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the parallel scan forks")


def _mixed_folder(root: Path) -> Path:
    d = root / "models"
    (d / "sub").mkdir(parents=True)
    for i in range(30):
        np.save(d / f"a{i}.npy", np.arange(i + 1, dtype=np.float32))
        (d / "sub" / f"p{i}.pkl").write_bytes(cp.benign_pickle())
    (d / "evil.pkl").write_bytes(cp.evil_pickle())
    (d / "evil.pt").write_bytes(cp.torch_zip(cp.evil_pickle()))
    (d / "truncated.pt").write_bytes(cp.torch_zip(cp.benign_pickle())[:-30])
    (d / "unknown.bin").write_bytes(os.urandom(64))
    return d


def test_parallel_report_equals_serial(tmp_path: Path) -> None:
    d = _mixed_folder(tmp_path)
    serial = scan_paths([str(d)], jobs=1)
    parallel = scan_paths([str(d)], jobs=2)
    assert len(serial.targets) == 64
    assert parallel.dumps() == serial.dumps()
    verdicts = {Path(t.path).name: t.verdict for t in parallel.targets}
    assert verdicts["evil.pkl"] is Verdict.FINDINGS
    assert verdicts["evil.pt"] is Verdict.FINDINGS
    assert verdicts["truncated.pt"] is Verdict.UNVERIFIED
    assert verdicts["unknown.bin"] is Verdict.UNVERIFIED


def test_progress_counts_every_target(tmp_path: Path) -> None:
    d = _mixed_folder(tmp_path)
    seen: list[tuple[int, int]] = []
    scan_paths([str(d)], jobs=2, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (64, 64)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_a_killed_worker_leaves_its_files_unverified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that dies (out of memory, killed) must never make its files read as clean."""
    d = _mixed_folder(tmp_path)
    real_scan = scanner._scan

    def dying(target: scanner.Target, *args: object) -> object:
        if target.display.endswith("a7.npy"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_scan(target, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(scanner, "_scan", dying)
    report = scan_paths([str(d)], jobs=2)
    assert len(report.targets) == 64
    by_name = {Path(t.path).name: t for t in report.targets}
    killed = by_name["a7.npy"]
    assert killed.verdict is Verdict.UNVERIFIED
    assert "signal 9" in (killed.reason or "")
    assert report.exit_code() != 0
    # every file either has a real result or is unverified; the two worker-independent verdicts still hold
    assert by_name["evil.pkl"].verdict in (Verdict.FINDINGS, Verdict.UNVERIFIED)
    assert by_name["evil.pt"].verdict in (Verdict.FINDINGS, Verdict.UNVERIFIED)


def test_large_files_stream_instead_of_being_read_whole(tmp_path: Path) -> None:
    """Above the in-memory bound a target is streamed; detection is the same."""
    pad = os.urandom(3 << 20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data/0", pad)
        z.writestr("archive/data.pkl", cp.evil_pickle())
        z.writestr("archive/version", "3\n")
    (tmp_path / "big.pt").write_bytes(buf.getvalue())
    # a large benign pickle with a malicious one stacked after it
    (tmp_path / "big.pkl").write_bytes(pickle.dumps(pad, protocol=4) + cp.evil_pickle())
    report = scan_paths([str(tmp_path)], jobs=1)
    verdicts = {Path(t.path).name: t.verdict for t in report.targets}
    assert verdicts == {"big.pt": Verdict.FINDINGS, "big.pkl": Verdict.FINDINGS}


_HEADER_PART = st.sampled_from(
    [
        "{'descr': ",
        "'<f4'",
        "'|O'",
        "'<U3'",
        ", 'fortran_order': ",
        "True",
        "False",
        ", 'shape': ",
        "(",
        ")",
        ",",
        ", ",
        "3",
        "03",
        "0",
        "12",
        "L",
        " ",
        "}",
        "\n",
        "'",
        "[",
        "]",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_HEADER_PART, max_size=16))
def test_canonical_npy_header_agrees_with_the_literal_parser(parts: list[str]) -> None:
    """The fast path for numpy's own header form accepts only what ``ast.literal_eval`` reads the same way."""
    text = "".join(parts)
    fast = _canonical_header(text)
    if fast is None:
        return
    assert fast == ast.literal_eval(text)


def test_canonical_npy_header_matches_numpy_writer() -> None:
    for arr in (
        np.zeros(3, np.float32),
        np.zeros((2, 3), np.int64, order="F"),
        np.zeros(()),
        np.zeros((0, 5)),
    ):
        buf = io.BytesIO()
        np.save(buf, arr)
        raw = buf.getvalue()
        hlen = int.from_bytes(raw[8:10], "little")
        text = raw[10 : 10 + hlen].decode("latin1")
        assert _canonical_header(text) == ast.literal_eval(text)


def test_repeated_small_members_are_judged_under_each_allow_list(tmp_path: Path) -> None:
    """Tiny members judged once per folder must be judged again under another allow-list (or deny list)."""
    from loopwarden.checks.models.allowlist import AllowList

    tiny = b"\x80\x02ccollections\nOrderedDict\n)R."  # quiet under the defaults
    assert len(tiny) < 64
    for i in range(3):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"m{i}/extra", tiny)
        (tmp_path / f"m{i}.zip").write_bytes(buf.getvalue())
    default = scan_paths([str(tmp_path)], jobs=1)
    assert all(t.verdict is Verdict.CLEAN for t in default.targets)
    strict = AllowList.default().extended(deny=["collections.OrderedDict"])
    denied = scan_paths([str(tmp_path)], jobs=1, allow=strict)
    assert all(t.verdict is Verdict.FINDINGS for t in denied.targets)
    assert all(t.verdict is Verdict.CLEAN for t in scan_paths([str(tmp_path)], jobs=1).targets)


def test_digests_are_of_the_scanned_bytes_small_and_streamed(tmp_path: Path) -> None:
    import hashlib

    (tmp_path / "small.pkl").write_bytes(cp.benign_pickle())
    (tmp_path / "big.npy").write_bytes(b"")
    np.save(tmp_path / "big.npy", np.zeros(600_000, dtype=np.float32))  # 2.4 MB: streamed, not read whole
    for jobs in (1, 2):
        report = scan_paths([str(tmp_path)], jobs=jobs, digest=True)
        for t in report.targets:
            want = hashlib.sha256(Path(t.path).read_bytes()).hexdigest()
            assert t.digest is not None and t.digest.hex == want, t.path


def test_when_no_worker_can_be_started_the_scan_runs_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _mixed_folder(tmp_path)
    serial = scan_paths([str(d)], jobs=1).dumps()
    started: list[int] = []
    real_fork = os.fork

    def second_fork_fails() -> int:
        if started:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        pid = real_fork()
        if pid:
            started.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", second_fork_fails)
    assert scan_paths([str(d)], jobs=2).dumps() == serial
    assert started  # the first worker was started, then stopped and reaped
    with pytest.raises(ChildProcessError):
        os.waitpid(started[0], 0)


_CHATML = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] }}{% endfor %}"
_SSTI = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"


def test_template_files_go_to_one_worker_and_are_still_judged(tmp_path: Path) -> None:
    """Small template carriers are scheduled on the first worker: the report is the serial one, a malicious
    template is caught there, and one disguised under another name is caught by whichever worker gets it."""
    d = _mixed_folder(tmp_path)
    for i in range(12):
        (d / f"chat{i}.gguf").write_bytes(cp.gguf_file(_CHATML))
    (d / "evil.gguf").write_bytes(cp.gguf_file(_SSTI))
    (d / "evil.jinja").write_text(_SSTI)
    (d / "disguised.npy").write_bytes(cp.gguf_file(_SSTI))
    targets = scanner.collect_targets([str(d)])
    order, first = scanner._plan(targets, 2, False)
    names = {Path(targets[i].display).name for i in first}
    assert names and all(n.endswith((".gguf", ".jinja")) for n in names)
    assert sorted(order + first) == list(range(len(targets)))
    assert len(first) <= len(targets) // 8
    serial = scan_paths([str(d)], jobs=1)
    parallel = scan_paths([str(d)], jobs=2)
    assert parallel.dumps() == serial.dumps()
    verdicts = {Path(t.path).name: t.verdict for t in parallel.targets}
    for name in ("evil.gguf", "evil.jinja", "disguised.npy"):
        assert verdicts[name] is Verdict.FINDINGS, name
    assert verdicts["chat3.gguf"] is Verdict.CLEAN


def test_no_worker_gets_files_of_its_own_when_hashing_or_when_few(tmp_path: Path) -> None:
    big = [scanner.Target(f"m{i}.gguf", f"/x/m{i}.gguf", None, 100) for i in range(40)]
    assert scanner._plan(big, 2, True)[1] == []  # digest: time follows size, the shared queue balances it
    assert scanner._plan(big[:7], 2, False)[1] == []  # too few files to set any aside
    huge = [scanner.Target("h.gguf", "/x/h.gguf", None, 8 << 30), *big[1:]]
    order, first = scanner._plan(huge, 2, False)
    assert 0 not in first and order[0] == 0  # a large file stays in the shared queue, first of all
    assert len(first) == 40 // 8


def test_a_member_that_failed_twice_is_not_remembered_as_quiet(tmp_path: Path) -> None:
    """Regression: the local header gives a second length for a deflated member, so the same inflated bytes
    are read twice and fail twice with one (deduplicated) reason. That must not look like a quiet analysis:
    the next archive with the member must still be unverified."""
    broken_npy = b"\x93NUMPY\x01\x00\x10\x00{'shape': (1,)}\n"
    archive = cp.zip_of({"x.npy": broken_npy, "y.txt": b"text"})

    def longer_local(b: bytearray, off: int) -> None:
        (csize,) = struct.unpack_from("<I", b, off + 18)
        struct.pack_into("<I", b, off + 18, csize + 8)

    archive = cp.patch_member(archive, "x.npy", local=longer_local)
    for i in range(3):
        (tmp_path / f"m{i}.zip").write_bytes(archive)
    report = scan_paths([str(tmp_path)], jobs=1)
    reasons = [t.reason or "" for t in report.targets]
    assert len(reasons) == 3
    assert all("npy header" in r for r in reasons), reasons
