"""The demo's data: three topics of realistic events (JSON, CSV, Avro) and their Kusto tables.

``prepare`` creates the topics, the Kusto database, tables and ingestion mappings, and
registers the Avro schema; ``python -m devstack.demo --rate N`` then produces a steady
stream until stopped. The sink's settings for the demo are ``devstack/demo.yaml``.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from devstack import kafka
from devstack.stack import StackConfig

SETTINGS = Path(__file__).with_name("demo.yaml")
DATABASE = "demo"
TOPICS = {"orders": 3, "clicks": 3, "payments": 3}

PAYMENT_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Payment",
        "namespace": "demo",
        "fields": [
            {"name": "payment_id", "type": "string"},
            {"name": "order_id", "type": "long"},
            {"name": "amount", "type": "double"},
            {"name": "method", "type": "string"},
            {"name": "ts", "type": "string"},
        ],
    }
)

TABLES = {
    "Orders": "(order_id:long, customer:string, total:real, currency:string, "
    "items:dynamic, ts:datetime)",
    "Clicks": "(ts:datetime, user:string, page:string, duration_ms:long, referrer:string)",
    "Payments": "(payment_id:string, order_id:long, amount:real, method:string, ts:datetime)",
}
MAPPINGS = {
    ("Orders", "json", "OrdersMapping"): [
        {"column": c, "Properties": {"Path": f"$.{c}"}}
        for c in ("order_id", "customer", "total", "currency", "items", "ts")
    ],
    ("Clicks", "csv", "ClicksMapping"): [
        {"column": c, "Properties": {"Ordinal": str(i)}}
        for i, c in enumerate(("ts", "user", "page", "duration_ms", "referrer"))
    ],
    ("Payments", "avro", "PaymentsMapping"): [
        {"column": c, "Properties": {"Field": c}}
        for c in ("payment_id", "order_id", "amount", "method", "ts")
    ],
}


def environment(config: StackConfig) -> dict[str, str]:
    """The variables ``demo.yaml`` refers to."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": config.bootstrap_servers,
        "KUSTO_URL": config.kusto_url,
        "SCHEMA_REGISTRY_URL": config.registry_url,
        "KUSTO_SINK_CONFIG": str(SETTINGS),
    }


def prepare(config: StackConfig) -> None:
    """Topics, Kusto database, tables and mappings; safe to call again."""
    admin = AdminClient({"bootstrap.servers": config.bootstrap_servers})
    existing = admin.list_topics(timeout=30).topics
    for topic, partitions in TOPICS.items():
        if topic not in existing:
            kafka.create_topic(config.bootstrap_servers, topic, partitions)
    kcsb = KustoConnectionStringBuilder.with_no_authentication(config.kusto_url)
    with KustoClient(kcsb) as kusto:
        kusto.execute_mgmt(None, f".create database {DATABASE} ifnotexists")
        for table, columns in TABLES.items():
            kusto.execute_mgmt(DATABASE, f".create-merge table {table} {columns}")
        for (table, kind, name), mapping in MAPPINGS.items():
            kusto.execute_mgmt(
                DATABASE,
                f".create-or-alter table {table} ingestion {kind} mapping '{name}' "
                f"'{json.dumps(mapping)}'",
            )


def _order(n: int, rng: random.Random, now: datetime) -> dict[str, object]:
    items = [
        {"sku": f"SKU-{rng.randrange(1000):04d}", "qty": rng.randint(1, 4)}
        for _ in range(rng.randint(1, 3))
    ]
    return {
        "order_id": n,
        "customer": f"customer-{rng.randrange(5000)}",
        "total": round(rng.uniform(5, 500), 2),
        "currency": rng.choice(["EUR", "USD", "GBP"]),
        "items": items,
        "ts": now.isoformat(),
    }


def _click(rng: random.Random, now: datetime) -> str:
    page = rng.choice(["/", "/search", "/product", "/cart", "/checkout"])
    referrer = rng.choice(["", "google", "newsletter", "ads"])
    user = f"user-{rng.randrange(20000)}"
    return f"{now.isoformat()},{user},{page},{rng.randint(50, 30000)},{referrer}"


def produce(config: StackConfig, rate: float, seconds: float | None = None) -> int:
    """Produce about ``rate`` events a second across the three topics; returns the count."""
    producer = Producer({"bootstrap.servers": config.bootstrap_servers, "linger.ms": 50})
    registry = SchemaRegistryClient({"url": config.registry_url})
    to_avro = AvroSerializer(registry, PAYMENT_SCHEMA)
    payments_ctx = SerializationContext("payments", MessageField.VALUE)
    rng = random.Random(7)
    stop_at = time.monotonic() + seconds if seconds else None
    sent = 0
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    try:
        while running and (stop_at is None or time.monotonic() < stop_at):
            tick = time.monotonic()
            now = datetime.now(UTC)
            for _ in range(max(1, int(rate / 10))):
                order = _order(sent, rng, now)
                producer.produce("orders", json.dumps(order).encode(), key=str(sent).encode())
                producer.produce("clicks", _click(rng, now).encode())
                payment = {
                    "payment_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "order_id": sent,
                    "amount": order["total"],
                    "method": rng.choice(["card", "paypal", "invoice"]),
                    "ts": now.isoformat(),
                }
                producer.produce("payments", to_avro(payment, payments_ctx))
                sent += 1
            producer.poll(0)
            time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush(10)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description="Produce the demo's events")
    parser.add_argument("--rate", type=float, default=200.0, help="events a second per topic")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    args = parser.parse_args()
    config = StackConfig.from_env()
    prepare(config)
    produce(config, args.rate, args.seconds)


if __name__ == "__main__":
    main()
