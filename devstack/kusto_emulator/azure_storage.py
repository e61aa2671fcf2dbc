"""The emulator's Azure Storage side: the ingestion queues and containers in Azurite.

`.get ingestion resources` hands out these URLs with real SAS tokens, signed with the
account key of the storage connection string, so the unmodified SDK uploads and enqueues
exactly as against a cluster's own storage accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import (
    BlobServiceClient,
    ContainerSasPermissions,
    generate_container_sas,
)
from azure.storage.queue import (
    QueueClient,
    QueueSasPermissions,
    QueueServiceClient,
    generate_queue_sas,
)

INGESTION_QUEUE = "readyforaggregation-secured"
FAILURE_QUEUE = "failedingestions"
SUCCESS_QUEUE = "successfulingestions"
TEMP_CONTAINER = "tempstorage"
STATUS_TABLE = "ingestionsstatus"
_SAS_LIFETIME = timedelta(days=7)


def _connection_settings(connection_string: str) -> dict[str, str]:
    settings = {}
    for part in connection_string.split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            settings[key.strip().lower()] = value.strip()
    return settings


@dataclass(frozen=True)
class IngestionResource:
    resource_type: str
    url: str


class StorageResources:
    """Creates the queues and container once, and signs URLs for them.

    ``prefix`` goes before every queue, container and table name. Emulators sharing one
    storage account need one each, as clusters have storage accounts of their own: else
    each emulator's queue worker takes the others' ingestion messages and fails them (their
    databases are not its own).
    """

    def __init__(self, connection_string: str, prefix: str = "") -> None:
        self._prefix = prefix
        settings = _connection_settings(connection_string)
        self._account_name = settings.get("accountname", "devstoreaccount1")
        if "accountkey" not in settings:
            raise ValueError(
                "the storage connection string needs an AccountKey: the emulator signs the "
                "SAS tokens of its ingestion resources with it"
            )
        self._account_key = settings["accountkey"]
        self._queues = QueueServiceClient.from_connection_string(connection_string)
        self._blobs = BlobServiceClient.from_connection_string(connection_string)
        self._table_endpoint = settings.get("tableendpoint")

    def ensure_created(self) -> None:
        for queue in (INGESTION_QUEUE, FAILURE_QUEUE, SUCCESS_QUEUE):
            try:
                self._queues.create_queue(self._prefix + queue)
            except ResourceExistsError:
                pass
        try:
            self._blobs.create_container(self._prefix + TEMP_CONTAINER)
        except ResourceExistsError:
            pass

    def queue(self, name: str) -> QueueClient:
        """The queue named ``name`` (one of the ``*_QUEUE`` names) of this emulator."""
        return self._queues.get_queue_client(self._prefix + name)

    def resources(self) -> list[IngestionResource]:
        """The five resource kinds the SDK requires, as SAS URLs."""
        expiry = datetime.now(UTC) + _SAS_LIFETIME
        queue_permission = QueueSasPermissions(read=True, add=True, update=True, process=True)
        resources = [
            IngestionResource(kind, self._queue_url(queue, queue_permission, expiry))
            for kind, queue in (
                ("SecuredReadyForAggregationQueue", INGESTION_QUEUE),
                ("FailedIngestionsQueue", FAILURE_QUEUE),
                ("SuccessfulIngestionsQueue", SUCCESS_QUEUE),
            )
        ]
        container = self._prefix + TEMP_CONTAINER
        container_sas = generate_container_sas(
            self._account_name,
            container,
            account_key=self._account_key,
            permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
            expiry=expiry,
        )
        resources.append(
            IngestionResource(
                "TempStorage", f"{self._blobs.url.rstrip('/')}/{container}?{container_sas}"
            )
        )
        resources.append(IngestionResource("IngestionsStatusTable", self._status_table_url()))
        return resources

    def _queue_url(self, name: str, permission: QueueSasPermissions, expiry: datetime) -> str:
        queue = self._prefix + name
        sas = generate_queue_sas(
            self._account_name, queue, self._account_key, permission=permission, expiry=expiry
        )
        return f"{self._queues.url.rstrip('/')}/{queue}?{sas}"

    def _status_table_url(self) -> str:
        # The SDK only checks that a status table is listed; it would read it only for
        # ReportMethod Table, which the emulator does not implement.
        endpoint = self._table_endpoint or self._queues.url
        return f"{endpoint.rstrip('/')}/{self._prefix}{STATUS_TABLE}"
