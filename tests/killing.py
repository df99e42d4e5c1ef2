"""kill -9 a driver process at the point it announces (shared by the fault tests).

A driver prints "HANG <where>" and sleeps when it reaches the stop point it was given;
`run_and_kill` kills it there with SIGKILL (no cleanup handler runs, as when a node
dies or the OOM killer strikes), or, for a run without a stop point, waits for "DONE".
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path


def run_and_kill(command: Sequence[str], cwd: Path, env: dict, expect_hang: bool,
                 timeout_s: float = 300.0) -> str:
    """Runs `command`; returns its "HANG ..." line (after killing it) or "DONE".

    Raises AssertionError with the output's tail when the process ends otherwise.
    """
    process = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(timeout_s, process.kill)
    watchdog.start()
    output: list[str] = []
    try:
        for line in process.stdout:
            output.append(line)
            if line.startswith("HANG "):
                os.kill(process.pid, signal.SIGKILL)
                break
        process.wait()
    finally:
        watchdog.cancel()
        process.stdout.close()
    last = output[-1].strip() if output else ""
    if expect_hang:
        assert process.returncode == -signal.SIGKILL and last.startswith("HANG "), "".join(output)[-3000:]
    else:
        assert process.returncode == 0 and last == "DONE", "".join(output)[-3000:]
    return last
