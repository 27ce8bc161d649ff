"""The OTLP/JSON file exporter and reader: the file-exporter format, one request per line."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode
from show_fixture import E2E_START, E2E_UID, SECOND, e2e_job_spans, fixture_spans, unit_job_spans

from processor.export.otlp_json import (
    DecodedSpan,
    MalformedOtlpJson,
    OtlpJsonFileExporter,
    decode_value,
    read_otlp_json,
    render_request_line,
    spans_from_sdk,
)

E2E_TRACE_HEX = E2E_UID.replace("-", "")


def _export_to_text(*batches: list[ReadableSpan]) -> str:
    stream = io.StringIO()
    exporter = OtlpJsonFileExporter(stream)
    for batch in batches:
        assert exporter.export(batch) is SpanExportResult.SUCCESS
    return stream.getvalue()


def _first_span_json(text: str) -> dict[str, object]:
    document = json.loads(text.splitlines()[0])
    span: dict[str, object] = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return span


def test_spans_round_trip_through_a_file(tmp_path: Path) -> None:
    """Spans exported to a file read back equal to the SDK spans they came from."""
    path = tmp_path / "traces.jsonl"
    exporter = OtlpJsonFileExporter(path)
    assert exporter.export(e2e_job_spans()) is SpanExportResult.SUCCESS
    assert exporter.export(unit_job_spans()) is SpanExportResult.SUCCESS
    exporter.shutdown()

    with path.open(encoding="utf-8") as lines:
        read_back = read_otlp_json(lines)

    assert read_back == spans_from_sdk(fixture_spans())


def test_read_back_span_carries_its_fields() -> None:
    """The root span reads back with hex IDs, kind, status, times and attributes."""
    root = read_otlp_json(_export_to_text(e2e_job_spans()).splitlines())[0]

    assert root.trace_id == E2E_TRACE_HEX
    assert root.span_id == E2E_TRACE_HEX[:16]
    assert root.parent_span_id is None
    assert root.name == "RUN ci-kubernetes-e2e"
    assert root.kind is SpanKind.SERVER
    assert root.status_code is StatusCode.ERROR
    assert root.status_message == "job failed: test container exited with code 1"
    assert root.start_ns == E2E_START
    assert root.end_ns == E2E_START + 3_725_400_000_000
    assert root.attributes["cicd.pipeline.result"] == "failure"
    assert root.resource_attributes["service.name"] == "prowtrace"
    assert root.scope_name == "prowtrace"


def test_ids_are_written_as_lowercase_hex() -> None:
    """Trace, span and parent IDs are hex strings, not proto3 JSON's base64."""
    child = _first_span_json(_export_to_text(e2e_job_spans()[1:2]))

    assert child["traceId"] == E2E_TRACE_HEX
    assert child["parentSpanId"] == E2E_TRACE_HEX[:16]
    assert isinstance(child["spanId"], str)
    assert len(child["spanId"]) == 16
    assert child["spanId"] == child["spanId"].lower()
    int(child["spanId"], 16)


def test_link_ids_are_written_as_hex() -> None:
    """A link's trace and span IDs are hex too."""
    root = _first_span_json(_export_to_text(unit_job_spans()[:1]))

    links = root["links"]
    assert isinstance(links, list)
    assert (links[0]["traceId"], links[0]["spanId"]) == (E2E_TRACE_HEX, E2E_TRACE_HEX[:16])


def test_enums_are_written_as_integers() -> None:
    """Span kind and status code are JSON numbers (OTLP/JSON forbids enum names)."""
    root = _first_span_json(_export_to_text(e2e_job_spans()[:1]))

    assert root["kind"] == 2
    assert root["status"] == {
        "code": 2,
        "message": "job failed: test container exited with code 1",
    }


def test_keys_are_lower_camel_case() -> None:
    """Field names use the lowerCamelCase JSON names."""
    line = _export_to_text(e2e_job_spans()[:1])
    root = _first_span_json(line)

    assert "resourceSpans" in json.loads(line)
    assert {"traceId", "spanId", "startTimeUnixNano", "endTimeUnixNano"} <= root.keys()
    assert "_" not in "".join(root)


def test_each_export_call_writes_one_line() -> None:
    """Two export calls give exactly two newline-terminated lines."""
    text = _export_to_text(e2e_job_spans(), unit_job_spans())

    assert text.count("\n") == 2
    assert text.endswith("\n")


def test_an_empty_batch_writes_nothing() -> None:
    """Exporting no spans succeeds without writing an empty request."""
    assert _export_to_text([]) == ""


def test_line_separators_in_names_stay_on_one_line() -> None:
    """A span name with U+2028 and a newline is still one physical line, and reads back."""
    spans = e2e_job_spans()[:1]
    spans[0]._name = "weird\u2028name\nhere"
    text = _export_to_text(spans)

    assert len(text.splitlines()) == 1
    assert read_otlp_json(text.splitlines())[0].name == "weird\u2028name\nhere"


def test_a_stream_destination_is_left_open_on_shutdown() -> None:
    """The caller's stream is not closed by shutdown."""
    stream = io.StringIO()
    exporter = OtlpJsonFileExporter(stream)
    exporter.export(e2e_job_spans())
    exporter.shutdown()

    assert not stream.closed


def test_export_after_shutdown_fails() -> None:
    """Once shut down the exporter reports FAILURE and writes nothing."""
    stream = io.StringIO()
    exporter = OtlpJsonFileExporter(stream)
    exporter.shutdown()

    assert exporter.export(e2e_job_spans()) is SpanExportResult.FAILURE
    assert stream.getvalue() == ""


def test_an_unwritable_path_fails_without_raising(tmp_path: Path) -> None:
    """A path in a missing directory gives FAILURE, not an exception."""
    exporter = OtlpJsonFileExporter(tmp_path / "missing" / "traces.jsonl")

    assert exporter.export(e2e_job_spans()) is SpanExportResult.FAILURE


def test_a_closed_stream_fails_without_raising() -> None:
    """Writing to a closed stream gives FAILURE, not an exception."""
    stream = io.StringIO()
    stream.close()

    assert OtlpJsonFileExporter(stream).export(e2e_job_spans()) is SpanExportResult.FAILURE


def test_a_file_is_appended_to(tmp_path: Path) -> None:
    """A second exporter on the same path appends rather than truncating."""
    path = tmp_path / "traces.jsonl"
    for batch in (e2e_job_spans(), unit_job_spans()):
        exporter = OtlpJsonFileExporter(path)
        exporter.export(batch)
        exporter.shutdown()

    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_concurrent_exports_write_whole_lines(tmp_path: Path) -> None:
    """Exports from many threads never interleave within a line."""
    path = tmp_path / "traces.jsonl"
    exporter = OtlpJsonFileExporter(path)
    batch = e2e_job_spans()

    def export_many() -> None:
        for _ in range(20):
            exporter.export(batch)

    threads = [threading.Thread(target=export_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    exporter.shutdown()

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 160
    assert len(read_otlp_json(lines)) == 160 * len(batch)


def test_reader_accepts_base64_ids() -> None:
    """Generic proto3 JSON (base64 IDs, enum names) reads the same as OTLP/JSON."""
    generic = json_format.MessageToJson(encode_spans(fixture_spans()), indent=None)
    otlp = render_request_line(encode_spans(fixture_spans()))

    assert read_otlp_json([generic]) == read_otlp_json([otlp])


def test_reader_accepts_int64_as_numbers() -> None:
    """Timestamps given as JSON numbers read the same as the string form."""
    document = json.loads(render_request_line(encode_spans(e2e_job_spans()[:1])))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"] = int(span["startTimeUnixNano"])

    assert read_otlp_json([json.dumps(document)])[0].start_ns == E2E_START


def test_reader_accepts_snake_case_field_names() -> None:
    """Proto field names (which proto3 JSON parsers accept) work, hex IDs included."""
    generic = json_format.MessageToDict(
        encode_spans(e2e_job_spans()[1:2]), preserving_proto_field_name=True
    )
    span = generic["resource_spans"][0]["scope_spans"][0]["spans"][0]
    span["trace_id"] = E2E_TRACE_HEX

    assert read_otlp_json([json.dumps(generic)])[0].trace_id == E2E_TRACE_HEX


def test_reader_skips_blank_lines() -> None:
    """Empty and whitespace-only lines are not requests."""
    text = _export_to_text(e2e_job_spans())

    assert len(read_otlp_json(["", text, "   \n"])) == len(e2e_job_spans())


def test_reader_keeps_every_attribute_type() -> None:
    """Ints, floats, bools, arrays and bytes come back with their types."""
    line = render_request_line(encode_spans(unit_job_spans()[-1:]))
    document = json.loads(line)
    attributes = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    attributes.append({"key": "flag", "value": {"boolValue": True}})
    attributes.append({"key": "blob", "value": {"bytesValue": "AAE="}})
    attributes.append(
        {"key": "map", "value": {"kvlistValue": {"values": [{"key": "a", "value": {}}]}}}
    )

    read = read_otlp_json([json.dumps(document)])[0].attributes

    assert read["process.exit.code"] == 0
    assert read["ratio"] == 0.25
    assert read["tags"] == ("unit", "linux/amd64")
    assert read["flag"] is True
    assert read["blob"] == b"\x00\x01"
    assert read["map"] == {"a": None}


def test_malformed_json_names_its_line() -> None:
    """A line that is not JSON raises MalformedOtlpJson with its 1-based line number."""
    good = _export_to_text(e2e_job_spans()).strip()

    with pytest.raises(MalformedOtlpJson) as caught:
        read_otlp_json([good, "", '{"resourceSpans": [', good])

    assert caught.value.line_number == 3
    assert str(caught.value).startswith("line 3: not JSON")


def test_a_non_object_line_is_malformed() -> None:
    """A JSON array is not a request."""
    with pytest.raises(MalformedOtlpJson, match="line 1: expected a JSON object"):
        read_otlp_json(["[1, 2]"])


def test_a_wrongly_typed_field_is_malformed() -> None:
    """A field of the wrong JSON type is reported with the line."""
    with pytest.raises(MalformedOtlpJson, match="line 1: "):
        read_otlp_json(['{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 7}]}]}]}'])


def test_an_invalid_span_id_is_malformed() -> None:
    """An ID that is neither hex nor base64 of the right size is reported."""
    document = json.loads(render_request_line(encode_spans(e2e_job_spans()[:1])))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "zz-not-an-id"

    with pytest.raises(MalformedOtlpJson, match=r"line 1: .*'zz-not-an-id'"):
        read_otlp_json([json.dumps(document)])


def test_a_missing_trace_id_is_malformed() -> None:
    """A span without a trace ID cannot be placed in a trace."""
    with pytest.raises(MalformedOtlpJson, match="16-byte traceId"):
        read_otlp_json(
            ['{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"0102030405060708"}]}]}]}']
        )


def test_sdk_conversion_formats_ids_as_hex() -> None:
    """Converting SDK spans directly gives 32/16-digit hex IDs and the parent link."""
    child: DecodedSpan = spans_from_sdk(e2e_job_spans()[1:2])[0]

    assert child.trace_id == E2E_TRACE_HEX
    assert child.parent_span_id == E2E_TRACE_HEX[:16]
    assert child.end_ns - child.start_ns == round(4.2 * SECOND)


def test_lines_of_other_signals_hold_no_spans() -> None:
    """A collector file line with metrics or logs (not traces) is valid and yields no spans."""
    assert read_otlp_json(['{"resourceMetrics": [{"scopeMetrics": []}]}']) == []


def test_decode_value_handles_nested_and_binary_values() -> None:
    """Key-value lists become dicts, bytes stay bytes, an empty AnyValue becomes None."""
    nested = AnyValue(
        kvlist_value=KeyValueList(values=[KeyValue(key="b", value=AnyValue(bytes_value=b"\x00"))])
    )
    assert decode_value(nested) == {"b": b"\x00"}
    assert decode_value(AnyValue()) is None
