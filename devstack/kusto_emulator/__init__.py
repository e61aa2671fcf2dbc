"""Local Kusto (Azure Data Explorer) emulator that the unmodified Azure Kusto SDKs talk to.

Run it with::

    python -m devstack.kusto_emulator --host 127.0.0.1 --port 8080 \\
        --data-dir DIR --storage-connection-string CS [--poll-interval 0.25]

`CS` (default: `$AZURE_STORAGE_CONNECTION_STRING`) is the Azurite account holding the
ingestion queues and blob container; without it only queued ingestion is unavailable.
Clients connect with `KustoConnectionStringBuilder.with_no_authentication("http://127.0.0.1:PORT")`
(an IP or localhost, so the ingest SDK does not prefix the host with `ingest-`).

Kusto endpoints (the SDK 6.x wire protocol):

- `POST /v1/rest/mgmt`: `.get ingestion resources`, `.get kusto identity token`,
  `.show version`, `.create database X [ifnotexists]`, `.drop database X [ifexists]`,
  `.show databases`, `.create|.create-merge|.alter-merge table T (c:type, ...)`,
  `.drop table T [ifexists]`, `.show tables`, `.show table T schema as json|cslschema`,
  `.clear table T data`, `.create[-or-alter] table T ingestion KIND mapping "M" '[...]'`,
  `.show table T ingestion [KIND] mappings`, `.drop table T ingestion KIND mapping "M"`,
  `.alter table|database X policy streamingingestion enable|disable|'{"IsEnabled":..}'`,
  `.delete table T policy streamingingestion`,
  `.show [table T |database D ]extents [where tags has|contains|hasprefix|!has ... 'x' and ...]`,
  `.drop extents <| .show table T extents where ...`, `.drop extents (ids) from T`,
  `.drop extents from T where tags ...`, `.drop extent tags from table T ('t', ...)`,
  `.show ingestion failures [| where FailedOn >= datetime(..) and Table == 'T']`,
  `.ingest inline into table T [with (...)] <| data`,
  `.ingest [async] into table T (h'url', ...) [with (format=.., tags='[..]', ...)]`.
  Anything else: 400 `BadRequest_SyntaxError`.
- `POST /v2/rest/query`, `POST /v1/rest/query`: KQL (the subset `kql` compiles).
- `POST /v1/rest/ingest/{db}/{table}?streamFormat=F[&mappingName=M][&sourceKind=uri]`:
  streaming ingestion of a gzipped or raw body (4 MiB limit), when the table's or
  database's streaming policy is enabled.

Queued ingestion: a background worker reads the ingestion queue every `--poll-interval`
seconds, downloads each blob with its SAS, ingests it as one extent carrying its tags
(`ingest-by:`/`drop-by:`), honours `ingestIfNotExists` (a repeat is skipped and reported
with ErrorCode `Skipped_IngestByTagAlreadyExists`) and posts status messages per
`ReportLevel` on the success / failure queues. Formats: csv, tsv, psv, scsv, sohsv, txt,
json, multijson, avro/apacheavro, parquet, orc.

Emulator-only control endpoints:

- `GET /emulator/health` -> `200 {"status": "ok"}` once serving.
- `POST /emulator/faults` (JSON, see `faults`), `GET /emulator/faults`,
  `DELETE /emulator/faults`.

Storage: `DIR/kusto.duckdb`, laid out as described in `store`; it survives restarts.
"""
