"""Screenshot an HTML page (an `eqsat.explain` report) with headless Chromium.

    python tools/screenshot_report.py report.html shot.png [--width 1400] [--height 4000]

Uses Debian's Chromium (`apt-get install chromium`). The page needs no network, so Chromium
runs with networking features off. Exits 2 on bad usage, 3 when Chromium is missing, 1 when it
fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser() -> str | None:
    """The first Chromium-like program on PATH."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_path: str, png_path: str, width: int, height: int, timeout_s: float) -> None:
    """Write a `width` x `height` PNG of the page at `html_path` to `png_path`."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(
            "Chromium is not installed (looked for " + ", ".join(BROWSERS) + "); "
            "on Debian: apt-get install -y chromium"
        )
    url = "file://" + os.path.abspath(html_path)
    # A throwaway profile: a headless run must not touch (or lock) a user's real one.
    with tempfile.TemporaryDirectory(prefix="eqsat-shot-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",  # containers and root have no user namespaces for the sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={os.path.abspath(png_path)}",
            url,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or not os.path.exists(png_path):
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{browser} exited with {done.returncode}:\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", help="the HTML page to load")
    parser.add_argument("png", help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1400, help="window width (default 1400)")
    parser.add_argument("--height", type=int, default=4000, help="window height (default 4000)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.html):
        parser.error(f"no such HTML file: {args.html}")
    if args.width <= 0 or args.height <= 0:
        parser.error("--width and --height must be positive")
    if os.path.exists(args.png):
        os.remove(args.png)  # so a stale file is never mistaken for a fresh screenshot
    try:
        screenshot(args.html, args.png, args.width, args.height, args.timeout)
    except FileNotFoundError as e:
        print(f"screenshot_report: {e}", file=sys.stderr)
        return 3
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"screenshot_report: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.png} ({args.width}x{args.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
