"""`python -m s2s_tts` as the worker runs it: ready when listening, its pid on /config, a taken port named in one
line, SIGTERM a clean exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def server(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "s2s_tts", *args], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stderr(child: subprocess.Popen[str]) -> IO[str]:
    """The server's stderr (`server` always pipes it)."""
    assert child.stderr is not None
    return child.stderr


def wait_config(port: int, child: subprocess.Popen[str], timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        assert child.poll() is None, f"the server exited {child.returncode}: {stderr(child).read()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_serves_config_with_its_own_pid_and_exits_cleanly_on_sigterm() -> None:
    port = free_port()
    child = server("--engine", "espeak-double", "--port", str(port), "--max-streams", "4")
    try:
        config = wait_config(port, child)
        assert config["pid"] == child.pid
        assert config["engine"] == "espeak-double"
        assert config["max_streams"] == 4
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 0
        log = stderr(child).read()
        assert f"listening on 127.0.0.1:{port}" in log
        assert "stopped" in log
    finally:
        child.kill()
        child.wait()


def test_the_port_refuses_connections_until_the_engine_is_loaded_and_is_taken_meanwhile() -> None:
    port = free_port()
    child = server("--engine", "espeak-double", "--port", str(port), env={"S2S_TTS_DOUBLE_LOAD_MS": "1500"})
    try:
        # Loading: bound (nobody else can listen there) but not listening (a connection is refused).
        deadline = time.monotonic() + 10
        while "loading engine" not in (line := stderr(child).readline()):
            assert time.monotonic() < deadline and line, "no loading line"
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
            other.listen()
        assert wait_config(port, child)["pid"] == child.pid
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_a_port_in_use_exits_non_zero_with_one_line_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        child = server("--engine", "espeak-double", "--port", str(port))
        _, err = child.communicate(timeout=20)
    assert child.returncode == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert f"port {port}" in lines[0]
    assert "already in use" in lines[0]


def test_the_real_engine_without_a_model_folder_fails_with_one_clear_line(tmp_path: Path) -> None:
    child = server("--engine", "vibevoice", "--model-dir", str(tmp_path), "--port", str(free_port()))
    _, err = child.communicate(timeout=20)
    assert child.returncode == 1
    assert (
        err.strip().splitlines()[-1]
        == f"s2s_tts: {tmp_path} is not a model folder (no config.json); fill it with `npm run models`"
    )
