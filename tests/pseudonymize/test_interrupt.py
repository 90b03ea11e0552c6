"""One Ctrl-C stops ``fhirlake pseudonymize`` at once: no traceback from the workers, no process left."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from fhirlake.synth import generate

pytestmark = pytest.mark.slow


def test_ctrl_c_stops_the_workers_and_says_one_line(tmp_path: Path) -> None:
    generate(tmp_path / "raw", patients=40, seed=3, workers=1)
    out = tmp_path / "out"
    env = {**os.environ, "FHIRLAKE_PSEUDONYM_KEY": secrets.token_hex(32)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fhirlake", "pseudonymize", str(tmp_path / "raw"), str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a terminal's Ctrl-C, not a job's SIG_IGN
    deadline = time.monotonic() + 120
    while not (out / "quarantine.jsonl").exists():  # the workers are pseudonymising
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    workers = psutil.Process(process.pid).children()
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert time.monotonic() - started < 10  # the chunks in flight are not waited for
    assert [line for line in err.splitlines() if line.strip()] == ["fhirlake: aborted"]
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
