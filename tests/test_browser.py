"""The notebooks work interactively: JupyterLab in a real browser, every cell run from the UI.

Papermill proves that a notebook runs headless; this proves what a learner sees. A
JupyterLab server starts on a free loopback port, Chromium (Debian's ``chromium``, driven by
Playwright) opens a quick copy of each notebook, runs all cells from the Run menu and waits
for the kernel to finish, then checks the page: no error or stderr output, progress bars
rendered as widgets, figures rendered as images, Mermaid diagrams drawn. The kernel is shut
down and nothing it started may outlive it. Screenshots go to ``BROWSER_ARTIFACTS``
(default ``test-artifacts/browser``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from helpers import require_module, skip_unless_ci

from mlinfra_kit.runner import notebooks_dir
from mlinfra_kit.services import child_process, free_port, wait_until

pytestmark = pytest.mark.browser

#: One notebook that only computes, one that starts servers (real processes on loopback):
#: the two quickest that do (about 15 and 25 s in quick mode; papermill runs every notebook).
NOTEBOOKS = ("03_learning", "06_deployment")
RUN_TIMEOUT_S = 420
#: How far the notebook has run: code cells with an execution count, code cells, error or
#: stderr outputs (JupyterLab renders a traceback as stderr; after one, the rest never runs).
PROGRESS_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
  const done = prompts.filter(p => /^\\[\\d+\\]:$/.test(p.textContent.trim())).length;
  const errors = document.querySelectorAll(
    '[data-mime-type="application/vnd.jupyter.error"],[data-mime-type="application/vnd.jupyter.stderr"]');
  return [done, prompts.length, errors.length];
}"""
#: The status bar names a started kernel and says it is idle (the toolbar's indicator
#: already says "idle" while no kernel is connected).
KERNEL_IDLE_JS = """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
  .map(e => e.textContent.trim())
  .some(t => t.endsWith('| Idle') && !t.startsWith('No Kernel'))"""
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", "test-artifacts/browser"))


@pytest.fixture(scope="module")
def chromium() -> str:
    names = ("chromium", "chromium-browser", "google-chrome")  # Debian's; GitHub runners' Chrome
    path = next((p for p in map(shutil.which, names) if p), None)
    if not path:
        skip_unless_ci("chromium is not installed: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a folder of quick copies of the notebooks."""
    require_module("jupyterlab", 'pip install "mlinfra-kit[lab]"')
    papermill = require_module("papermill", "pip install papermill")
    root = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:  # QUICK=True written in, as `mlinfra run --quick` injects it
        papermill.execute_notebook(
            str(notebooks_dir() / f"{name}.ipynb"),
            str(root / f"{name}.ipynb"),
            parameters={"QUICK": True, "RESULTS_DIR": str(root / "results")},
            prepare_only=True,
            progress_bar=False,
        )
    # Every cell in the page (JupyterLab 4 renders only those in view by default, and a
    # check of outputs must see them all), the notebook's kernel started without asking,
    # and no news prompt over the screenshots.
    settings = tmp_path_factory.mktemp("settings")
    tracker = {"windowingMode": "none", "autoStartDefaultKernel": True}
    for plugin, value in (("notebook-extension/tracker", tracker),
                          ("apputils-extension/notification", {"fetchNews": "false"})):  # fmt: skip
        path = settings / f"@jupyterlab/{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = free_port(), "mlinfra-browser-test"
    url = f"http://127.0.0.1:{port}"
    import httpx

    def up() -> bool:
        return httpx.get(f"{url}/api/status?token={token}", timeout=2).status_code == 200

    args = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=", "--LabApp.extension_manager=readonly"]  # fmt: skip
    env = {"JUPYTERLAB_SETTINGS_DIR": str(settings)}
    with child_process(args, f"JupyterLab on {url}", up, timeout_s=90, env=env) as server:
        yield url, token, server.pid


def descendants(pid: int) -> set[int]:
    import psutil

    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_all_cells_in_jupyterlab(name, lab, chromium):
    import httpx
    import psutil

    sync_api = require_module("playwright.sync_api", 'pip install "mlinfra-kit[dev]"')
    url, token, server_pid = lab
    headers = {"Authorization": f"token {token}"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seen: set[int] = set()  # every process the kernel started while the notebook ran
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            # A workspace of its own, reset: the notebook a previous test left open in the
            # default workspace is not reopened (with a kernel of its own) beside this one.
            page.goto(f"{url}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
            page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:  # one look at the page every few seconds: [cells run, cells, errors]
                time.sleep(3)
                seen |= descendants(server_pid)
                done, code_cells, errors = page.evaluate(PROGRESS_JS)
                if done == code_cells or errors or time.monotonic() > deadline:
                    break
            page.locator(".jp-Notebook .jp-Cell").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"{name}-top.png"))
            figures = page.locator(".jp-OutputArea-output img")
            widgets = page.locator(".jp-OutputArea-output .widget-hprogress")
            diagrams = page.locator(".jp-MarkdownCell .jp-RenderedMermaid img")
            for kind, found in (("diagram", diagrams), ("figure", figures)):
                if found.count():
                    found.first.scroll_into_view_if_needed()
                    page.screenshot(path=str(ARTIFACTS / f"{name}-{kind}.png"))
            page.locator(".jp-Notebook .jp-Cell").last.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"{name}-end.png"))

            error_text = page.locator(
                '[data-mime-type="application/vnd.jupyter.error"],'
                '[data-mime-type="application/vnd.jupyter.stderr"]'
            ).all_text_contents()
            assert not error_text, f"{name} shows errors or stderr: {error_text[0][:600]}"
            assert done == code_cells, f"{name}: {done} of {code_cells} cells ran"
            assert figures.count() >= 1, f"{name} rendered no figure"
            assert diagrams.count() >= 1, f"{name} rendered no Mermaid diagram"
            assert widgets.count() >= 1, f"{name} rendered no progress bar as a widget"
        finally:
            browser.close()
    # Shut the kernel down as JupyterLab's "Shut Down All Kernels" does, then nothing the
    # kernel started may be left.
    for kernel in httpx.get(f"{url}/api/kernels", headers=headers).json():
        httpx.delete(f"{url}/api/kernels/{kernel['id']}", headers=headers)

    def all_gone() -> bool:
        return not [pid for pid in seen if psutil.pid_exists(pid)]

    try:
        wait_until(all_gone, 20, "the kernel's processes to exit")
    except TimeoutError:
        left = [
            " ".join(psutil.Process(pid).cmdline())[:120] for pid in seen if psutil.pid_exists(pid)
        ]
        pytest.fail(f"{name} left processes behind after its kernel shut down: {left}")
