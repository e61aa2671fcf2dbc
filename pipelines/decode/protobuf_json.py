"""Protobuf messages → JSON-ready values, as ``json_format.MessageToDict`` writes them.

Same output as ``MessageToDict(message, preserving_proto_field_name=True,
always_print_fields_with_no_presence=True)``, several times faster: each message type gets a
converter built once from its descriptor (field names, which fields have presence, one small
function per field type), where MessageToDict lists the set fields and dispatches on each
field's type for every record. Timestamp, Duration, FieldMask and the wrappers are written
by their own methods, as MessageToDict does; the other well-known types (Struct, Value, Any,
...) and messages with extensions are left to MessageToDict itself.

Differences from the protobuf package's conversion: none known, except enum values with a
JSON-name option (an Editions feature), which are written by their plain names.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

Convert = Callable[[Any], Any]

_INT64 = {FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64}
_FLOAT32 = struct.Struct("<f")


def message_to_dict(message: Message) -> Any:
    """The protobuf package's own conversion, with the sink's options."""
    return MessageToDict(
        message,
        preserving_proto_field_name=True,
        # Kafka Connect's converter writes proto3 defaults too; so do we
        always_print_fields_with_no_presence=True,
    )


class MessageConverter:
    """Converts messages of any type, building each type's converter on first use."""

    def __init__(self) -> None:
        # Keyed by the descriptor itself, not its name: two versions of a registered schema
        # share a message name, and a newer one's added fields must not be dropped.
        self._by_type: dict[Descriptor, Convert] = {}

    def to_dict(self, message: Message) -> Any:
        return self._converter(message.DESCRIPTOR)(message)

    def _converter(self, descriptor: Descriptor) -> Convert:
        convert = self._by_type.get(descriptor)
        if convert is None:
            if descriptor.full_name in _AS_JSON_STRING:
                convert = _json_string
            elif descriptor.file.name == "google/protobuf/wrappers.proto":
                convert = self._wrapper(descriptor)
            elif descriptor.file.package == "google.protobuf" or descriptor.extension_ranges:
                convert = message_to_dict
            else:
                convert = self._build(descriptor)
            self._by_type[descriptor] = convert
        return convert

    def _wrapper(self, descriptor: Descriptor) -> Convert:
        """A wrapper (Int64Value, StringValue, ...) is written as the value it wraps."""
        convert_value = self._value_converter(descriptor.fields_by_name["value"])
        return lambda message: convert_value(message.value)

    def _build(self, descriptor: Descriptor) -> Convert:
        fields = [
            (field.name, field.has_presence, self._field_converter(field))
            for field in descriptor.fields
        ]

        def convert(message: Message) -> dict[str, Any]:
            out = {}
            for name, has_presence, convert_field in fields:
                if not has_presence or message.HasField(name):
                    out[name] = convert_field(getattr(message, name))
            return out

        return convert

    def _field_converter(self, field: FieldDescriptor) -> Convert:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            convert_value = self._value_converter(value_field)
            return lambda entries: {
                _map_key(key): convert_value(value) for key, value in entries.items()
            }
        convert = self._value_converter(field)
        if field.is_repeated:
            return lambda values: [convert(value) for value in values]
        return convert

    def _value_converter(self, field: FieldDescriptor) -> Convert:
        cpp_type = field.cpp_type
        if cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            message_type = field.message_type
            # looked up per call, not now: a message type may contain itself
            return lambda value: self._converter(message_type)(value)
        if cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            if field.enum_type.full_name == "google.protobuf.NullValue":
                return lambda value: None
            names = {
                number: value.name for number, value in field.enum_type.values_by_number.items()
            }
            return lambda value: names.get(value, value)
        if field.type == FieldDescriptor.TYPE_BYTES:
            return lambda value: base64.b64encode(value).decode("ascii")
        if cpp_type in _INT64:
            return str
        if cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
            return _float32
        if cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
            return _double
        return _same


# well-known types whose JSON is a string of their own making (RFC 3339 time, "1.5s", paths)
_AS_JSON_STRING = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
}


def _json_string(message: Any) -> Any:
    return message.ToJsonString()


def _same(value: Any) -> Any:
    return value


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _special_float(value: float) -> str | None:
    """ProtoJSON's names for the floats JSON has no number for."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return None


def _double(value: float) -> float | str:
    return _special_float(value) or value


def _float32(value: float) -> float | str:
    """The shortest decimal that reads back as the same 32-bit float (0.9, not 0.899999976)."""
    special = _special_float(value)
    if special is not None:
        return special
    for precision in range(6, 10):  # every 32-bit float has 6 to 9 significant digits
        shortest = float(f"{value:.{precision}g}")
        if _FLOAT32.unpack(_FLOAT32.pack(shortest))[0] == value:
            return shortest
    return value
