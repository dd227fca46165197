"""``python -m lineage`` is the ``auditgraph`` command."""

from lineage.cli import main

main()
