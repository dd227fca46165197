"""App factory for ``auditgraph serve --workers N`` (uvicorn imports it in each worker)."""

from __future__ import annotations

import json
import os

from lineage.server.app import ServerConfig, create_app


def app():
    return create_app(ServerConfig(**json.loads(os.environ["AUDITGRAPH_SERVE_CONFIG"])))
