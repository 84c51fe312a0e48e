"""The interactive API reference, /docs (Swagger UI) and /redoc, with their scripts served by this server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they stay blank without internet access. The
package fastapi-offline vendors both bundles (Swagger UI 5, ReDoc 2); this module serves them under
/static/docs and builds FastAPI's pages on them.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/static/docs"
OPENAPI_URL = "/openapi.json"
TITLE = "steadyfit API reference"
ASSETS = files("fastapi_offline") / "static"
FAVICON = "/ui/static/favicon.svg"
# Swagger UI would fetch a validity badge from validator.swagger.io: nothing but this server is needed.
SWAGGER_PARAMETERS = {"validatorUrl": None}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI: every operation, with its schema, examples and a form to try it."""
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=TITLE,
        swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
        swagger_favicon_url=FAVICON,
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """ReDoc: the same schema as one long page to read."""
    return get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=TITLE,
        redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )


def install(app: FastAPI) -> None:
    """The two pages and the files they load; create the app with `docs_url=None, redoc_url=None`."""
    app.mount(STATIC_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")
    app.include_router(router)
