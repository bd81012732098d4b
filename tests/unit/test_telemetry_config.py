"""How the config object turns --metrics-listen, --trace-file and the standard OTEL_* variables into
the hub's telemetry settings: tracing only when asked, OTLP over gRPC only, OTEL_SDK_DISABLED wins."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from onecard_hub.config import ConfigError, HubConfig, add_serve_flags, config_from


def _config(*flags: str, **env: str) -> HubConfig:
    parser = argparse.ArgumentParser()
    add_serve_flags(parser)
    return config_from(parser.parse_args(["--db", "hub.db", *flags]), env)


def test_off_unless_asked() -> None:
    config = _config()
    assert (config.metrics_listen, config.trace_file, config.otlp_traces) == ("", None, False)
    assert config.service_name == "onecard-hub"
    assert not _config(OTEL_TRACES_EXPORTER="none").otlp_traces


def test_flags_and_their_variables() -> None:
    config = _config("--metrics-listen", "127.0.0.1:9464", "--trace-file", "t/hub.jsonl")
    assert (config.metrics_listen, config.trace_file) == ("127.0.0.1:9464", Path("t/hub.jsonl"))
    config = _config(ONECARD_METRICS_LISTEN="[::1]:0", ONECARD_TRACE_FILE="x.jsonl")
    assert (config.metrics_listen, config.trace_file) == ("[::1]:0", Path("x.jsonl"))
    flag_wins = _config("--metrics-listen", "0.0.0.0:9464", ONECARD_METRICS_LISTEN="127.0.0.1:1")
    assert flag_wins.metrics_listen == "0.0.0.0:9464"


def test_otlp_from_the_standard_variables() -> None:
    config = _config(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317",
        OTEL_SERVICE_NAME="hub-2",
    )
    assert (config.otlp_traces, config.otlp_endpoint, config.service_name) == (
        True,
        "http://collector:4317",
        "hub-2",
    )
    traces_first = _config(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://a:4317",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://b:4317",
    )
    assert traces_first.otlp_endpoint == "http://b:4317"
    assert _config(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="grpc").otlp_traces


def test_the_sdk_switch_turns_every_trace_off() -> None:
    config = _config("--trace-file", "t.jsonl", OTEL_TRACES_EXPORTER="otlp", OTEL_SDK_DISABLED="true")
    assert (config.trace_file, config.otlp_traces) == (None, False)


@pytest.mark.parametrize(
    ("flags", "env", "says"),
    [
        (("--metrics-listen", "9464"), {}, "HOST:PORT"),
        (("--metrics-listen", "localhost:http"), {}, "HOST:PORT"),
        (("--metrics-listen", "localhost:70000"), {}, "HOST:PORT"),
        ((), {"OTEL_TRACES_EXPORTER": "zipkin"}, "otlp"),
        ((), {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "grpc only"),
    ],
)
def test_what_cannot_be_used_is_a_usage_error(flags: tuple[str, ...], env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        _config(*flags, **env)
