#!/usr/bin/env python3
"""Drives a real headless Chromium (Debian's chromium and chromium-driver,
over the W3C WebDriver protocol) through the status page of a running job:
signs in with the API token, opens the job from the list, watches the node
rows change as the job moves (without reloading the page), reads the wait's
countdown twice during a soak, takes a screenshot, aborts the job from the
page (the box ticked, then the button), waits for the page to show the job
aborted and takes a second screenshot.

Prints one JSON report on stdout; exits 1 with the reason on stderr when a
step does not happen in time. The test that starts the bed judges the report.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


class Failure(Exception):
    pass


class WebDriver:
    """The few WebDriver commands the page needs, over chromedriver's HTTP."""

    def __init__(self, chromedriver, chromium, profile):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(os.path.join(profile, "chromedriver.log"), "w")
        self.process = subprocess.Popen(
            [chromedriver, f"--port={port}"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            try:
                if self.call("GET", "/status").get("ready"):
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.time() > deadline:
                raise Failure("chromedriver did not answer within 20 s")
            time.sleep(0.1)
        options = {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1000,1500", f"--user-data-dir={profile}/chromium", "--no-first-run",
            ],
        }
        capabilities = {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options, "goog:loggingPrefs": {"browser": "ALL"},
        }}
        self.session = self.call("POST", "/session", {"capabilities": capabilities})["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response).get("value")
        except urllib.error.HTTPError as error:
            raise Failure(f"WebDriver {method} {path}: {error.code} {error.read()[:400]!r}") from None

    def command(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.command("POST", "/url", {"url": url})

    def script(self, source, *args):
        return self.command("POST", "/execute/sync", {"script": source, "args": list(args)})

    def find(self, css):
        found = self.command("POST", "/elements", {"using": "css selector", "value": css})
        if not found:
            raise Failure(f"no element matches {css!r} on {self.script('return location.href')}")
        return next(iter(found[0].values()))

    def click(self, css):
        self.command("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text):
        self.command("POST", f"/element/{self.find(css)}/value", {"text": text})

    def screenshot(self, path):
        with open(path, "wb") as file:
            file.write(base64.b64decode(self.command("GET", "/screenshot")))

    def console(self):
        """The browser's console messages so far (chromedriver's log endpoint)."""
        return self.command("POST", "/se/log", {"type": "browser"}) or []

    def close(self):
        try:
            self.command("DELETE", "")
        except Failure:
            pass
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


# What the page shows, read in the browser.
READ_PAGE = """
const rows = {};
const planned = {};
for (const row of document.querySelectorAll("section[aria-labelledby=nodes-title] tbody tr")) {
  const name = row.cells[0].textContent.trim();
  rows[name] = row.cells[3].firstChild.textContent.trim();
  planned[name] = [row.cells[1].textContent.trim(), row.cells[2].textContent.trim()];
}
const countdown = document.querySelector(".countdown");
const state = document.querySelector("p.state .badge");
return {
  marker: window.k8supMarker || null,
  state: state ? state.textContent.trim() : null,
  rows: rows,
  planned: planned,
  wait: (document.querySelector("#wait-title") || {}).textContent || null,
  countdown: countdown ? countdown.textContent.trim() : null,
  deadline: countdown ? Number(countdown.dataset.deadline) : null,
  now: Date.now() / 1000,
  events: document.querySelectorAll("#events li").length,
  abort: document.querySelector("button.abort") !== null,
  resume: document.querySelector("button.resume") !== null,
};
"""


def seconds(countdown):
    """'12 s' or '1 min 5 s' as seconds."""
    parts = countdown.split()
    total = 0
    for value, unit in zip(parts[0::2], parts[1::2]):
        total += int(value) * {"s": 1, "min": 60, "h": 3600}[unit]
    return total


def until(what, timeout, probe, interval=0.1):
    deadline = time.time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.time() > deadline:
            raise Failure(f"{what}: not within {timeout} s")
        time.sleep(interval)


def run(arguments, driver):
    report = {}
    with open(arguments.token_file) as file:
        token = file.read().strip()
    # Signed out, the job's page is not shown; the sign-in form is.
    driver.go(f"{arguments.url}/")
    until("the sign-in form", 10, lambda: driver.script("return document.querySelector('#token') !== null"))
    driver.type("#token", token)
    driver.click("form.login button[type=submit]")
    until("the job list after signing in", 10,
          lambda: driver.script(f"return document.querySelector('a[href=\"/jobs/{arguments.job}\"]') !== null"))
    report["signed_in_url"] = driver.script("return location.pathname")
    driver.click(f"a[href=\"/jobs/{arguments.job}\"]")
    until("the job's page", 10, lambda: driver.script("return document.getElementById('live') !== null"))
    # A reload would clear this: the page below moves by itself.
    driver.script("window.k8supMarker = 'no reload';")

    first = driver.script(READ_PAGE)
    report["first"] = first
    seen = {name: [state] for name, state in first["rows"].items()}

    def observe():
        page = driver.script(READ_PAGE)
        if page["marker"] != "no reload":
            raise Failure("the page reloaded itself")
        for name, state in page["rows"].items():
            if seen.setdefault(name, [state])[-1] != state:
                seen[name].append(state)
        return page

    # A soak's countdown, read twice over two seconds apart (it ticks each second).
    def countdown_runs():
        page = observe()
        if not page["countdown"] or "soak" not in (page["wait"] or "") or seconds(page["countdown"]) < 4:
            return None
        before = page["countdown"]
        time.sleep(2.2)
        after = observe()
        if after["countdown"] and "soak" in (after["wait"] or ""):
            return {"wait": page["wait"].strip(), "before": before, "after": after["countdown"],
                    "read": [[page["now"], page["deadline"]], [after["now"], after["deadline"]]]}
        return None

    report["countdown"] = until("a soak with a countdown", arguments.timeout, countdown_runs)
    # Then a worker's row moves past its soak: succeeded.
    def a_worker_upgraded():
        observe()
        return any(name.startswith("worker") and states[-1] == "succeeded" for name, states in seen.items())

    until("a worker's row showing it succeeded", arguments.timeout, a_worker_upgraded)
    running = observe()
    report["running"] = running
    driver.screenshot(os.path.join(arguments.out, "running.png"))

    # Abort from the page: tick the box, then the button. The page's live part
    # is fetched again whenever the job moves; a ticked box must survive that.
    driver.click("#confirm-abort")
    driver.script("document.getElementById('live').dataset.old = 'yes'; refresh();")
    until("the page's live part fetched again", 10,
          lambda: driver.script("return document.getElementById('live').dataset.old === undefined"))
    report["box_still_ticked"] = driver.script("return document.getElementById('confirm-abort').checked")
    if not report["box_still_ticked"]:
        raise Failure("the abort form's ticked box was cleared when the page's live part was fetched again")
    driver.click("button.abort")
    def aborted():
        page = driver.script(READ_PAGE)
        return page if page["state"] == "aborted" and page["resume"] else None

    finished = until("the page showing the job aborted", arguments.timeout, aborted, interval=0.2)
    report["finished"] = finished
    report["finished_url"] = driver.script("return location.pathname")
    driver.screenshot(os.path.join(arguments.out, "finished.png"))
    report["node_states_seen"] = seen
    report["console"] = [entry.get("message", "") for entry in driver.console()
                         if entry.get("level") in ("SEVERE", "WARNING")]
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the orchestrator, http://127.0.0.1:PORT")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--job", type=int, default=1)
    parser.add_argument("--out", required=True, help="folder for the screenshots")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    parser.add_argument("--chromium", default="/usr/lib/chromium/chromium")
    arguments = parser.parse_args()
    os.makedirs(arguments.out, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="k8sup-browser-")
    driver = None
    try:
        driver = WebDriver(arguments.chromedriver, arguments.chromium, profile)
        report = run(arguments, driver)
        text = json.dumps(report, indent=2, sort_keys=True)
        with open(os.path.join(arguments.out, "report.json"), "w") as file:
            file.write(text + "\n")
        print(text)
    except Failure as failure:
        if driver:
            try:
                driver.screenshot(os.path.join(arguments.out, "failure.png"))
            except Failure:
                pass
        print(f"status_page_browser: {failure}", file=sys.stderr)
        sys.exit(1)
    finally:
        if driver:
            driver.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
