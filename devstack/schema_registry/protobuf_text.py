"""``.proto`` text → serialized ``FileDescriptorProto``, the registry's ``format=serialized``.

confluent-kafka's Python deserializers (and the sink) ask for Protobuf schemas in serialized
form, while Java and Go producers register ``.proto`` text. Confluent's registry converts
between the two; this one compiles text with ``protoc`` from grpcio-tools (a development
dependency), with the schema's references as the files it imports.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from google.protobuf import descriptor_pb2

from devstack.schema_registry.errors import RegistryError, invalid_schema
from devstack.schema_registry.schemas import is_serialized_protobuf

MAIN_FILE = "schema.proto"


def serialized_protobuf(schema: str, imports: Mapping[str, str]) -> str:
    """Base64 ``FileDescriptorProto`` of ``schema`` (returned as is if already serialized).

    ``imports`` maps each import path to its schema, as text or serialized.
    """
    if is_serialized_protobuf(schema):
        return schema
    with tempfile.TemporaryDirectory(prefix="registry-protoc-") as work:
        root = Path(work)
        descriptor_sets: list[str] = []
        for name, text in {**imports, MAIN_FILE: schema}.items():
            if is_serialized_protobuf(text):
                # an import already in descriptor form goes to protoc as a descriptor set
                file = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(text))
                file.name = name
                path = root / f"set-{len(descriptor_sets)}.pb"
                path.write_bytes(descriptor_pb2.FileDescriptorSet(file=[file]).SerializeToString())
                descriptor_sets.append(str(path))
            else:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_text(text)
        out = root / "out.pb"
        command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", *_well_known_include()]
        if descriptor_sets:
            command.append(f"--descriptor_set_in={':'.join(descriptor_sets)}")
        command += [f"--descriptor_set_out={out}", MAIN_FILE]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise invalid_schema(f"protoc: {result.stderr.strip() or result.stdout.strip()}")
        (compiled,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return base64.b64encode(compiled.SerializeToString()).decode("ascii")


def _well_known_include() -> list[str]:
    """grpcio-tools ships google/protobuf/*.proto beside protoc."""
    try:
        import grpc_tools
    except ImportError as missing:
        raise RegistryError(
            501,
            50101,
            "serving .proto text as format=serialized needs grpcio-tools (pip install -e '.[dev]')",
        ) from missing
    return [f"-I{Path(grpc_tools.__file__).parent / '_proto'}"]
