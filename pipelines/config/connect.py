"""Import the reference connector's own configuration (Kafka Connect properties or JSON).

Every property of the Kusto sink connector, current or from older releases, maps to a
field of :class:`SinkSettings`. Properties that only mean something to Kafka Connect are
accepted and reported as unused, with the reason; unknown ones are errors. The consumer
group becomes ``connect-<name>``, so a sink replacing the Java connector resumes from the
offsets that connector committed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.config.kafka_java import Translation, connection_from_java
from pipelines.config.model import SinkSettings
from pipelines.config.references import is_reference, resolve_references
from pipelines.config.validate import SettingName, validate_settings
from pipelines.errors import ConfigError, Problem

logger = logging.getLogger(__name__)

CONVERTER_CLASSES = {
    "org.apache.kafka.connect.storage.StringConverter": "string",
    "org.apache.kafka.connect.json.JsonConverter": "json",
    "io.confluent.connect.avro.AvroConverter": "avro",
    "io.confluent.connect.json.JsonSchemaConverter": "json_schema",
    "io.confluent.connect.protobuf.ProtobufConverter": "protobuf",
    "org.apache.kafka.connect.converters.ByteArrayConverter": "bytes",
}
CONNECTOR_CLASS = "com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector"

# Property -> our field. Several properties of one field are names from older releases.
_SCALARS = {
    "kusto.ingestion.url": "kusto.ingestion_url",
    "kusto.url": "kusto.ingestion_url",
    "kusto.query.url": "kusto.query_url",
    "aad.auth.strategy": "kusto.auth.strategy",
    "aad.auth.authority": "kusto.auth.tenant",
    "kusto.auth.authority": "kusto.auth.tenant",
    "aad.auth.appid": "kusto.auth.client_id",
    "kusto.auth.appid": "kusto.auth.client_id",
    "aad.auth.appkey": "kusto.auth.client_secret",
    "kusto.auth.appkey": "kusto.auth.client_secret",
    "aad.auth.accesstoken": "kusto.auth.token",
    "kusto.validation.table.enable": "kusto.validate_tables",
    "proxy.host": "kusto.proxy.host",
    "proxy.port": "kusto.proxy.port",
    "topics": "topics",
    "topics.regex": "topics_regex",
    "flush.size.bytes": "flush_size_bytes",
    "kusto.sink.flush_size": "flush_size_bytes",
    "flush.interval.ms": "flush_interval_ms",
    "kusto.sink.flush_interval_ms": "flush_interval_ms",
    "tempdir.path": "tempdir",
    "kusto.sink.tempdir": "tempdir",
    "behavior.on.error": "behavior_on_error",
    "errors.retry.max.time.ms": "retry.max_time_ms",
    "errors.retry.backoff.time.ms": "retry.backoff_ms",
    "tasks.max": "tasks_max",
}
_MAPPING_PROPERTIES = ("kusto.tables.topics.mapping", "kusto.tables.topics_mapping")

# Where a problem about a field nobody set should point the user: the property to set.
_NAMES = {path: prop for prop, path in reversed(_SCALARS.items())}  # current names win
_NAMES |= {
    "kusto": "kusto.ingestion.url",
    "kusto.auth": "aad.auth.strategy",
    "mappings": "kusto.tables.topics.mapping",
}
for _side in ("key", "value"):
    _NAMES |= {
        f"{_side}_converter": f"{_side}.converter",
        f"{_side}_converter.schema_registry_url": f"{_side}.converter.schema.registry.url",
        f"{_side}_converter.registry_password": f"{_side}.converter.basic.auth.user.info",
    }
for _path, _prefix in (
    ("kafka", "consumer.override."),
    ("dead_letter", "errors.deadletterqueue."),
    ("misc_dead_letter", "misc.deadletterqueue."),
):
    _NAMES |= {
        _path: f"{_prefix}topic.name" if _path != "kafka" else f"{_prefix}bootstrap.servers",
        f"{_path}.topic": f"{_prefix}topic.name",
        f"{_path}.bootstrap_servers": f"{_prefix}bootstrap.servers",
        f"{_path}.security": f"{_prefix}security.protocol",
        f"{_path}.security.sasl_mechanism": f"{_prefix}sasl.mechanism",
        f"{_path}.security.sasl_username": f"{_prefix}sasl.jaas.config",
        f"{_path}.security.sasl_password": f"{_prefix}sasl.jaas.config",
        f"{_path}.security.oauthbearer": f"{_prefix}sasl.jaas.config",
        f"{_path}.security.kerberos_principal": f"{_prefix}sasl.jaas.config",
    }

_CONNECT_ONLY = {
    "connector.class": "Kafka Connect's plugin class",
    "name": "used as the sink name",
    "errors.tolerance": "behavior.on.error decides what happens to bad records",
    "errors.log.enable": "the sink always logs errors",
    "errors.log.include.messages": "record contents are never logged",
    "config.action.reload": "a Kafka Connect worker setting",
    "header.converter": "record headers are not decoded",
    "kusto.sink.commit": "offsets are committed after Kusto confirms each batch",
    "kusto.sink.write_to_files": "batches are always staged as files",
}
_CONNECT_ONLY_PREFIXES = {
    "transforms": "single message transforms are not applied: records reach Kusto as read",
    "predicates": "single message transforms are not applied: records reach Kusto as read",
    "header.converter.": "record headers are not decoded",
    "producer.override.": "dead-letter producers use the *.deadletterqueue.* settings",
    "admin.override.": "admin clients use the consumer.override.* connection",
}
_REMOVED = {
    "kusto.auth.username": "user/password login to Kusto is gone from Azure AD; "
    "use aad.auth.strategy with an application or managed identity",
    "kusto.auth.password": "user/password login to Kusto is gone from Azure AD; "
    "use aad.auth.strategy with an application or managed identity",
}

# Java consumer settings that librdkafka knows, under its own name.
_CONSUMER_KEYS = {
    "client.id": "client.id",
    "client.rack": "client.rack",
    "fetch.min.bytes": "fetch.min.bytes",
    "fetch.max.bytes": "fetch.max.bytes",
    "fetch.max.wait.ms": "fetch.wait.max.ms",
    "max.partition.fetch.bytes": "max.partition.fetch.bytes",
    "isolation.level": "isolation.level",
    "session.timeout.ms": "session.timeout.ms",
    "receive.buffer.bytes": "socket.receive.buffer.bytes",
    "send.buffer.bytes": "socket.send.buffer.bytes",
    "reconnect.backoff.ms": "reconnect.backoff.ms",
    "reconnect.backoff.max.ms": "reconnect.backoff.max.ms",
    "metadata.max.age.ms": "metadata.max.age.ms",
    "connections.max.idle.ms": "connections.max.idle.ms",
}
_SOURCE_CONNECTION = {
    "bootstrap_servers": "consumer.override.bootstrap.servers",
    "security": "consumer.override.security.protocol",
}
_DEAD_LETTER_CONNECT_ONLY = {
    "topic.replication.factor": "create the dead-letter topic beforehand",
    "context.headers.enable": "dead letters always carry context headers",
}


@dataclass(frozen=True)
class LoadedSettings:
    """Settings as loaded, and the (Kafka Connect) properties that had no use here."""

    settings: SinkSettings
    unused: dict[str, str]  # property -> why it is not used


def parse_lenient_json(text: str) -> Any:
    """JSON that may quote with ``'`` as well, as the reference's mapping parser allows."""
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char in "\"'":
            end, chunk = index + 1, []
            while end < len(text) and text[end] != char:
                if text[end] == "\\" and end + 1 < len(text):
                    chunk.append(
                        text[end : end + 2] if char == '"' or text[end + 1] != "'" else "'"
                    )
                    end += 2
                    continue
                chunk.append('\\"' if text[end] == '"' else text[end])
                end += 1
            out.append('"' + "".join(chunk) + '"')
            index = end + 1
            continue
        out.append(char)
        index += 1
    return json.loads("".join(out))


class _Importer:
    """Walks the properties once, filling a raw settings dict and noting what went where."""

    def __init__(self, name: str) -> None:
        self.result = Translation(fields={"name": name, "group_id": f"connect-{name}"})
        self.groups: dict[str, dict[str, str]] = {}
        self.tolerance = "none"  # errors.tolerance, Kafka Connect's default

    def put(self, path: str, value: Any, setting: str) -> None:
        earlier = self.result.origins.get(path)
        target = self.result.fields
        *parents, last = path.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        if earlier is not None and target[last] != value:
            self.problem(setting, f"conflicts with {earlier}, which names the same setting")
            return
        target[last] = value
        self.result.origins[path] = setting

    def problem(self, setting: str, message: str) -> None:
        self.result.problems.append(Problem(setting, message))

    def take(self, key: str, value: str) -> None:
        if key == "proxy.port" and value.strip() == "-1":
            self.result.unused[key] = "-1 is the reference's way of saying no proxy"
        elif key in _SCALARS:
            self.put(_SCALARS[key], value, key)
        elif key in _MAPPING_PROPERTIES:
            self.mappings(key, value)
        elif key in _REMOVED:
            self.problem(key, _REMOVED[key])
        elif key in _CONNECT_ONLY:
            if key == "connector.class" and value.strip() != CONNECTOR_CLASS:
                self.problem(key, f"{value} is not the Kusto sink ({CONNECTOR_CLASS})")
            elif key != "name":
                self.result.unused[key] = _CONNECT_ONLY[key]
            if key == "errors.tolerance":
                self.tolerance = value.strip().lower()
        elif key.startswith(tuple(_CONNECT_ONLY_PREFIXES)):
            reason = next(r for p, r in _CONNECT_ONLY_PREFIXES.items() if key.startswith(p))
            self.result.unused[key] = reason
        else:
            for prefix in (
                "key.converter",
                "value.converter",
                "consumer.override.",
                "errors.deadletterqueue.",
                "misc.deadletterqueue.",
            ):
                if key.startswith(prefix):
                    self.groups.setdefault(prefix, {})[key.removeprefix(prefix)] = value
                    return
            if key.startswith("dlq."):  # the first releases' name of the misc dead-letter queue
                self.groups.setdefault("misc.deadletterqueue.", {})[key[4:]] = value
                return
            self.problem(key, "unknown property")

    def mappings(self, key: str, value: str) -> None:
        try:
            entries = parse_lenient_json(value)
        except ValueError as error:
            self.problem(key, f"not a JSON list of mappings: {error}")
            return
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            self.problem(key, "must be a JSON list of {topic, db, table, ...} objects")
            return
        # The reference treats an empty `mapping` or `format` as absent.
        cleaned = [{k: v for k, v in entry.items() if v not in ("", None)} for entry in entries]
        self.put("mappings", cleaned, key)

    def converter(self, side: str) -> None:
        props = self.groups.get(f"{side}.converter", {})
        class_name = props.pop("", None)
        field = f"{side}_converter"
        if class_name is None:
            if side == "value":
                self.problem(
                    "value.converter",
                    f"required: one of {', '.join(CONVERTER_CLASSES)}",
                )
            for key in props:
                self.result.unused[f"{side}.converter{key}"] = f"{side}.converter is not set"
            return
        kind = CONVERTER_CLASSES.get(class_name.strip())
        if kind is None:
            self.problem(
                f"{side}.converter",
                f"unknown converter {class_name} (supported: {', '.join(CONVERTER_CLASSES)})",
            )
            return
        self.put(f"{field}.kind", kind, f"{side}.converter")
        registry = kind in ("avro", "json_schema", "protobuf")
        if kind == "json" and ".schemas.enable" not in props:
            self.put(f"{field}.schemas_enable", "true", f"{side}.converter")  # Connect's default
        for key, value in props.items():
            setting = f"{side}.converter{key}"
            if key == ".schemas.enable" and kind == "json":
                self.put(f"{field}.schemas_enable", value, setting)
            elif key == ".schema.registry.url" and registry:
                self.put(f"{field}.schema_registry_url", value, setting)
            elif key in (".basic.auth.user.info", ".schema.registry.basic.auth.user.info"):
                if registry:
                    user, _, password = value.partition(":")
                    self.put(f"{field}.registry_username", user, setting)
                    self.put(f"{field}.registry_password", password, setting)
                else:
                    self.result.unused[setting] = f"no schema registry with {kind}"
            elif key == ".basic.auth.credentials.source" and value.upper() != "USER_INFO":
                self.problem(setting, "only USER_INFO credentials are supported")
            else:
                self.result.unused[setting] = f"a Kafka Connect converter option for {kind}"

    def connection(self, prefix: str, path: str) -> tuple[set[str], dict[str, str]]:
        props = self.groups.get(prefix, {})
        translation, handled = connection_from_java(props, prefix)
        for field, value in translation.fields.items():
            self.result.fields.setdefault(path, {})[field] = value
        self.result.origins.update(
            {f"{path}.{field}": name for field, name in translation.origins.items()}
        )
        self.result.unused.update(translation.unused)
        self.result.problems += translation.problems
        return handled, {k: v for k, v in props.items() if k not in handled}

    def consumer(self) -> None:
        prefix = "consumer.override."
        _, rest = self.connection(prefix, "kafka")
        if "bootstrap_servers" not in self.result.fields.setdefault("kafka", {}):
            self.problem(
                f"{prefix}bootstrap.servers",
                "required: Kafka Connect took the cluster from its worker's bootstrap.servers, "
                "the sink needs it here",
            )
        for key, value in rest.items():
            setting = f"{prefix}{key}"
            if key == "auto.offset.reset":
                self.put("kafka.auto_offset_reset", value, setting)
            elif key == "max.poll.interval.ms":
                self.put("kafka.max_poll_interval_ms", value, setting)
            elif key == "group.id":
                self.put("group_id", value, setting)
            elif key in _CONSUMER_KEYS:
                # librdkafka keys hold dots, so they cannot go through put()'s dotted path.
                kafka = self.result.fields.setdefault("kafka", {})
                kafka.setdefault("librdkafka", {})[_CONSUMER_KEYS[key]] = value
                self.result.origins[f"kafka.librdkafka.{_CONSUMER_KEYS[key]}"] = setting
            else:
                self.result.unused[setting] = "a Java consumer setting without effect here"

    def dead_letter(self, prefix: str, path: str) -> None:
        if prefix not in self.groups:
            return
        _, rest = self.connection(prefix, path)
        for key, value in rest.items():
            setting = f"{prefix}{key}"
            if key == "topic.name":
                self.put(f"{path}.topic", value, setting)
            elif key in _DEAD_LETTER_CONNECT_ONLY:
                self.result.unused[setting] = _DEAD_LETTER_CONNECT_ONLY[key]
            elif path == "misc_dead_letter":
                # The reference hands every misc.deadletterqueue.* property to its producer.
                self.result.unused[setting] = "the sink configures its dead-letter producer itself"
            else:
                self.problem(setting, "unknown property")
        fields = self.result.fields.get(path)
        if fields is None:
            return
        if path == "dead_letter" and "bootstrap_servers" not in fields:
            # Kafka Connect's own dead-letter queue lives on the worker's (source) cluster.
            source = self.result.fields.get("kafka", {})
            for field, setting in _SOURCE_CONNECTION.items():
                if field in source:
                    fields.setdefault(field, source[field])
                    self.result.origins[f"{path}.{field}"] = setting

    def tolerance_note(self) -> None:
        """Say how errors.tolerance=all differs here, where one setting covers every error."""
        behavior = self.result.fields.get("behavior_on_error", "fail")
        if self.tolerance == "all" and str(behavior).lower() == "fail":
            self.result.unused["errors.tolerance"] = (
                "Kafka Connect dead-lettered records that failed conversion even with "
                "behavior.on.error=fail; here behavior.on.error decides for them too, so the "
                "sink stops on such a record: set behavior.on.error=ignore or log to go on"
            )

    def finish(self) -> Translation:
        self.tolerance_note()
        self.converter("key")
        self.converter("value")
        self.consumer()
        self.dead_letter("errors.deadletterqueue.", "dead_letter")
        self.dead_letter("misc.deadletterqueue.", "misc_dead_letter")
        return self.result


def _namer(origins: Mapping[str, str]) -> SettingName:
    def name(path: str) -> str:
        candidate = path
        while candidate:
            if candidate in origins:
                setting = origins[candidate]
                return setting if candidate == path else f"{setting} ({path})"
            cut = max(candidate.rfind("."), candidate.rfind("["))
            candidate = candidate[:cut] if cut > 0 else ""
        return path

    return name


def _text(value: Any) -> str:
    """A Connect JSON value as the text Kafka Connect would have seen."""
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def import_connect(
    props: Mapping[str, Any], name: str, *, environ: Mapping[str, str] | None = None
) -> LoadedSettings:
    """Settings from a Kafka Connect config of the Kusto sink, and its unused properties.

    Raises:
        ConfigError: listing every problem, each naming the Connect property at fault.
    """
    environ = os.environ if environ is None else environ
    texts = {key: _text(value) for key, value in props.items()}
    # A JAAS config that is one reference as a whole must be resolved to be parsed; the
    # credentials in it then lose their reference (to_yaml asks for new variables).
    whole = {k: v for k, v in texts.items() if k.endswith("sasl.jaas.config") and is_reference(v)}
    resolved, problems = resolve_references(whole, environ)
    texts |= resolved
    for problem in problems:  # already reported; parsing the unresolved text would add noise
        texts.pop(problem.setting, None)
    importer = _Importer(name)
    for key, value in texts.items():
        importer.take(key, value)
    translation = importer.finish()
    setting_name = _namer({**_NAMES, **translation.origins})
    problems += translation.problems
    try:
        settings = validate_settings(translation.fields, environ=environ, setting_name=setting_name)
    except ConfigError as error:
        named = {problem.setting for problem in problems}
        problems += [p for p in error.problems if p.setting not in named]
    if problems:
        raise ConfigError(problems)
    return LoadedSettings(settings, dict(sorted(translation.unused.items())))


def settings_from_connect(props: Mapping[str, Any], name: str) -> SinkSettings:
    """Settings from a Kafka Connect config; logs a warning naming each unused property."""
    imported = import_connect(props, name)
    for setting, reason in imported.unused.items():
        logger.warning("Kafka Connect property %s is not used: %s", setting, reason)
    return imported.settings
