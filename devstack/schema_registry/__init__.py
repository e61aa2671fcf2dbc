"""A small schema registry speaking the Confluent REST API, for the local stack.

Run it with ``python -m devstack.schema_registry --host 127.0.0.1 --port 8081 --data-dir DIR``;
its state is one SQLite file in ``DIR``. It serves what confluent-kafka's
``SchemaRegistryClient`` and the Java serializers call: subjects, versions, schemas by id,
compatibility config, with Confluent's error codes.
"""

from devstack.schema_registry.app import build_app, create_app
from devstack.schema_registry.store import SchemaStore

__all__ = ["SchemaStore", "build_app", "create_app"]
