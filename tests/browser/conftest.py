"""A real JupyterLab server and a real headless Chromium, for testing lessons as a learner sees them.

Why a browser at all: nbval proves the cells run, but not that a learner *sees*
anything. Bokeh plots are drawn by JavaScript in the page, and the check
verdicts are HTML: only a browser shows whether they appear.

Isolation, so the test leaves nothing behind:
- JupyterLab listens on a free 127.0.0.1 port with a fresh random token;
  its config, data, runtime, workspaces and settings dirs (and IPython's) are
  in a temporary folder, so nothing is written into the user's home config.
- Autosave is off in those settings: the notebook is opened from the repo and
  must not be saved back with outputs (the test also checks its bytes).
- Chromium is Debian's /usr/bin/chromium (Playwright's own browser download is
  never used), with a new empty profile dir, and only loopback host names resolve.
- At the end the kernel is shut down through the REST API, the server is
  terminated (killed after a timeout), and no Ray or Jupyter process that the
  test started may remain (they are found by an environment variable they
  inherit). Other people's Ray clusters are never looked at or touched.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("RAYCOURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Only loopback resolves: the page cannot reach (or send traffic to) the internet, so a lesson
    # that needs it fails here the way it fails for an offline learner, and the failed request is named.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
SERVER_START_TIMEOUT = 90  # seconds; the machine is shared and loaded
SERVER_STOP_TIMEOUT = 20
PROCESS_EXIT_TIMEOUT = 60  # Ray's raylet and workers need a few seconds to go
MARKER_VARIABLE = "RAYCOURSE_BROWSER_TEST"  # set in the server's environment, inherited by all it starts

# JupyterLab user settings written into the temporary settings dir.
LAB_SETTINGS = {
    # Never save the repo's notebook (it would commit outputs into notebooks/).
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # No "fetch news?" toast over the screenshot, and no request to the internet.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # Every cell in the page: JupyterLab 4 renders only the cells in view by default, so the prompts and
    # verdicts of the others were missing from the DOM ("Run All did not reach the end", empty verdicts).
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def free_port() -> int:
    """A port that was free a moment ago: bind port 0 on loopback and read what the OS chose."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: where it is, how to authenticate, and the process to stop."""

    port: int
    token: str
    process: subprocess.Popen
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """A browser URL with the token in the query string (JupyterLab turns it into a cookie)."""
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def api(self, method: str, path: str, timeout: float = 30) -> object:
        """Call the Jupyter REST API with the token header; return the decoded JSON (or None)."""
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _wait_until_up(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {server.process.returncode} before it served:\n{server.log_tail()}")
        try:
            server.api("GET", "/api/status", timeout=5)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer on port {server.port} within {SERVER_START_TIMEOUT} s:\n{server.log_tail()}")


def _shutdown_kernels(server: LabServer) -> list[str]:
    """DELETE every kernel of this (private) server, so each notebook's Ray goes away with it."""
    problems = []
    try:
        kernels = server.api("GET", "/api/kernels")
    except (urllib.error.URLError, OSError) as error:
        return [f"could not list kernels: {error}"]
    for kernel in kernels or []:
        try:
            server.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=60)
        except (urllib.error.URLError, OSError) as error:
            problems.append(f"could not shut down kernel {kernel['id']}: {error}")
    return problems


def _stop_server(server: LabServer) -> None:
    """Terminate the server we started (SIGTERM, then SIGKILL after a timeout)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)


def processes_marked(marker: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment carries ``marker``.

    The server gets a unique environment variable; the kernel, the Ray it starts
    and Ray's workers inherit it. So this finds exactly the processes this test
    started, never another user's Ray cluster running beside it.
    """
    found = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.status() == psutil.STATUS_ZOMBIE or process.environ().get(MARKER_VARIABLE) != marker:
                continue
            found[process.pid] = " ".join(process.info["cmdline"] or [])[:160]
        except psutil.Error:
            continue
    return found


@pytest.fixture
def chromium_path() -> Path:
    """Debian's Chromium; fail (never skip) with the fix when it is missing."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash .ci/install-browser` (it runs `apt-get install chromium`)")
    return CHROMIUM


def start_lab(tmp_path: Path, env_changes: dict[str, str | None] | None = None) -> tuple[LabServer, str]:
    """A private JupyterLab on a free port, rooted at the repo; returns it and its process marker.

    ``env_changes``: variables to set for the server (and the kernels it starts), or to remove (``None``).
    """
    marker = secrets.token_hex(8)
    home = tmp_path / "jupyter"
    dirs = {name: home / name for name in ["config", "data", "runtime", "ipython", "workspaces", "settings"]}
    for folder in dirs.values():
        folder.mkdir(parents=True)
    for plugin, values in LAB_SETTINGS.items():
        target = dirs["settings"] / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))

    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)  # a notebook starts (and stops) its own Ray unless told to join one
    env.update({
        "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "IPYTHONDIR": str(dirs["ipython"]),
        "RAY_AUTH_MODE": env.get("RAY_AUTH_MODE", "token"), "RAY_USAGE_STATS_ENABLED": "0",
        MARKER_VARIABLE: marker,
        # No Ray dashboard by default (override with COURSE_DASHBOARD=1): this test is about what the
        # page shows, and the dashboard only adds processes that make ray.init slower on a loaded machine.
        "COURSE_DASHBOARD": env.get("COURSE_DASHBOARD", "0"),
    })
    for name, value in (env_changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    port, token = free_port(), secrets.token_hex(24)
    log_path = tmp_path / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--ServerApp.root_dir={ROOT}", f"--IdentityProvider.token={token}",
        f"--LabApp.workspaces_dir={dirs['workspaces']}", f"--LabApp.user_settings_dir={dirs['settings']}",
    ]
    if os.geteuid() == 0:  # CI and these machines run as root; JupyterLab refuses that without this flag
        command.append("--allow-root")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(port, token, process, log_path)
    _wait_until_up(server)
    return server, marker


def stop_lab(server: LabServer, marker: str) -> list[str]:
    """Shut its kernels down, stop the server, and make sure nothing it started is left; return problems."""
    problems = _shutdown_kernels(server) if server.process.poll() is None else []
    _stop_server(server)
    deadline = time.monotonic() + PROCESS_EXIT_TIMEOUT
    while (left := processes_marked(marker)) and time.monotonic() < deadline:
        time.sleep(1)
    if left:
        for pid in left:  # ours by construction: end them so nothing leaks, then fail
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        problems.append(f"processes left behind {PROCESS_EXIT_TIMEOUT} s after the server stopped (now killed): "
                        + "; ".join(f"{pid}: {cmd}" for pid, cmd in sorted(left.items())))
    return problems


@pytest.fixture
def lab_server(tmp_path: Path) -> Iterator[LabServer]:
    """A private JupyterLab on a free port, rooted at the repo, cleaned up completely afterwards."""
    server, marker = start_lab(tmp_path)
    try:
        yield server
    finally:
        problems = stop_lab(server, marker)
        if problems:
            pytest.fail("; ".join(problems) + f"\nserver log:\n{server.log_tail()}")


@pytest.fixture
def page(chromium_path: Path, tmp_path: Path):
    """A page in headless Chromium with a new empty profile; closed at the end."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    with sync_playwright() as playwright:
        try:
            # Playwright insists on launch_persistent_context for an explicit --user-data-dir.
            context = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000})
        except Exception as error:  # noqa: BLE001 - say what failed, whatever Playwright raised
            pytest.fail(f"could not launch {chromium_path} with Playwright: {error}")
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
