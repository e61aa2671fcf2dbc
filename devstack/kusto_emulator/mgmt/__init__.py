"""Management commands (`POST /v1/rest/mgmt`): parse the command, act on the store, answer.

Each command is one regular expression and one handler; `_schema`, `_extents` and `_ingest`
register theirs when imported. A command no pattern matches gets Kusto's syntax error, never a
silent success.
"""

from devstack.kusto_emulator.mgmt import _extents, _ingest, _schema  # noqa: F401 - registers commands
from devstack.kusto_emulator.mgmt._registry import MgmtContext, execute_mgmt

__all__ = ["MgmtContext", "execute_mgmt"]
