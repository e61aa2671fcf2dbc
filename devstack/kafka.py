"""Apache Kafka in KRaft mode (one combined broker + controller), run from Maven Central jars.

The jars are resolved by Maven from `pom.xml` beside this file into `<devstack>/lib/kafka`,
once: a stamp holding the pom's hash makes later fetches a no-op. Storage is formatted once,
so topics and offsets survive a stop and start; `up --fresh` wipes the data dir instead.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from devstack.process import Server, StackError, free_port, start, stop, wait_healthy

POM = Path(__file__).with_name("pom.xml")
HEALTH_TOPIC = "devstack-health"
# Class-data-sharing archive of the classes a broker loads, kept beside the jars it was
# made from: later starts map it instead of parsing ~45 jars (about twice as fast to
# "started" on a busy 2-core machine: 19-24 s -> 11 s measured).
CLASS_ARCHIVE = "kafka-classes.jsa"
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx1G",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

# Chosen for a single-node test broker: internal topics cannot have more replicas than
# brokers, and fewer internal partitions make the (often repeated) start-up faster.
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dirs}
num.partitions=1
auto.create.topics.enable=true
delete.topic.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join groups often; the default 3 s wait for more members only slows them down.
group.initial.rebalance.delay.ms=0
"""

# Kafka logs through log4j2; everything goes to stdout, which the stack sends to the log file.
LOG4J2_PROPERTIES = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


def fetch_jars(lib_dir: Path) -> bool:
    """Resolve Kafka's jars with Maven into `lib_dir` unless the pom is unchanged since last
    time, and record their class archive if missing. True when it did either."""
    stamp = lib_dir / ".pom-sha256"
    pom_hash = hashlib.sha256(POM.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == pom_hash:
        return _train_class_archive(lib_dir)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("kafka: Maven (`mvn`) is not on PATH; it is needed to fetch Kafka's jars")
    staging = lib_dir.with_name(lib_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn,
        "--batch-mode",
        "--quiet",
        "--no-transfer-progress",
        "-Dstyle.color=never",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"kafka: Maven could not fetch the jars of {POM} (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    shutil.rmtree(lib_dir, ignore_errors=True)
    staging.rename(lib_dir)
    stamp.write_text(pom_hash)
    _train_class_archive(lib_dir)
    return True


def _train_class_archive(lib_dir: Path) -> bool:
    """Run a throw-away broker once with `-XX:ArchiveClassesAtExit` to record the class
    archive, unless it exists (or an earlier attempt failed). True when it made one.

    Only an archive that a JVM then maps with `-Xshare:on` is kept: a broken one would
    crash every later start instead of merely slowing it.
    """
    archive = lib_dir / CLASS_ARCHIVE
    failed_marker = lib_dir / (CLASS_ARCHIVE + ".failed")
    if archive.exists() or failed_marker.exists():
        return False
    partial = lib_dir / (CLASS_ARCHIVE + ".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="kafka-classes-") as scratch:
        home = Path(scratch)
        server = kafka_server(
            home, lib_dir, home / "kafka.log", free_port(), free_port(), archive_at_exit=partial
        )
        try:
            running = start(server, home / "run")
            try:
                wait_healthy(server, running, timeout=180)
            finally:
                stop(home / "run", server.name, timeout=180)  # the JVM writes it on exit
        except StackError:
            failed_marker.touch()
            return False
    check = [
        _java(),
        *JVM_OPTIONS,
        "-Xshare:on",  # fail, rather than fall back, if the archive cannot be used
        f"-XX:SharedArchiveFile={partial}",
        "-cp",
        f"{lib_dir}/*",
        "-version",
    ]
    if partial.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        partial.rename(archive)
        return True
    partial.unlink(missing_ok=True)
    failed_marker.touch()
    return False


def _new_cluster_id() -> str:
    # Kafka's Uuid text form: URL-safe base64 of 16 random bytes, unpadded; Kafka itself
    # never hands out ids starting with '-' since command lines would take them as flags.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _class_sharing(lib_dir: Path, archive_at_exit: Path | None) -> list[str]:
    if archive_at_exit is not None:
        return [f"-XX:ArchiveClassesAtExit={archive_at_exit}"]
    archive = lib_dir / CLASS_ARCHIVE
    return [f"-XX:SharedArchiveFile={archive}"] if archive.exists() else []


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError("kafka cannot start: `java` is not on PATH (Java 17 or newer needed)")
    return java


def kafka_server(
    home: Path,
    lib_dir: Path,
    log_file: Path,
    port: int,
    controller_port: int,
    *,
    name: str = "kafka",
    extra_properties: str = "",
    extra_ports: Mapping[str, int] | None = None,
    format_options: Sequence[str] = (),
    archive_at_exit: Path | None = None,
) -> Server:
    """The Kafka broker+controller as a stack server; `home` holds its config and data.

    `extra_properties` are appended to server.properties (a later key overrides an earlier
    one, so a secured broker can replace `listeners`); `format_options` go to the storage
    format (e.g. `--add-scram`, which KRaft accepts only there or through the admin API).
    `archive_at_exit` records the class archive (see `CLASS_ARCHIVE`) when the JVM exits.
    """
    properties = home / "server.properties"
    log4j = home / "log4j2.properties"
    data = home / "data"
    classpath = f"{lib_dir}/*"

    def prepare() -> None:
        java = _java()
        if not any(lib_dir.glob("kafka_2.13-*.jar")):
            raise StackError(f"kafka cannot start: no Kafka jars in {lib_dir}; run fetch first")
        home.mkdir(parents=True, exist_ok=True)
        properties.write_text(
            SERVER_PROPERTIES.format(port=port, controller_port=controller_port, log_dirs=data)
            + extra_properties
        )
        log4j.write_text(LOG4J2_PROPERTIES)
        if (data / "meta.properties").exists():
            return
        format_command = [
            java,
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            _new_cluster_id(),
            "-c",
            str(properties),
            *format_options,
        ]
        result = subprocess.run(format_command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(
                f"kafka: formatting storage in {data} failed (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )

    command = [
        shutil.which("java") or "java",
        *JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={log4j}",
        *_class_sharing(lib_dir, archive_at_exit),
        "-cp",
        classpath,
        "kafka.Kafka",
        str(properties),
    ]
    bootstrap = f"127.0.0.1:{port}"
    return Server(
        name=name,
        command=command,
        ports={"broker": port, "controller": controller_port, **(extra_ports or {})},
        health=lambda: round_trip(bootstrap),
        log_file=log_file,
        data_dir=home,
        prepare=prepare,
    )


# librdkafka logs every refused connection while a broker starts; the health probe expects
# those and reports its own verdict. A logger outside logging's tree (so no logging set-up
# elsewhere can route it to the root handlers) with a handler that drops everything.
_quiet = logging.Logger("devstack.kafka.probe")
_quiet.addHandler(logging.NullHandler())


def round_trip(bootstrap: str, timeout: float = 10.0) -> None:
    """Produce one record to the health topic and read it back; raises when that fails."""
    host, _, port = bootstrap.rpartition(":")
    # Fail fast while nothing listens yet: a client would wait out its whole timeout.
    socket.create_connection((host, int(port)), timeout=1.0).close()
    payload = uuid.uuid4().hex.encode()
    delivered: list[Message] = []
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(error)
        else:
            delivered.append(message)

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "message.timeout.ms": int(timeout * 1000),
            # A broker that just started refuses or fences at first; retry it often.
            "reconnect.backoff.max.ms": 500,
            "logger": _quiet,
        }
    )
    producer.produce(HEALTH_TOPIC, payload, on_delivery=on_delivery)
    producer.flush(timeout)
    if not delivered:
        reason = errors[0] if errors else "no delivery report"
        raise StackError(f"kafka at {bootstrap}: produce to {HEALTH_TOPIC} failed: {reason}")
    written = delivered[0]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "devstack-health",
            "enable.auto.commit": False,
            "logger": _quiet,
        }
    )
    try:
        consumer.assign([TopicPartition(HEALTH_TOPIC, written.partition(), written.offset())])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            if message.value() == payload:
                return
    finally:
        consumer.close()
    raise StackError(
        f"kafka at {bootstrap}: record produced to {HEALTH_TOPIC} "
        f"[{written.partition()}] offset {written.offset()} was not read back in {timeout} s"
    )


def create_topic(bootstrap: str, name: str, partitions: int, timeout: float = 30.0) -> None:
    """Create a topic and wait until the broker confirms it."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _quiet})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    futures[name].result(timeout)
