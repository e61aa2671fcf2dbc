"""The emulator's HTTP application and its command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import duckdb
import orjson
import uvicorn
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobClient
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devstack.kusto_emulator.auth import RequireToken
from devstack.kusto_emulator.azure_storage import StorageResources
from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.faults import Endpoint, FaultRegistry, FaultSpec
from devstack.kusto_emulator.formats import IngestionFailure
from devstack.kusto_emulator.ingestion import IngestionRequest, ingest_file
from devstack.kusto_emulator.mgmt import MgmtContext, execute_mgmt
from devstack.kusto_emulator.query import run_query
from devstack.kusto_emulator.queue_worker import QueueWorker
from devstack.kusto_emulator.responses import ResultTable, v1_body, v2_body
from devstack.kusto_emulator.store import KustoStore

logger = logging.getLogger(__name__)

MAX_STREAMING_BYTES = 4 * 1024 * 1024
_STREAMING_RESULT_COLUMNS = [
    ("ConsumedRecordsCount", "long"),
    ("UpdatePolicyStatus", "string"),
    ("UpdatePolicyFailureCode", "string"),
    ("UpdatePolicyFailureReason", "string"),
]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _error(error: KustoRequestError) -> Response:
    return _json(error.body(), status=error.status)


class Emulator:
    """Holds the store, storage, faults and worker; its methods are the route handlers."""

    def __init__(
        self,
        data_dir: Path,
        storage_connection_string: str | None,
        poll_interval: float,
        storage_prefix: str = "",
    ) -> None:
        self.store = KustoStore(data_dir)
        self.faults = FaultRegistry()
        self.scratch_dir = data_dir / "scratch"
        # Left over only if an earlier run was killed mid-ingestion.
        shutil.rmtree(self.scratch_dir, ignore_errors=True)
        self.scratch_dir.mkdir(parents=True)
        self.storage = (
            StorageResources(storage_connection_string, storage_prefix)
            if storage_connection_string
            else None
        )
        self.worker = (
            QueueWorker(self.store, self.storage, self.faults, self.scratch_dir, poll_interval)
            if self.storage
            else None
        )

    def start(self) -> None:
        if self.storage is not None:
            _retry_until_ready(self.storage.ensure_created)
        if self.worker is not None:
            self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.store.close()

    async def _injected(
        self, endpoint: Endpoint, database: str | None, table: str | None
    ) -> Response | None:
        fault = self.faults.http_fault(endpoint, database, table)
        if fault is None:
            return None
        if fault.status == "hang":
            await asyncio.sleep(fault.hang_seconds)
            return _error(KustoRequestError.server_error(503))
        if fault.status == 429:
            return _error(KustoRequestError.throttled())
        return _error(KustoRequestError.server_error(int(fault.status)))

    @staticmethod
    async def _command_body(request: Request) -> tuple[str, str]:
        try:
            body = orjson.loads(await request.body())
            return str(body.get("db") or "NetDefaultDB"), str(body["csl"])
        except (orjson.JSONDecodeError, KeyError, AttributeError):
            raise KustoRequestError.bad_request(
                "The request body must be JSON with 'db' and 'csl'"
            ) from None

    async def health(self, _: Request) -> Response:
        return _json({"status": "ok"})

    async def mgmt(self, request: Request) -> Response:
        try:
            database, text = await self._command_body(request)
            if injected := await self._injected("mgmt", database, None):
                return injected
            context = MgmtContext(self.store, self.storage, database, self.faults)
            table = await run_in_threadpool(execute_mgmt, context, text)
        except KustoRequestError as error:
            return _error(error)
        except duckdb.Error as error:
            return _error(KustoRequestError.bad_request(f"Command failed: {_first_line(error)}"))
        return _json(v1_body(table))

    async def query_v1(self, request: Request) -> Response:
        return await self._query(request, v2=False)

    async def query_v2(self, request: Request) -> Response:
        return await self._query(request, v2=True)

    async def _query(self, request: Request, v2: bool) -> Response:
        try:
            database, text = await self._command_body(request)
            if injected := await self._injected("query", database, None):
                return injected
            if text.lstrip().startswith("."):
                # Kusto also answers management commands sent to the query endpoint.
                context = MgmtContext(self.store, self.storage, database, self.faults)
                table = await run_in_threadpool(execute_mgmt, context, text)
            else:
                table = await run_in_threadpool(run_query, self.store, database, text)
        except KustoRequestError as error:
            return _error(error)
        except duckdb.Error as error:
            return _error(KustoRequestError.bad_request(f"Command failed: {_first_line(error)}"))
        return _json(v2_body(table) if v2 else v1_body(table))

    async def streaming_ingest(self, request: Request) -> Response:
        database = request.path_params["database"]
        table = request.path_params["table"]
        try:
            if injected := await self._injected("ingest", database, table):
                return injected
            body = await request.body()
            if len(body) > MAX_STREAMING_BYTES:
                raise KustoRequestError(
                    400,
                    "Stream_InputStreamTooLarge",
                    f"The streaming request for '{database}.{table}' is {len(body)} bytes, "
                    f"over the {MAX_STREAMING_BYTES} bytes limit.",
                    "Kusto.DataNode.Exceptions.StreamingIngestionException",
                    True,
                )
            ingestion = IngestionRequest(
                database=database,
                table=table,
                format=request.query_params.get("streamFormat", "csv"),
                mapping_reference=request.query_params.get("mappingName"),
            )
            from_uri = request.query_params.get("sourceKind", "").lower() == "uri"
            rows = await run_in_threadpool(self._stream, ingestion, body, from_uri)
        except KustoRequestError as error:
            return _error(error)
        return _json(
            v1_body(ResultTable(_STREAMING_RESULT_COLUMNS, [[rows, "Inactive", "Unknown", None]]))
        )

    def _stream(self, ingestion: IngestionRequest, body: bytes, from_uri: bool) -> int:
        database, table = ingestion.database, ingestion.table
        self.store.require_table(database, table)
        if not self.store.streaming_enabled(database, table):
            raise KustoRequestError.streaming_disabled(database, table)
        if self.faults.refuses_writes(database, table):
            raise KustoRequestError(
                400,
                "BadRequest_TableWriteRefused",
                f"Table '{database}.{table}' refuses writes (emulator fault injection).",
                "Kusto.DataNode.Exceptions.StreamingIngestionException",
                True,
            )
        with tempfile.NamedTemporaryFile(dir=self.scratch_dir, suffix=".stream") as scratch:
            path = Path(scratch.name)
            if from_uri:
                _download_source_uri(body, path)
            else:
                path.write_bytes(body)
            try:
                return ingest_file(self.store, ingestion, path).row_count
            except IngestionFailure as failure:
                raise KustoRequestError(
                    400,
                    failure.error_code,
                    failure.details,
                    "Kusto.DataNode.Exceptions.StreamingIngestionException",
                    failure.permanent,
                ) from None

    async def set_fault(self, request: Request) -> Response:
        try:
            spec = FaultSpec.model_validate_json(await request.body())
        except ValidationError as error:
            return _json({"error": str(error)}, status=400)
        self.faults.add(spec)
        return _json({"faults": self.faults.describe()})

    async def list_faults(self, _: Request) -> Response:
        return _json({"faults": self.faults.describe()})

    async def clear_faults(self, request: Request) -> Response:
        self.faults.clear(request.query_params.get("database"))
        return _json({"faults": []})


def _download_source_uri(body: bytes, target: Path) -> None:
    try:
        source_uri = orjson.loads(body)["sourceUri"]
        with target.open("wb") as stream:
            BlobClient.from_blob_url(source_uri).download_blob().readinto(stream)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise KustoRequestError.bad_request(
            "Streaming from a blob needs a JSON body with 'sourceUri'"
        ) from None
    except AzureError as error:
        raise KustoRequestError(
            400,
            "Download_SourceNotFound",
            f"Cannot download the source blob: {type(error).__name__}",
            "Kusto.DataNode.Exceptions.StreamingIngestionException",
            True,
        ) from None


def _retry_until_ready(action: Any, timeout: float = 60.0) -> None:
    """Azurite may still be starting when the emulator starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except AzureError as error:
            if time.monotonic() > deadline:
                raise
            logger.info("storage not ready yet (%s), retrying", type(error).__name__)
            time.sleep(0.5)


async def _unexpected(_: Request, error: Exception) -> Response:
    """An emulator bug still answers in Kusto's error shape, so the SDK can report it."""
    logger.exception("unexpected error", exc_info=error)
    return _error(
        KustoRequestError(
            500,
            "InternalServiceError",
            f"Emulator error: {type(error).__name__}: {error}",
            "Kusto.Data.Exceptions.KustoServiceException",
            False,
        )
    )


def build_app(emulator: Emulator, require_token: str | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(emulator.start)
        try:
            yield
        finally:
            await run_in_threadpool(emulator.stop)

    routes = [
        Route("/emulator/health", emulator.health, methods=["GET"]),
        Route("/emulator/faults", emulator.set_fault, methods=["POST"]),
        Route("/emulator/faults", emulator.list_faults, methods=["GET"]),
        Route("/emulator/faults", emulator.clear_faults, methods=["DELETE"]),
        Route("/v1/rest/mgmt", emulator.mgmt, methods=["POST"]),
        Route("/v1/rest/query", emulator.query_v1, methods=["POST"]),
        Route("/v2/rest/query", emulator.query_v2, methods=["POST"]),
        Route("/v1/rest/ingest/{database}/{table}", emulator.streaming_ingest, methods=["POST"]),
    ]
    # Opt-in: a cluster that demands Azure AD tokens for this audience (see auth.py).
    middleware = [Middleware(RequireToken, audience=require_token)] if require_token else []
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={Exception: _unexpected},
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.kusto_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument(
        "--storage-connection-string",
        default=os.environ.get("AZURE_STORAGE_CONNECTION_STRING"),
        help="Azure Storage (Azurite) connection string; default $AZURE_STORAGE_CONNECTION_STRING",
    )
    parser.add_argument("--poll-interval", type=float, default=0.25, help="queue poll seconds")
    parser.add_argument(
        "--storage-prefix",
        default="",
        help="prefix of this emulator's queue, container and table names, so that emulators "
        "sharing one storage account do not take each other's ingestions",
    )
    parser.add_argument(
        "--require-token",
        metavar="AUDIENCE",
        default=os.environ.get("KUSTO_EMULATOR_REQUIRE_TOKEN"),
        help="demand a bearer token for AUDIENCE on every Kusto request (see auth.py)",
    )
    parser.add_argument("--tls-cert", type=Path, help="serve https with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    emulator = Emulator(
        args.data_dir, args.storage_connection_string, args.poll_interval, args.storage_prefix
    )
    # A bounded graceful shutdown: an injected "hang" must not keep a stopping emulator alive.
    uvicorn.run(
        build_app(emulator, args.require_token),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=3,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
