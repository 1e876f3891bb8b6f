"""``publisher serve``: the generated website under /site/ (the web workspace builds on this)."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publisher.app import App


def site_folder(app: App):
    for spec in app.channels.values():
        folder = getattr(spec.channel, "folder", None)
        if isinstance(folder, Path):
            return folder
    return app.settings.path("site")


def serve(app: App, *, host: str, port: int) -> None:
    root = site_folder(app)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            if path.startswith("/site/"):
                path = path[len("/site") :]
            elif path not in ("/", ""):
                return str(root / "__missing__")
            return super().translate_path(path)

    httpd = http.server.ThreadingHTTPServer((host, port), functools.partial(Handler, directory=str(root)))
    print(f"serving {root} on http://{host}:{port}/site/  (Ctrl-C stops)")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
