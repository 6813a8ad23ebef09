#!/usr/bin/env python3
"""Checks the status page's HTML and stylesheet for what a reader needs.

  check-html.py --css PAGE.css PAGE.html...

Each page: `<html lang>`, the viewport for phones, the landmarks (header,
nav with a label, one main, footer), one h1 and no skipped heading level,
every visible input labelled, every table with a caption and its header
cells scoped, every button named, no inline script, style or event handler
(the Content-Security-Policy forbids them). The stylesheet: every text
colour against the background it is drawn on has a contrast ratio of at
least 4.5:1 (WCAG 2.1 AA), computed from its :root custom properties.

Broken copies (no lang, an unlabelled input, a table without caption, an
inline handler, a pale colour) are checked first: the check must fail them.
"""
import html.parser
import re
import sys


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.labels = set()
        self.inputs = []
        self.headings = []
        self.problems = []
        self.stack = []
        self.tables = []
        self.buttons = []
        self.script_text = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        self.stack.append(tag)
        for name in a:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>: an inline event handler")
        if "style" in a:
            self.problems.append(f"<{tag} style=…>: an inline style")
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"])
        if tag == "input" and a.get("type") != "hidden":
            self.inputs.append(a)
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "table":
            self.tables.append({"caption": False, "th": [], })
        if tag == "caption" and self.tables:
            self.tables[-1]["caption"] = True
        if tag == "th" and self.tables:
            self.tables[-1]["th"].append(a.get("scope"))
        if tag == "button":
            self.buttons.append("")
        if tag == "script":
            if "src" not in a:
                self.problems.append("an inline <script>")
            self.script_text = True

    def handle_endtag(self, tag):
        if tag == "script":
            self.script_text = False
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        if self.script_text and data.strip():
            self.problems.append("an inline <script>")
        if self.stack and self.stack[-1] == "button" and self.buttons:
            self.buttons[-1] += data


def check_page(text, name):
    page = Page()
    page.feed(text)
    problems = list(page.problems)
    by = lambda tag: [a for t, a in page.tags if t == tag]
    html_tags = by("html")
    if not html_tags or not html_tags[0].get("lang"):
        problems.append("<html> has no lang")
    if not any(a.get("name") == "viewport" for a in by("meta")):
        problems.append("no viewport meta for phones")
    if len(by("main")) != 1:
        problems.append(f"{len(by('main'))} <main> landmarks, not one")
    for tag in ("header", "footer"):
        if not by(tag):
            problems.append(f"no <{tag}> landmark")
    if not by("nav") or not all(a.get("aria-label") for a in by("nav")):
        problems.append("no <nav> with an aria-label")
    if page.headings.count(1) != 1:
        problems.append(f"{page.headings.count(1)} h1 headings, not one")
    for before, after in zip(page.headings, page.headings[1:]):
        if after > before + 1:
            problems.append(f"heading level skipped: h{before} then h{after}")
    for a in page.inputs:
        if not (a.get("id") in page.labels or a.get("aria-label")):
            problems.append(f"an input without a label: {a}")
    for table in page.tables:
        if not table["caption"]:
            problems.append("a table without a caption")
        if any(scope not in ("col", "row") for scope in table["th"]):
            problems.append("a table header cell without scope")
    if any(not text.strip() for text in page.buttons):
        problems.append("a button without a name")
    return [f"{name}: {p}" for p in problems]


def luminance(hex_colour):
    value = hex_colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a, b):
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def check_css(text):
    root = re.search(r":root\s*{([^}]*)}", text)
    if not root:
        return ["the stylesheet has no :root colours"]
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{3,6})\s*;", root.group(1)))
    pairs = [("fg", "bg"), ("muted", "bg"), ("link", "bg"), ("fg", "panel-bg"), ("muted", "panel-bg"),
             ("link", "panel-bg")]
    pairs += [(f"{k}-fg", f"{k}-bg") for k in ("ok", "bad", "run", "wait", "idle")]
    problems = []
    for fg, bg in pairs:
        if fg not in colours or bg not in colours:
            problems.append(f"--{fg} or --{bg} is not defined")
            continue
        ratio = contrast(colours[fg], colours[bg])
        if ratio < 4.5:
            problems.append(f"--{fg} on --{bg}: contrast {ratio:.2f}:1, below 4.5:1")
    return problems


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[0] != "--css":
        sys.exit(__doc__)
    css = open(args[1]).read()
    pages = {path: open(path).read() for path in args[2:]}
    # The checks must fail what is wrong before they are trusted with what is right.
    first = next(iter(pages.values()))
    broken = {
        "no lang": first.replace('<html lang="en">', "<html>"),
        "an unlabelled input": first.replace("</main>", '<input id="x" type="text"></main>'),
        "a table without caption": first.replace("</main>", "<table><tr><th>a</th></tr></table></main>"),
        "an inline handler": first.replace("<body>", '<body onload="x()">'),
    }
    for what, text in broken.items():
        if not check_page(text, what):
            sys.exit(f"the page check accepted a page with {what}: it cannot be trusted")
    if not check_css(css.replace("--muted: #57606a;", "--muted: #b0b0b0;")):
        sys.exit("the contrast check accepted a pale --muted: it cannot be trusted")
    problems = check_css(css)
    for path, text in pages.items():
        problems += check_page(text, path)
    if problems:
        sys.exit("\n".join(problems))
    print(f"status page: {len(pages)} pages with landmarks, labels, captions and no inline code; "
          "every text colour at 4.5:1 or more")


main()
