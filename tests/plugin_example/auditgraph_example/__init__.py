"""An example third-party auditgraph plugin (see ../README.md); each module is one extension."""
