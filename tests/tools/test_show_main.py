"""``show_main``: what ``prowtrace show FILE [--html OUT]`` does, and its exit codes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from show_fixture import fixture_spans

from processor.export.otlp_json import OtlpJsonFileExporter
from processor.tools.show import show_main


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    """Write the fixture traces to an OTLP/JSON file."""
    path = tmp_path / "traces.jsonl"
    exporter = OtlpJsonFileExporter(path)
    exporter.export(fixture_spans())
    exporter.shutdown()
    return path


def _run(path: str | None, html_out: str | None = None, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = show_main(path, html_out, out, stdin=io.StringIO(stdin), stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_a_file_is_shown_as_waterfalls(trace_file: Path) -> None:
    """A valid file prints each trace's waterfall and exits 0."""
    status, out, err = _run(str(trace_file))

    assert status == 0
    assert "RUN ci-kubernetes-e2e" in out
    assert "RUN pull-kubernetes-unit" in out
    assert err == ""


def test_dash_reads_standard_input(trace_file: Path) -> None:
    """``-`` reads the file from standard input."""
    status, out, _ = _run("-", stdin=trace_file.read_text(encoding="utf-8"))

    assert status == 0
    assert "RUN ci-kubernetes-e2e" in out


def test_no_path_reads_standard_input(trace_file: Path) -> None:
    """No path also reads standard input."""
    status, out, _ = _run(None, stdin=trace_file.read_text(encoding="utf-8"))

    assert status == 0
    assert "RUN pull-kubernetes-unit" in out


def test_a_malformed_file_exits_2_naming_the_line(trace_file: Path) -> None:
    """A bad line gives exit 2 and a message with the file, line number and format."""
    trace_file.write_text(trace_file.read_text(encoding="utf-8") + "not json\n", encoding="utf-8")

    status, out, err = _run(str(trace_file))

    assert status == 2
    assert out == ""
    assert f"{trace_file}: line 2: not JSON" in err
    assert "one ExportTraceServiceRequest object per line" in err


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    """An unreadable path gives exit 2 and says it cannot be read."""
    status, _, err = _run(str(tmp_path / "nope.jsonl"))

    assert status == 2
    assert "cannot read" in err
    assert "No such file or directory" in err


def test_a_binary_file_exits_2(tmp_path: Path) -> None:
    """A file that is not UTF-8 text gives exit 2."""
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage")

    status, _, err = _run(str(path))

    assert status == 2
    assert "not UTF-8 text" in err


def test_an_empty_file_says_there_are_no_spans(tmp_path: Path) -> None:
    """An empty file is valid: exit 0 with a note."""
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")

    status, out, _ = _run(str(path))

    assert (status, out) == (0, f"No spans in {path}.\n")


def test_html_is_written_to_the_given_file(trace_file: Path, tmp_path: Path) -> None:
    """``--html OUT`` writes the page and reports what it wrote."""
    out_path = tmp_path / "traces.html"

    status, out, _ = _run(str(trace_file), str(out_path))

    assert status == 0
    assert out == f"Wrote 2 traces (21 spans) to {out_path}\n"
    assert out_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_html_to_dash_goes_to_the_output_stream(trace_file: Path) -> None:
    """``--html -`` writes the page itself to the output stream."""
    status, out, _ = _run(str(trace_file), "-")

    assert status == 0
    assert out.startswith("<!DOCTYPE html>")


def test_an_unwritable_html_path_exits_1(trace_file: Path, tmp_path: Path) -> None:
    """A page that cannot be written gives exit 1 and a message."""
    status, _, err = _run(str(trace_file), str(tmp_path / "missing" / "out.html"))

    assert status == 1
    assert "cannot write" in err
