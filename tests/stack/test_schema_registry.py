"""The development schema registry, driven by confluent-kafka's own client and serializers."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2

from devstack.schema_registry.testing import running_registry

pytestmark = pytest.mark.stack

USER_V1 = {
    "type": "record",
    "name": "User",
    "namespace": "demo",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
}
USER_V2 = {  # a new field with a default: BACKWARD compatible
    **USER_V1,
    "fields": [*USER_V1["fields"], {"name": "email", "type": ["null", "string"], "default": None}],
}
USER_NO_DEFAULT = {**USER_V1, "fields": [*USER_V1["fields"], {"name": "email", "type": "string"}]}


@pytest.fixture
def registry_url(tmp_path: Path) -> Iterator[str]:
    with running_registry(tmp_path / "registry") as url:
        yield url


@pytest.fixture
def client(registry_url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry_url})


def avro(schema: dict[str, object]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


def test_register_is_idempotent_and_ids_are_global(client: SchemaRegistryClient) -> None:
    first = client.register_schema("users-value", avro(USER_V1))
    # same schema, other whitespace, fresh client (no cache): same id
    fresh = SchemaRegistryClient({"url": client.config()["url"]})
    again = fresh.register_schema("users-value", Schema(json.dumps(USER_V1, indent=2), "AVRO"))
    other_subject = fresh.register_schema("admins-value", avro(USER_V1))
    assert first == again == other_subject
    assert fresh.get_versions("users-value") == [1]
    assert sorted(fresh.get_subjects()) == ["admins-value", "users-value"]


def test_versions_lookup_and_schema_by_id(client: SchemaRegistryClient) -> None:
    id1 = client.register_schema("users-value", avro(USER_V1))
    id2 = client.register_schema("users-value", avro(USER_V2))
    assert id1 != id2
    latest = client.get_latest_version("users-value")
    assert (latest.version, latest.schema_id) == (2, id2)
    assert json.loads(client.get_version("users-value", 1).schema.schema_str) == USER_V1
    found = client.lookup_schema("users-value", avro(USER_V1))
    assert (found.version, found.schema_id) == (1, id1)
    by_id = client.get_schema(id2)
    assert (by_id.schema_type, json.loads(by_id.schema_str)) == ("AVRO", USER_V2)
    assert [(v.subject, v.version) for v in client.get_schema_versions(id2)] == [("users-value", 2)]


def test_errors_carry_confluent_codes(client: SchemaRegistryClient, registry_url: str) -> None:
    with pytest.raises(SchemaRegistryError) as unknown_id:
        client.get_schema(4242)
    assert (unknown_id.value.http_status_code, unknown_id.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as unknown_subject:
        client.get_latest_version("nope")
    assert unknown_subject.value.error_code == 40401
    with pytest.raises(SchemaRegistryError) as bad_schema:
        client.register_schema("bad-value", Schema('{"type": "recordd"}', "AVRO"))
    assert bad_schema.value.error_code == 42201
    response = httpx.get(f"{registry_url}/subjects/nope/versions")
    assert response.headers["content-type"] == "application/vnd.schemaregistry.v1+json"
    assert response.json() == {"error_code": 40401, "message": "Subject 'nope' not found."}
    not_json = httpx.put(f"{registry_url}/config", content=b"{nope")
    assert (not_json.status_code, not_json.json()["error_code"]) == (400, 400)
    bad_level = httpx.put(f"{registry_url}/config", json={"compatibility": "SOMETIMES"})
    assert (bad_level.status_code, bad_level.json()["error_code"]) == (422, 42203)
    bad_version = httpx.get(f"{registry_url}/subjects/nope/versions/0")
    assert bad_version.json()["error_code"] == 42202


def test_backward_compatibility_is_enforced_for_avro(client: SchemaRegistryClient) -> None:
    client.register_schema("users-value", avro(USER_V1))
    assert client.test_compatibility("users-value", avro(USER_V2))
    assert not client.test_compatibility("users-value", avro(USER_NO_DEFAULT))
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("users-value", avro(USER_NO_DEFAULT))
    assert refused.value.http_status_code == 409
    assert "email" in refused.value.error_message
    client.set_compatibility("users-value", "NONE")
    assert client.get_compatibility("users-value") == "NONE"
    client.register_schema("users-value", avro(USER_NO_DEFAULT))
    assert client.get_versions("users-value") == [1, 2]


def test_global_config_and_subject_fallback(
    registry_url: str, client: SchemaRegistryClient
) -> None:
    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility(level="FULL")
    assert client.get_compatibility() == "FULL"
    response = httpx.get(f"{registry_url}/config/users-value")
    assert response.json()["error_code"] == 40408
    fallback = httpx.get(f"{registry_url}/config/users-value", params={"defaultToGlobal": "true"})
    assert fallback.json() == {"compatibilityLevel": "FULL"}


def test_soft_then_permanent_delete(client: SchemaRegistryClient) -> None:
    schema_id = client.register_schema("users-value", avro(USER_V1))
    client.register_schema("users-value", avro(USER_V2))
    assert client.delete_version("users-value", 2) == 2
    assert client.get_versions("users-value") == [1]
    with pytest.raises(SchemaRegistryError) as not_soft_deleted:
        client.delete_subject("users-value", permanent=True)
    assert not_soft_deleted.value.error_code == 40405
    assert client.delete_subject("users-value") == [1]
    assert client.get_subjects() == []
    assert client.delete_subject("users-value", permanent=True) == [1, 2]
    # ids stay resolvable after their subject is gone: records in Kafka still carry them
    assert client.get_schema(schema_id).schema_type == "AVRO"


def test_references_resolve_named_types(client: SchemaRegistryClient) -> None:
    address = {"type": "record", "name": "Address", "namespace": "demo", "fields": [
        {"name": "city", "type": "string"}]}  # fmt: skip
    client.register_schema("address", avro(address))
    person = {"type": "record", "name": "Person", "namespace": "demo", "fields": [
        {"name": "home", "type": "demo.Address"}]}  # fmt: skip
    ref = SchemaReference("demo.Address", "address", 1)
    schema_id = client.register_schema("people-value", Schema(json.dumps(person), "AVRO", [ref]))
    fetched = client.get_schema(schema_id)
    assert [(r.name, r.subject, r.version) for r in fetched.references] == [
        ("demo.Address", "address", 1)
    ]
    assert client.get_referenced_by("address", 1) == [schema_id]
    with pytest.raises(SchemaRegistryError) as still_used:
        client.delete_subject("address")
    assert still_used.value.error_code == 42206
    with pytest.raises(SchemaRegistryError) as unresolved:
        client.register_schema("orphans-value", Schema(json.dumps(person), "AVRO"))
    assert unresolved.value.error_code == 42201


def test_avro_and_json_serializers_round_trip(client: SchemaRegistryClient) -> None:
    ctx = SerializationContext("users", MessageField.VALUE)
    avro_out = AvroSerializer(client, json.dumps(USER_V1))({"name": "ada", "age": 36}, ctx)
    assert avro_out[0] == 0 and client.get_subjects() == ["users-value"]
    assert AvroDeserializer(client)(avro_out, ctx) == {"name": "ada", "age": 36}

    json_schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "title": "N"}
    json_ctx = SerializationContext("counts", MessageField.VALUE)
    json_out = JSONSerializer(json.dumps(json_schema), client)({"n": 7}, json_ctx)
    schema_id = int.from_bytes(json_out[1:5], "big")
    assert client.get_schema(schema_id).schema_type == "JSON"
    assert JSONDeserializer(None, schema_registry_client=client)(json_out, json_ctx) == {"n": 7}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "devstack.schema_registry", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port), "--data-dir", str(data_dir)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/subjects").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"registry on port {port} did not answer GET /subjects within 20 s")


def _stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(timeout=15)


def test_command_line_server_keeps_ids_across_restarts(tmp_path: Path) -> None:
    port = int(os.environ.get("TEST_REGISTRY_PORT", _free_port()))
    url = f"http://127.0.0.1:{port}"
    process = _start_server(port, tmp_path)
    try:
        schema_id = SchemaRegistryClient({"url": url}).register_schema("t-value", avro(USER_V1))
    finally:
        _stop_server(process)
    process = _start_server(port, tmp_path)
    try:
        assert SchemaRegistryClient({"url": url}).get_schema(schema_id).schema_type == "AVRO"
        assert httpx.get(f"{url}/subjects").json() == ["t-value"]
    finally:
        _stop_server(process)


def _record(*fields: dict[str, object]) -> dict[str, object]:
    return {"type": "record", "name": "R", "fields": list(fields)}


INT_ID = {"name": "id", "type": "int"}
LONG_ID = {"name": "id", "type": "long"}
COLOR = {"name": "c", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "BLUE"]}}
RED_ONLY = {"name": "c", "type": {"type": "enum", "name": "Color", "symbols": ["RED"]}}


@pytest.mark.parametrize(
    ("level", "old", "new", "compatible"),
    [
        ("BACKWARD", _record(INT_ID), _record(LONG_ID), True),  # int widens to long
        ("BACKWARD", _record(LONG_ID), _record(INT_ID), False),
        ("FORWARD", _record(INT_ID), _record(LONG_ID), False),
        ("BACKWARD", _record(INT_ID), _record(), True),  # a reader may ignore fields
        ("FORWARD", _record(INT_ID), _record(), False),  # old readers need id
        ("BACKWARD", _record(COLOR), _record(RED_ONLY), False),  # BLUE could not be read
        ("BACKWARD", _record(RED_ONLY), _record(COLOR), True),
        (
            "FULL",
            _record(INT_ID),
            _record(INT_ID, {"name": "x", "type": "int", "default": 0}),
            True,
        ),
        ("NONE", _record(INT_ID), {"type": "string"}, True),
        ("BACKWARD", _record(INT_ID), {"type": "string"}, False),
    ],
)
def test_avro_compatibility_rules(
    client: SchemaRegistryClient, level: str, old: dict, new: dict, compatible: bool
) -> None:
    client.set_compatibility("s-value", level)
    client.register_schema("s-value", avro(old))
    assert client.test_compatibility("s-value", avro(new)) is compatible


def test_transitive_levels_check_every_version(client: SchemaRegistryClient) -> None:
    client.set_compatibility("s-value", "NONE")
    client.register_schema("s-value", avro(_record(INT_ID)))
    client.register_schema("s-value", avro(_record()))
    client.set_compatibility("s-value", "FORWARD")
    assert client.test_compatibility("s-value", avro(_record()))
    client.set_compatibility("s-value", "FORWARD_TRANSITIVE")
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("s-value", avro(_record({"name": "y", "type": "int"})))
    assert refused.value.http_status_code == 409


UNITS_PROTO = """syntax = "proto3";
package iot;
enum Unit { CELSIUS = 0; KELVIN = 1; }
"""
READING_PROTO = """syntax = "proto3";
package iot;
import "units.proto";
import "google/protobuf/timestamp.proto";
message Reading {
  string sensor = 1;
  double value = 2;
  Unit unit = 3;
  google.protobuf.Timestamp at = 4;
}
"""


def test_proto_text_is_served_serialized_with_its_imports(client: SchemaRegistryClient) -> None:
    client.register_schema("units", Schema(UNITS_PROTO, "PROTOBUF"))
    ref = SchemaReference("units.proto", "units", 1)
    schema_id = client.register_schema("readings-value", Schema(READING_PROTO, "PROTOBUF", [ref]))
    assert client.get_schema(schema_id).schema_str.strip() == READING_PROTO.strip()
    serialized = client.get_version("readings-value", 1, fmt="serialized").schema.schema_str
    file = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(serialized))
    assert list(file.dependency) == ["units.proto", "google/protobuf/timestamp.proto"]
    assert [f.name for f in file.message_type[0].field] == ["sensor", "value", "unit", "at"]


def test_invalid_proto_text_is_refused(client: SchemaRegistryClient) -> None:
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("bad-value", Schema("syntax = 'proto3'; message {", "PROTOBUF"))
    assert refused.value.error_code == 42201
    assert "protoc" in refused.value.error_message
