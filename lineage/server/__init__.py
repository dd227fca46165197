"""The HTTP server: OpenLineage ingestion, the query API, API keys. See ``app.create_app``."""
