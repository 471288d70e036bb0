"""Front-end libraries from npm, copied into ``static/vendor/`` at set-up (``make install``), never from a CDN.

``python -m cityhub.web.vendor [NODE_MODULES]`` copies the files listed in :data:`FILES` from ``node_modules``
(installed by ``npm ci`` from package.json/package-lock.json). The directory is not committed. Pages still
render without it — plain forms work without htmx and the own stylesheet lays the pages out — and the app logs
one clear warning at start.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from os import PathLike
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

log = logging.getLogger(__name__)


class StaticAssets(StaticFiles):
    """``/static/``: the web UI's scripts, styles and icons, each answer marked ``Cache-Control: no-cache`` — the
    browser keeps its copy but asks first (a 304 by its ETag, a few hundred bytes). The pages name the files without
    a version, so a browser left to its own heuristic (a tenth of the time since the file last changed) ran a
    release's new pages with yesterday's app.js for hours after an upgrade."""

    def file_response(
        self, full_path: PathLike[str] | str, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
# path under static/vendor/ → path inside node_modules/
FILES: dict[str, str] = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "pico.min.css": "@picocss/pico/css/pico.min.css",
    # The one map (web/map_pages.py); leaflet.css finds its control images under images/ beside it.
    "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet/images/layers.png": "leaflet/dist/images/layers.png",
    "leaflet/images/layers-2x.png": "leaflet/dist/images/layers-2x.png",
    "leaflet/images/marker-icon.png": "leaflet/dist/images/marker-icon.png",
    "leaflet/images/marker-icon-2x.png": "leaflet/dist/images/marker-icon-2x.png",
    "leaflet/images/marker-shadow.png": "leaflet/dist/images/marker-shadow.png",
    # The API's interactive documentation at /docs (api/docs.py).
    "swagger-ui/swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui/swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
}


def available(vendor_dir: Path | None = None) -> dict[str, bool]:
    """Which vendor files are installed (name → present)."""
    folder = vendor_dir or VENDOR_DIR
    return {name: (folder / name).is_file() for name in FILES}


def missing(vendor_dir: Path | None = None) -> list[str]:
    return [name for name, present in available(vendor_dir).items() if not present]


def copy(node_modules: Path, vendor_dir: Path | None = None) -> list[Path]:
    """Copy the listed dist files out of ``node_modules``; raises FileNotFoundError naming what is missing."""
    vendor_dir = vendor_dir or VENDOR_DIR
    absent = [rel for rel in FILES.values() if not (node_modules / rel).is_file()]
    if absent:
        raise FileNotFoundError(f"not in {node_modules}: {', '.join(absent)} (run `npm ci` first)")
    vendor_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rel in FILES.items():
        target = vendor_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / rel, target)
        written.append(target)
    return written


def warn_if_missing() -> list[str]:
    """Log once, at app start, which vendor files are missing (the UI then renders in its degraded form)."""
    absent = missing()
    if absent:
        log.warning(
            "web UI vendor files missing in %s: %s; pages render without them (run `make install` to copy them "
            "from node_modules)",
            VENDOR_DIR,
            ", ".join(absent),
        )
    return absent


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    node_modules = Path(args[0]) if args else Path("node_modules")
    try:
        written = copy(node_modules)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"copied {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
