"""Azurite of the local stack, through the Azure SDKs the sink uses."""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from devstack.stack import StackConfig

pytestmark = pytest.mark.stack


def test_blob_round_trip(stack: StackConfig, unique_name: str) -> None:
    container_name = unique_name.replace("_", "-")
    with BlobServiceClient.from_connection_string(stack.storage_connection_string) as service:
        container = service.create_container(container_name)
        container.upload_blob("batch.json.gz", b"\x1f\x8b payload")

        downloaded = container.download_blob("batch.json.gz").readall()

    assert downloaded == b"\x1f\x8b payload"


def test_queue_round_trip(stack: StackConfig, unique_name: str) -> None:
    queue_name = unique_name.replace("_", "-")
    with QueueClient.from_connection_string(stack.storage_connection_string, queue_name) as queue:
        queue.create_queue()
        queue.send_message("ingest me")

        received = [message.content for message in queue.receive_messages()]

    assert received == ["ingest me"]
