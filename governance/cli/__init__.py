"""``auditgraph governance ...``: metadata, keys, approvals, the gate and releases.

One module per topic, each listing its ``COMMANDS``; this package only makes the
group and adds them (no topic module imports the group, so there is no cycle).
``governance.plugin`` adds the group to the root CLI through ``register_commands``.
"""

from __future__ import annotations

import click

from governance.cli import approvals, gate, metadata, responsible


@click.group()
def governance():
    """Rules, checks, signed approvals and the release gate.

    \b
    Example:
        auditgraph governance gate model:demo/churn-classifier@3 --policy baseline
    """


for _topic in (metadata, approvals, gate, responsible):
    for _command in _topic.COMMANDS:
        governance.add_command(_command)
