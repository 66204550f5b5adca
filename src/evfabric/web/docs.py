"""``/docs`` that works offline: Swagger UI served from the web service itself, not a CDN.

FastAPI's default page loads Swagger UI's script and style from a CDN, so on a machine without
internet access (a beamline network, a laptop on a train) ``/docs`` is blank. The assets ship in
the ``fastapi-offline`` package (a dependency); they are served under ``/docs-assets``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "assets_dir", "use_offline_docs"]

ASSETS = "/docs-assets"


def assets_dir() -> Path:
    """The folder holding ``swagger-ui-bundle.js``, ``swagger-ui.css`` and ``favicon.png``."""
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


def use_offline_docs(app: FastAPI, path: str = "/docs") -> None:
    """Serve Swagger UI for ``app``'s schema at ``path`` with local assets (create the app
    with ``docs_url=None`` so FastAPI's CDN page does not take the path first)."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    @app.get(path, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )
