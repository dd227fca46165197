"""App factory for ``auditgraph serve --workers N`` (uvicorn imports it in each worker)."""

from __future__ import annotations

import ast
import os

from lineage.server.app import ServerConfig, create_app


def app():
    return create_app(ServerConfig(**ast.literal_eval(os.environ["AUDITGRAPH_SERVE_CONFIG"])))
