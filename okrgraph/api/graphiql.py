"""GraphiQL without a CDN: the page (graphiql.html) and its assets
(static/graphiql/, vendored from npm: see static/graphiql/VENDORED.md) ship with
the package, so the first page a new user opens works with no internet."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

# Where the app serves okrgraph/api/static/ (the page loads /static/graphiql/...).
ASSETS_PATH = "/static"
ASSETS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
    "plugin-explorer.umd.js",
    "plugin-explorer.css",
)


@cache
def graphiql_html() -> str:
    return files("okrgraph.api").joinpath("graphiql.html").read_text(encoding="utf-8")
