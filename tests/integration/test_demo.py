"""``streamrec demo`` end to end on the embedded broker: it finishes by itself
with a summary, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from .service_process import streamrec_command

pytestmark = [pytest.mark.kafka, pytest.mark.network, pytest.mark.slow]


def test_demo_runs_to_a_summary_by_itself(embedded_broker):
    # embedded_broker only checks the embedded broker can run here; the demo starts its own.
    done = subprocess.run(
        [*streamrec_command(), "demo", "--limit", "5000", "--rate", "2500", "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "streamrec demo summary" in done.stdout
    processed = re.search(r"events processed\s+([\d,]+)", done.stdout)
    assert processed and int(processed.group(1).replace(",", "")) == 5000
    hit_rate = re.search(r"overall hit rate @10\s+([\d.]+)", done.stdout)
    assert hit_rate and float(hit_rate.group(1)) > 0.0


def test_ctrl_c_stops_the_demo_cleanly(embedded_broker):
    process = subprocess.Popen(
        [*streamrec_command(), "demo", "--rate", "500", "--metrics-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while "replaying" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "replaying" in seen, seen
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "streamrec demo summary" in stdout
