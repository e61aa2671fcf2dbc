"""Decoders that need no registry: JSON text, delimited text, whole files; and make_decoder."""

from __future__ import annotations

import io
import random

import orjson
import pyarrow as pa
import pyarrow.orc as pa_orc
import pyarrow.parquet as pa_parquet
import pytest
from confluent_kafka import Message

from pipelines.decode import Tombstone, make_decoder
from pipelines.errors import ConfigError, DecodeError
from pipelines.records import LineFraming, WholeFileFraming


def records(*values: bytes | str | None, start: int = 100) -> list[Message]:
    return [
        Message(topic="orders", partition=3, offset=start + i, value=value)
        for i, value in enumerate(values)
    ]


def reasons(dead_letters: list) -> dict[int, str]:
    return {letter.record.offset(): str(letter.error) for letter in dead_letters}


# -- JSON ------------------------------------------------------------------------------


def test_json_good_run_is_one_chunk_of_the_original_bytes() -> None:
    values = [orjson.dumps({"id": i, "name": f"n{i}"}) for i in range(1000)]
    chunks, dead = make_decoder("json", "json").decode(records(*values))
    assert dead == []
    (chunk,) = chunks
    assert (chunk.format, chunk.framing) == ("json", LineFraming())
    assert chunk.offsets == list(range(100, 1100))
    assert chunk.payloads == values


def test_json_differing_field_types_across_records_are_fine() -> None:
    values = [b'{"a": 1}', b'{"a": "x"}', b'{"a": [1, {"b": null}]}']
    chunks, dead = make_decoder("string", "multijson").decode(records(*values))
    assert dead == [] and chunks[0].payloads == values


def test_json_poison_records_are_dead_lettered_with_their_reason() -> None:
    values = [
        b'{"ok": 1}',
        b'{"broken": ',
        b'{"bad": "\xff"}',
        b"[1, 2]",
        b"",
        None,
        b'{"a": 1}{"b": 2}',
        b'{"ok": 2}',
    ]
    chunks, dead = make_decoder("json", "json").decode(records(*values))
    assert chunks[0].offsets == [100, 107]  # one chunk across the gap
    assert chunks[0].payloads == [b'{"ok": 1}', b'{"ok": 2}']
    found = reasons(dead)
    assert sorted(found) == [101, 102, 103, 104, 105, 106]
    assert found[101].startswith("invalid JSON at byte 11")
    assert "topic=orders partition=3 offset=101" in found[101]
    assert found[102].startswith("invalid UTF-8 at byte 9")
    assert found[103].startswith("not a JSON object: the record is a JSON array")
    assert found[104].startswith("empty record")
    assert found[106].startswith("invalid JSON")
    assert all(isinstance(letter.error, DecodeError) for letter in dead)
    assert [type(letter.error) for letter in dead if letter.record.offset() == 105] == [Tombstone]


def test_json_run_without_good_records_has_no_chunks() -> None:
    chunks, dead = make_decoder("json", "json").decode(records(b"nope", None, b"[]"))
    assert chunks == [] and len(dead) == 3
    assert make_decoder("json", "json").decode([]) == ([], [])


def test_json_poison_is_found_in_a_large_run() -> None:
    values = [orjson.dumps({"i": i}) for i in range(20_000)]
    values[7_777] = b'{"i": oops}'
    chunks, dead = make_decoder("json", "json").decode(records(*values, start=0))
    assert [letter.record.offset() for letter in dead] == [7_777]
    assert len(chunks[0].offsets) == 19_999 and 7_777 not in chunks[0].offsets


@pytest.mark.parametrize("poison", [b"null", b" null", b"null x", b"\nnull", b"true"])
def test_json_non_objects_are_dead_lettered_wherever_they_are(poison: bytes) -> None:
    # pyarrow 26 segfaults on a parse block that starts with null: it must never see one
    good = b'{"a": 1}'
    for values in ([poison], [poison, good], [good, poison], [good] * 5000 + [poison] + [good]):
        chunks, dead = make_decoder("json", "json").decode(records(*values, start=0))
        assert [letter.record.offset() for letter in dead] == [values.index(poison)]
        assert sum(len(chunk.offsets) for chunk in chunks) == len(values) - 1


def test_json_pretty_printed_record_becomes_one_line() -> None:
    pretty = b'{\r\n  "a": 1,\n  "text": "two words"\r}\n'
    chunks, dead = make_decoder("json", "json").decode(records(b'{"x": 0}', pretty))
    assert dead == []
    payload = chunks[0].payloads[1]
    assert b"\n" not in payload and b"\r" not in payload
    assert orjson.loads(payload) == {"a": 1, "text": "two words"}


def test_json_raw_newline_inside_a_string_is_invalid() -> None:
    _, dead = make_decoder("json", "json").decode(records(b'{"a": "line\nbreak"}'))
    assert reasons(dead)[100].startswith("invalid JSON")


def test_json_integers_beyond_64_bits_are_accepted_like_the_fast_path_does() -> None:
    big = b'{"n": 123456789012345678901234567890}'
    for batch in ([big], [big, b"not json"]):  # fast path, then record-by-record path
        chunks, _ = make_decoder("json", "json").decode(records(*batch))
        assert chunks[0].payloads == [big]


def test_json_records_that_only_parse_together_are_dead_lettered() -> None:
    # Joined into one array, `{"a":"` + `,` + `{"},{"b":2}` reads as two objects: the
    # first record's open string swallows the separator, the second's comma replaces it.
    values = [b'{"a":"', b'{"},{"b":2}', b'{"ok": 1}']
    chunks, dead = make_decoder("json", "json").decode(records(*values))
    assert sorted(reasons(dead)) == [100, 101]
    assert chunks[0].payloads == [b'{"ok": 1}']


def test_json_leading_and_trailing_whitespace_is_accepted_either_way() -> None:
    spaced = b' {"a": 1}\t'
    for batch in ([spaced], [spaced, b"not json"]):  # fast path, then record-by-record path
        chunks, _ = make_decoder("json", "json").decode(records(*batch))
        assert chunks[0].payloads == [spaced]


def nested(levels: int) -> bytes:
    return b'{"a":' + b"[" * levels + b"]" * levels + b"}"


def test_json_nested_too_deeply_is_dead_lettered_wherever_it_is_checked() -> None:
    # msgspec's depth limit is the interpreter's, less the caller's stack: the verdict on a
    # record must not depend on it (a batch split decodes its records again elsewhere).
    def verdicts(frames: int = 0) -> list:
        if frames:
            return verdicts(frames - 1)
        run = records(b'{"ok": 1}', nested(800), nested(5000), b'{"ok": 2}')
        chunks, dead = make_decoder("json", "json").decode(run)
        return [[o for c in chunks for o in c.offsets], reasons(dead)]

    kept, bad = verdicts()
    assert kept == [100, 101, 103]
    assert list(bad) == [102] and "nested too deeply" in bad[102]
    assert verdicts(frames=300) == [kept, bad]


def test_json_text_values_from_string_deserializers_are_encoded() -> None:
    chunks, dead = make_decoder("string", "json").decode(records('{"é": 1}'))
    assert dead == [] and chunks[0].payloads == ['{"é": 1}'.encode()]


def test_json_records_larger_than_a_parse_block_are_fine() -> None:
    huge = orjson.dumps({"blob": "x" * (3 << 20)})
    chunks, dead = make_decoder("json", "json").decode(records(b'{"a": 1}', huge, b'{"b": 2}'))
    assert dead == [] and len(chunks[0].payloads) == 3


# -- delimited text ----------------------------------------------------------------------


def test_csv_good_rows_pass_unchanged() -> None:
    values = [b"1,ada,36", b'2,"lovelace, ada",36', b"3,,"]
    chunks, dead = make_decoder("string", "csv", expected_columns=3).decode(records(*values))
    assert dead == [] and chunks[0].payloads == values
    assert (chunks[0].format, chunks[0].framing) == ("csv", LineFraming())


def test_csv_wrong_column_count_and_bad_bytes_are_dead_lettered() -> None:
    values = [b"1,ada,36", b"2,bob", b'3,"x,y",1,2', b"4,\xff,1", b'5,"open,1']
    chunks, dead = make_decoder("string", "csv", expected_columns=3).decode(records(*values))
    assert chunks[0].offsets == [100]
    found = reasons(dead)
    assert found[101].startswith("CSV record has 2 columns, expected 3")
    assert found[102].startswith("CSV record has 4 columns, expected 3")
    assert found[103].startswith("invalid UTF-8 at byte 2")
    assert found[104].startswith("invalid CSV")


def test_csv_newlines_quoted_kept_unquoted_rejected_trailing_dropped() -> None:
    values = [b'1,"two\nlines",x', b"2,a,b\r\n", b"3,a,b\n4,c,d", b"5,a,b\r6,c,d", b"7,a,b\r"]
    chunks, dead = make_decoder("string", "csv", expected_columns=3).decode(records(*values))
    assert chunks[0].payloads == [b'1,"two\nlines",x', b"2,a,b", b"7,a,b"]
    assert reasons(dead)[102].startswith("CSV record spans 2 rows")
    assert reasons(dead)[103].startswith("CSV record spans 2 rows")


def test_csv_without_expected_columns_checks_lines_and_utf8_only() -> None:
    chunks, dead = make_decoder("string", "csv").decode(records(b"1", b"1,2,3"))
    assert dead == [] and len(chunks[0].payloads) == 2


def test_tsv_uses_tabs_and_txt_takes_any_single_line() -> None:
    chunks, dead = make_decoder("string", "tsv", expected_columns=2).decode(records(b"a\tb,c"))
    assert dead == [] and chunks[0].payloads == [b"a\tb,c"]
    chunks, dead = make_decoder("string", "txt").decode(records(b"free text, any", b"a\nb"))
    assert chunks[0].payloads == [b"free text, any"]
    assert reasons(dead)[101].startswith("text record spans 2 lines")


def test_csv_tombstones_are_dead_lettered_as_tombstones() -> None:
    chunks, dead = make_decoder("string", "csv").decode(records(None, b"a,b"))
    assert chunks[0].offsets == [101]
    assert isinstance(dead[0].error, Tombstone)
    assert "offset=100" in str(dead[0].error)


# -- whole files -------------------------------------------------------------------------


def _table() -> pa.Table:
    return pa.table({"id": [1, 2], "name": ["a", "b"]})


def test_parquet_and_orc_files_pass_whole_and_garbage_is_rejected() -> None:
    parquet = io.BytesIO()
    pa_parquet.write_table(_table(), parquet)
    chunks, dead = make_decoder("bytes", "parquet").decode(
        records(parquet.getvalue(), b"PAR1 not really", None)
    )
    assert chunks[0].payloads == [parquet.getvalue()]
    assert chunks[0].framing == WholeFileFraming()
    found = reasons(dead)
    assert found[101].startswith("not a Parquet file")
    assert isinstance(dead[1].error, Tombstone)

    orc = io.BytesIO()
    pa_orc.write_table(_table(), orc)
    chunks, dead = make_decoder("bytes", "orc").decode(records(orc.getvalue(), parquet.getvalue()))
    assert chunks[0].offsets == [100]
    assert reasons(dead)[101].startswith("not an ORC file")


def test_raw_bytes_in_a_text_format_are_lines_like_strings() -> None:
    chunks, dead = make_decoder("bytes", "json").decode(records(b'{"a": 1}', b"PAR1"))
    assert chunks[0].payloads == [b'{"a": 1}'] and chunks[0].framing == LineFraming()
    assert reasons(dead)[101].startswith("invalid JSON")


# -- make_decoder --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "format", "setting"),
    [
        ("json", "csv", "format"),
        ("bytes", "protobuf", "format"),
        ("string", "parquet", "format"),
        ("xml", "json", "value.converter"),
        ("avro", "apacheavro", "value.converter.schema.registry.url"),
        ("protobuf", "json", "value.converter.schema.registry.url"),
    ],
)
def test_make_decoder_refuses_impossible_settings(kind: str, format: str, setting: str) -> None:
    with pytest.raises(ConfigError) as refused:
        make_decoder(kind, format)  # type: ignore[arg-type]
    assert refused.value.problems[0].setting == setting


# -- Kafka Connect JSON envelopes ----------------------------------------------------------


def test_connect_envelopes_deliver_their_payload() -> None:
    schema = {"type": "struct", "fields": [{"type": "int64", "field": "n"}], "optional": False}
    values = [
        orjson.dumps({"schema": schema, "payload": {"n": 1}}),
        b'{"schema": null, "payload": {"n": 123456789012345678901234567890}}',
        orjson.dumps({"schema": schema, "payload": None}),
        b'{"n": 3}',
        orjson.dumps({"schema": None, "payload": [1]}),
        b'{"schema": ',
    ]
    decoder = make_decoder("json", "json", schemas_enable=True)
    chunks, dead = decoder.decode(records(*values))
    assert chunks[0].offsets == [100, 101]
    assert chunks[0].payloads == [b'{"n":1}', b'{"n": 123456789012345678901234567890}']
    found = reasons(dead)
    assert isinstance(dead[0].error, Tombstone) and dead[0].record.offset() == 102
    assert found[103].startswith("not a Kafka Connect JSON envelope")
    assert found[104].startswith("the envelope's payload is a JSON array, not an object")
    assert found[105].startswith("invalid JSON")


def test_connect_envelope_payload_keeps_its_bytes_on_one_line() -> None:
    pretty = b'{\n  "schema": {"type": "struct"},\n  "payload": {\n    "price": 1.10\n  }\n}'
    chunks, dead = make_decoder("json", "json", schemas_enable=True).decode(records(pretty))
    assert dead == [] and chunks[0].payloads == [b'{     "price": 1.10   }']


def test_connect_envelopes_after_a_bad_first_record_are_scanned_one_by_one() -> None:
    values = [b"oops", b'{"schema":null,"payload":{"a":1}}', None, b'{"schema":{},"payload":null}']
    chunks, dead = make_decoder("json", "json", schemas_enable=True).decode(records(*values))
    assert chunks[0].offsets == [101] and chunks[0].payloads == [b'{"a":1}']
    assert [type(letter.error).__name__ for letter in dead] == [
        "DecodeError",
        "Tombstone",
        "Tombstone",
    ]


def test_connect_envelope_sharing_the_prefix_with_a_broken_payload_is_rejected() -> None:
    values = [b'{"schema":{},"payload":{"a":1}}', b'{"schema":{},"payload":{"a":[1}}']
    chunks, dead = make_decoder("json", "json", schemas_enable=True).decode(records(*values))
    assert chunks[0].offsets == [100]
    assert reasons(dead)[101].startswith("invalid JSON at byte 30")


# -- whole runs agree with records alone (mutation fuzzing, fixed seeds) -----------------

_NOISE = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"null", b"\n", b" ", b"\\", b"\xff", b"1e400"]


def _mutated(rnd: random.Random, value: bytes) -> bytes:
    mutated = bytearray(value)
    for _ in range(rnd.randrange(1, 4)):
        position = rnd.randrange(len(mutated) + 1)
        if rnd.random() < 0.5:
            mutated[position:position] = rnd.choice(_NOISE)
        else:
            del mutated[position : position + rnd.randrange(1, 4)]
    return bytes(mutated)


_JSON_RECORDS = [
    orjson.dumps({"id": i, "a": [1, None, {"b": True}], "s": "x" * i}) for i in range(4)
]
_ENVELOPES = [b'{"schema":{"type":"struct"},"payload":' + v + b"}" for v in _JSON_RECORDS]
_CSV_ROWS = [b"1,ada,36", b'2,"lovelace, ada",36', b"3,,", b'4,"multi\nline",x', b'5,"q""t",y']


@pytest.mark.parametrize(
    ("kind", "format", "options", "clean"),
    [
        ("json", "json", {}, _JSON_RECORDS),
        ("json", "json", {"schemas_enable": True}, _ENVELOPES),
        ("string", "csv", {}, _CSV_ROWS),
        ("string", "csv", {"expected_columns": 3}, _CSV_ROWS),
    ],
)
def test_a_run_is_judged_record_by_record(
    kind: str, format: str, options: dict, clean: list[bytes]
) -> None:
    rnd = random.Random(7)
    decoder = make_decoder(kind, format, **options)  # type: ignore[arg-type]
    for _ in range(150):
        values = [
            rnd.choice(clean) if rnd.random() < 0.7 else _mutated(rnd, rnd.choice(clean))
            for _ in range(rnd.randrange(1, 30))
        ]
        run = records(*values)
        chunks, _ = decoder.decode(run)
        together = {offset for chunk in chunks for offset in chunk.offsets}
        alone = {r.offset() for r in run if decoder.decode([r])[0]}
        assert together == alone, values


def test_the_public_interface_is_what_all_lists() -> None:
    import pipelines.decode as decode

    assert all(hasattr(decode, name) for name in decode.__all__)
    assert {"make_decoder", "Decoder", "Tombstone", "SchemaRegistryUnavailable"} <= set(
        decode.__all__
    )
