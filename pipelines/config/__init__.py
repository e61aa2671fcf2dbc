"""The sink's settings: a typed model, loaded from YAML or the Java connector's config.

Import from here; the modules behind it are private to this package::

    settings = load_settings(config_path(option))       # -c FILE or $KUSTO_SINK_CONFIG
    consumer = Consumer(kafka_client_config(settings.kafka, consumer=True)
                        | {"group.id": settings.group_id})
"""

from pipelines.config.command import import_config
from pipelines.config.connect import (
    CONVERTER_CLASSES,
    LoadedSettings,
    import_connect,
    settings_from_connect,
)
from pipelines.config.files import CONFIG_ENV, config_path, load_settings, read_settings, to_yaml
from pipelines.config.kafka_client import kafka_client_config
from pipelines.config.kafka_settings import (
    KafkaConnection,
    KafkaSecurity,
    KafkaSettings,
    OAuthBearerSettings,
)
from pipelines.config.kusto_settings import (
    KUSTO_HOST_SUFFIXES,
    AuthSettings,
    KustoSettings,
    ProxySettings,
    is_loopback_url,
    query_url_for,
)
from pipelines.config.model import (
    FORMATS,
    ConverterSettings,
    DeadLetterSettings,
    RetrySettings,
    SinkSettings,
    TopicMapping,
)
from pipelines.config.properties import parse_properties
from pipelines.config.references import Secret
from pipelines.errors import ConfigError, Problem

__all__ = [
    "CONFIG_ENV",
    "CONVERTER_CLASSES",
    "FORMATS",
    "KUSTO_HOST_SUFFIXES",
    "AuthSettings",
    "ConfigError",
    "ConverterSettings",
    "DeadLetterSettings",
    "KafkaConnection",
    "KafkaSecurity",
    "KafkaSettings",
    "KustoSettings",
    "LoadedSettings",
    "OAuthBearerSettings",
    "Problem",
    "ProxySettings",
    "RetrySettings",
    "Secret",
    "SinkSettings",
    "TopicMapping",
    "config_path",
    "import_config",
    "import_connect",
    "is_loopback_url",
    "kafka_client_config",
    "load_settings",
    "parse_properties",
    "query_url_for",
    "read_settings",
    "settings_from_connect",
    "to_yaml",
]
