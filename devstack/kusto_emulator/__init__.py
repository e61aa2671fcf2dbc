"""Local Kusto (Azure Data Explorer) emulator that the unmodified Azure Kusto SDKs talk to.

Run it with::

    python -m devstack.kusto_emulator --host 127.0.0.1 --port 8080 \\
        --data-dir DIR --storage-connection-string CS

Endpoints (same wire protocol as a real cluster, SDK 6.x):

- ``POST /v1/rest/mgmt``: management commands.
- ``POST /v1/rest/query``, ``POST /v2/rest/query``: KQL queries.
- ``POST /v1/rest/ingest/{db}/{table}``: streaming ingestion.

Emulator-only control endpoints:

- ``GET /emulator/health`` -> ``200 {"status": "ok"}`` once serving.
"""
