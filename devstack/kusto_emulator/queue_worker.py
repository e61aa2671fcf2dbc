"""The queued-ingestion worker: reads the ingestion queue in Azurite, ingests each blob.

A message is deleted only after its blob was ingested (or failed for good) and its status
message was posted, so a crash of the emulator leaves the message to be read again;
`ingestIfNotExists` then keeps a replay from duplicating rows.
"""

from __future__ import annotations

import base64
import logging
import math
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from azure.core.exceptions import AzureError, ClientAuthenticationError, ResourceNotFoundError
from azure.storage.blob import BlobClient
from azure.storage.queue import QueueClient, QueueMessage

from devstack.kusto_emulator.azure_storage import (
    FAILURE_QUEUE,
    INGESTION_QUEUE,
    SUCCESS_QUEUE,
    StorageResources,
)
from devstack.kusto_emulator.faults import FaultRegistry
from devstack.kusto_emulator.formats import IngestionFailure
from devstack.kusto_emulator.ingestion import IngestionRequest, ingest_file
from devstack.kusto_emulator.store import KustoStore

logger = logging.getLogger(__name__)

REPORT_FAILURES_ONLY = 0
REPORT_NOTHING = 1
REPORT_FAILURES_AND_SUCCESSES = 2
# Long enough for a large blob; a crashed worker's message reappears after it.
_VISIBILITY_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class QueuedIngestion:
    """The fields of an SDK ingestion message the emulator acts on."""

    request: IngestionRequest
    blob_path: str
    source_id: str
    report_level: int

    @property
    def source_path(self) -> str:
        """The blob path without its SAS token: status messages must not leak it."""
        return self.blob_path.split("?", 1)[0]


def parse_message(content: str) -> QueuedIngestion:
    """Decode the base64 JSON message `QueuedIngestClient` posts."""
    body = orjson.loads(base64.b64decode(content))
    extra: dict[str, Any] = body.get("AdditionalProperties") or {}
    request = IngestionRequest(
        database=body["DatabaseName"],
        table=body["TableName"],
        format=extra.get("format") or "csv",
        mapping_reference=extra.get("ingestionMappingReference"),
        inline_mapping=extra.get("ingestionMapping"),
        tags=_json_list(extra.get("tags")),
        ingest_if_not_exists=_json_list(extra.get("ingestIfNotExists")),
        ignore_first_record=str(extra.get("ignoreFirstRecord", "false")).lower() == "true",
    )
    return QueuedIngestion(
        request=request,
        blob_path=body["BlobPath"],
        source_id=str(body.get("Id") or uuid.uuid4()),
        report_level=int(body.get("ReportLevel", REPORT_FAILURES_ONLY)),
    )


def _json_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    items = orjson.loads(value) if isinstance(value, str) else value
    return [str(item) for item in items]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class QueueWorker:
    """Polls the ingestion queue on a background thread."""

    def __init__(
        self,
        store: KustoStore,
        storage: StorageResources,
        faults: FaultRegistry,
        scratch_dir: Path,
        poll_interval: float = 0.25,
    ) -> None:
        self._store = store
        self._faults = faults
        self._scratch_dir = scratch_dir
        self._poll_interval = poll_interval
        self._storage = storage
        self._ingestion_queue = storage.queue(INGESTION_QUEUE)
        self._success_queue = storage.queue(SUCCESS_QUEUE)
        self._failure_queue = storage.queue(FAILURE_QUEUE)
        self._stop = threading.Event()
        # When each delayed message is due (monotonic seconds), by queue message id.
        self._due: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="kusto-queue-worker", daemon=True)

    def start(self) -> None:
        self._scratch_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except ResourceNotFoundError:
                # Azurite lost its data (a wiped dev stack): bring the queues back.
                logger.warning("queue %s is gone; creating the queues again", INGESTION_QUEUE)
                self._recreate_storage()
                handled = 0
            except AzureError as error:
                logger.warning("cannot read queue %s: %s", INGESTION_QUEUE, error)
                handled = 0
            except Exception:  # noqa: BLE001 - the worker thread must outlive any bug
                logger.exception("queue worker error; going on")
                handled = 0
            if handled == 0:
                self._stop.wait(self._poll_interval)

    def _recreate_storage(self) -> None:
        try:
            self._storage.ensure_created()
        except AzureError as error:
            logger.warning("cannot create the ingestion queues: %s", error)

    def poll_once(self) -> int:
        """Handle the messages waiting now; returns how many."""
        messages = list(
            self._ingestion_queue.receive_messages(
                messages_per_page=16,
                max_messages=16,
                visibility_timeout=_VISIBILITY_TIMEOUT_SECONDS,
            )
        )
        for index, message in enumerate(messages):
            if self._stop.is_set():
                self._release(messages[index:])
                break
            try:
                ingestion = parse_message(message.content)
            except (ValueError, KeyError, TypeError) as error:
                logger.error("dropping malformed ingestion message %s: %s", message.id, error)
                self._ingestion_queue.delete_message(message)
                continue
            if self._deferred(message, ingestion):
                continue
            self._handle(ingestion)
            self._ingestion_queue.delete_message(message)
        return len(messages)

    def _release(self, messages: list[QueueMessage]) -> None:
        """Make messages received but not handled visible again at once: stopping must not
        hide them for the whole visibility timeout."""
        for message in messages:
            try:
                self._ingestion_queue.update_message(message, visibility_timeout=0)
            except AzureError as error:
                logger.warning("cannot release ingestion message %s: %s", message.id, error)

    def _deferred(self, message: QueueMessage, ingestion: QueuedIngestion) -> bool:
        """Whether a delay fault holds the message back; it then reappears when due.

        Hiding the message in the queue, rather than sleeping, keeps other tables' ingestions
        flowing during the delay.
        """
        request = ingestion.request
        delay = self._faults.ingestion_delay(request.database, request.table)
        due = self._due.setdefault(message.id, time.monotonic() + delay)
        remaining = due - time.monotonic()
        if remaining <= 0:
            del self._due[message.id]
            return False
        self._ingestion_queue.update_message(message, visibility_timeout=math.ceil(remaining))
        return True

    def _handle(self, ingestion: QueuedIngestion) -> None:
        operation_id = str(uuid.uuid4())
        try:
            self._ingest(ingestion)
        except IngestionFailure as failure:
            self._report_failure(ingestion, operation_id, failure)
        except Exception as error:  # noqa: BLE001 - an emulator bug must not stop the worker
            logger.exception("ingestion of %s failed unexpectedly", ingestion.source_path)
            internal = IngestionFailure(
                "General_InternalServerError", f"Emulator error: {error}", permanent=False
            )
            self._report_failure(ingestion, operation_id, internal)
        else:
            if ingestion.report_level == REPORT_FAILURES_AND_SUCCESSES:
                self._post(
                    self._success_queue, self._status(ingestion, operation_id, "SucceededOn")
                )

    def _ingest(self, ingestion: QueuedIngestion) -> None:
        request = ingestion.request
        fault = self._faults.ingestion_fault(request.database, request.table)
        if fault is not None:
            raise IngestionFailure(
                fault.error_code,
                f"Injected {'permanent' if fault.permanent else 'transient'} failure "
                f"(emulator fault injection) for '{request.database}.{request.table}'.",
                permanent=fault.permanent,
            )
        if self._faults.refuses_writes(request.database, request.table):
            raise IngestionFailure(
                "BadRequest_TableWriteRefused",
                f"Table '{request.database}.{request.table}' refuses writes "
                "(emulator fault injection).",
            )
        began = time.monotonic()
        with tempfile.NamedTemporaryFile(dir=self._scratch_dir, suffix=".blob") as scratch:
            self._download(ingestion, Path(scratch.name))
            downloaded = time.monotonic()
            outcome = ingest_file(self._store, request, Path(scratch.name))
        logger.info(
            "ingested %s rows into %s.%s as extent %s in %.2fs (download %.2fs)",
            outcome.row_count,
            request.database,
            request.table,
            outcome.extent_id,
            time.monotonic() - began,
            downloaded - began,
        )

    @staticmethod
    def _download(ingestion: QueuedIngestion, target: Path) -> None:
        try:
            blob = BlobClient.from_blob_url(ingestion.blob_path)
            with target.open("wb") as stream:
                blob.download_blob().readinto(stream)
        except ResourceNotFoundError:
            raise IngestionFailure(
                "Download_SourceNotFound", f"Blob '{ingestion.source_path}' was not found."
            ) from None
        except ClientAuthenticationError:
            raise IngestionFailure(
                "Download_Forbidden",
                f"Access to blob '{ingestion.source_path}' was denied (missing or invalid SAS).",
            ) from None
        except AzureError as error:
            raise IngestionFailure(
                "Download_UnknownError",
                f"Cannot download blob '{ingestion.source_path}': {type(error).__name__}",
                permanent=False,
            ) from None

    def _report_failure(
        self, ingestion: QueuedIngestion, operation_id: str, failure: IngestionFailure
    ) -> None:
        request = ingestion.request
        logger.warning(
            "ingestion into %s.%s failed: %s %s",
            request.database,
            request.table,
            failure.error_code,
            failure.details,
        )
        self._store.record_failure(
            request.database,
            request.table,
            operation_id,
            ingestion.source_path,
            failure.details,
            failure.permanent,
            failure.error_code,
        )
        if ingestion.report_level == REPORT_NOTHING:
            return
        status = self._status(ingestion, operation_id, "FailedOn")
        status.update(
            {
                "Details": failure.details,
                "ErrorCode": failure.error_code,
                "FailureStatus": "Permanent" if failure.permanent else "Transient",
                "OriginatesFromUpdatePolicy": False,
                "ShouldRetry": not failure.permanent,
            }
        )
        self._post(self._failure_queue, status)

    @staticmethod
    def _status(ingestion: QueuedIngestion, operation_id: str, time_field: str) -> dict[str, Any]:
        return {
            "OperationId": operation_id,
            "Database": ingestion.request.database,
            "Table": ingestion.request.table,
            time_field: _now(),
            "IngestionSourceId": ingestion.source_id,
            "IngestionSourcePath": ingestion.source_path,
            "RootActivityId": str(uuid.uuid4()),
        }

    @staticmethod
    def _post(queue: QueueClient, status: dict[str, Any]) -> None:
        # The SDK reads status queues with TextBase64DecodePolicy.
        queue.send_message(base64.b64encode(orjson.dumps(status)).decode())
