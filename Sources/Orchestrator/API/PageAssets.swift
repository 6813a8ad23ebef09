/// The status page's stylesheet and script, kept in the binary: no build
/// step, nothing downloaded. Served at `/ui/page.css`, `/ui/page.js` and
/// `/ui/icon.svg` (the tab's icon; without one a browser asks for
/// `/favicon.ico` and logs the 404).
enum PageAssets {
    static let icon = #"""
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">
        <rect width="16" height="16" rx="3" fill="#0550ae"/>
        <path d="M8 3 L13 9 H10 V13 H6 V9 H3 Z" fill="#ffffff"/></svg>
        """#

    static let css = #"""
        :root {
          --bg: #ffffff;
          --fg: #1b1f24;
          --muted: #57606a;
          --link: #0550ae;
          --line: #d0d7de;
          --panel-bg: #f6f8fa;
          --ok-fg: #116329;
          --ok-bg: #dafbe1;
          --bad-fg: #a40e26;
          --bad-bg: #ffebe9;
          --run-fg: #0a3069;
          --run-bg: #ddf4ff;
          --wait-fg: #7d4e00;
          --wait-bg: #fff8c5;
          --idle-fg: #424a53;
          --idle-bg: #eaeef2;
        }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
        a { color: var(--link); }
        a:focus, button:focus, input:focus { outline: 3px solid var(--link); outline-offset: 2px; }
        .skip { position: absolute; left: -999px; }
        .skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; }
        header { border-bottom: 1px solid var(--line); background: var(--panel-bg); }
        nav { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; padding: 8px 16px; }
        nav .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
        main { max-width: 1100px; margin: 0 auto; padding: 16px; }
        footer { color: var(--muted); padding: 16px; text-align: center; font-size: 14px; }
        h1 { font-size: 1.5rem; margin: 0.5rem 0 1rem; overflow-wrap: anywhere; }
        h2 { font-size: 1.15rem; margin: 1.5rem 0 0.5rem; }
        .scroll { overflow-x: auto; }
        table { border-collapse: collapse; width: 100%; }
        caption { text-align: left; color: var(--muted); padding-bottom: 4px; }
        th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left; vertical-align: top; }
        td ul { margin: 0; padding-left: 1.1em; }
        .badge { display: inline-block; padding: 0 8px; border-radius: 999px; font-weight: 600; }
        .s-succeeded, .s-upgraded { color: var(--ok-fg); background: var(--ok-bg); }
        .s-failed, .s-aborted, .s-interrupted { color: var(--bad-fg); background: var(--bad-bg); }
        .s-running, .s-aborting, .s-queued { color: var(--run-fg); background: var(--run-bg); }
        .s-skipped, .s-not_selected, .s-pending { color: var(--idle-fg); background: var(--idle-bg); }
        .strip { display: flex; flex-wrap: wrap; gap: 6px; list-style: none; padding: 0; margin: 0; }
        .strip li { padding: 6px 10px; border-radius: 6px; border: 1px solid var(--line); }
        .strip .name { font-weight: 600; }
        .wait { color: var(--wait-fg); background: var(--wait-bg); border-radius: 6px; padding: 4px 12px; }
        .wait h2 { margin-top: 0.5rem; }
        .error { color: var(--bad-fg); background: var(--bad-bg); padding: 8px 12px; border-radius: 6px; overflow-wrap: anywhere; }
        .notice { color: var(--bad-fg); background: var(--bad-bg); padding: 8px 12px; border-radius: 6px; }
        .hint { color: var(--muted); font-size: 14px; }
        .forecast { color: var(--muted); }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
        dt { font-weight: 600; }
        dd { margin: 0; overflow-wrap: anywhere; }
        .events { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 14px; padding-left: 0; list-style: none; }
        .events li { border-bottom: 1px solid var(--line); padding: 2px 0; overflow-wrap: anywhere; }
        .events .place { color: var(--muted); }
        .k-job_failed .message, .k-stage_failed .message, .k-node_failed .message { color: var(--bad-fg); font-weight: 600; }
        .k-warning .message { color: var(--wait-fg); }
        form.login { display: grid; gap: 8px; max-width: 420px; }
        input[type=password] { font: inherit; padding: 8px; border: 1px solid var(--muted); border-radius: 6px; width: 100%; }
        button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--muted); color: var(--fg); background: var(--panel-bg); cursor: pointer; }
        button.abort { color: var(--bad-fg); border-color: var(--bad-fg); }
        form.inline { display: inline; }
        form.action { margin: 8px 0; display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
        @media (max-width: 600px) {
          main { padding: 8px; }
          th, td { padding: 4px; }
        }
        """#

    static let script = #"""
        // The status page's live parts: the wait's countdown, the events as they
        // are written (the job's server-sent events), and the job's state, fetched
        // again as this same page whenever it moves. Text goes in as text only.
        "use strict";

        function left(seconds) {
          seconds = Math.max(0, Math.round(seconds));
          if (seconds < 60) return seconds + " s";
          const minutes = Math.floor(seconds / 60);
          if (minutes < 90) return minutes + " min " + (seconds % 60) + " s";
          return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
        }

        function tick() {
          for (const element of document.querySelectorAll(".countdown[data-deadline]")) {
            element.textContent = left(Number(element.dataset.deadline) - Date.now() / 1000);
          }
        }

        function eventItem(event) {
          const item = document.createElement("li");
          item.className = "k-" + event.kind;
          const time = document.createElement("time");
          time.dateTime = event.time || "";
          time.textContent = (event.time || "").slice(11, 19);
          const place = document.createElement("span");
          place.className = "place";
          place.textContent = [event.stage, event.node].filter(Boolean).join(" ") || "-";
          const message = document.createElement("span");
          message.className = "message";
          message.textContent = event.message || "";
          item.append(time, " ", place, " ", message);
          return item;
        }

        // One fetch at a time; a change while one is out fetches again after it.
        let refreshing = null;
        let again = false;
        function refresh() {
          if (refreshing) {
            again = true;
            return;
          }
          refreshing = fetch(location.pathname, { headers: { Accept: "text/html" }, credentials: "same-origin" })
            .then((response) => (response.ok ? response.text() : null))
            .then((text) => {
              if (!text) return;
              const fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
              const live = document.getElementById("live");
              if (!fresh || !live) return;
              // A box the reader has ticked, and where the focus is, outlive the refresh.
              const ticked = Array.from(live.querySelectorAll("input[type=checkbox]:checked"), (box) => box.id);
              const focused = live.contains(document.activeElement) ? document.activeElement.id : "";
              for (const id of ticked) {
                const box = fresh.querySelector("#" + CSS.escape(id));
                if (box) box.checked = true;
              }
              live.replaceWith(fresh);
              if (focused) document.getElementById(focused)?.focus();
              tick();
            })
            .finally(() =>
              setTimeout(() => {
                refreshing = null;
                if (again) {
                  again = false;
                  refresh();
                }
              }, 500)
            );
        }

        function follow() {
          const live = document.getElementById("live");
          const events = document.getElementById("events");
          if (!live || !events || live.dataset.finished === "true" || !window.EventSource) return;
          const source = new EventSource("/jobs/" + live.dataset.job + "/events?follow=true&after=" + events.dataset.after);
          source.onmessage = (message) => {
            const event = JSON.parse(message.data);
            if (event.seq <= Number(events.dataset.after)) return;
            events.append(eventItem(event));
            events.dataset.after = String(event.seq);
          };
          source.addEventListener("job", refresh);
          source.addEventListener("end", () => {
            source.close();
            refresh();
          });
        }

        document.addEventListener("DOMContentLoaded", () => {
          tick();
          setInterval(tick, 1000);
          follow();
        });
        """#
}
