"""deploy/ against a real hub: every expression of the alert rules and of the Grafana dashboard parses
as PromQL, and every metric it names is one a running hub exports (scraped from its /metrics after a
few calls), with labels that metric has; every alert has a runbook; promtool accepts the rules and the
scrape configuration and passes the rules' unit tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from onecard.auth.v1 import authorization_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_hub.domain.clock import ManualClock
from onecard_hub.server import running_hub
from tests.conftest import hub_config
from tests.helpers import Campus
from tests.integration.telemetry_helpers import scrape

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "onecard-hub.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "rules" / "onecard-hub.rules.test.yml"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "onecard-hub.json"
PROMTOOL = shutil.which("promtool") or str(DEPLOY.parent / ".tools" / "bin" / "promtool")
# Labels Prometheus itself puts on every series it scrapes.
TARGET_LABELS = {"job", "instance", "deployment"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
# Grafana's variables, as a query would see them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$instance": ".*", "$school": ".*"}


def _rule_exprs() -> Iterator[tuple[str, str]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]


def _dashboard_exprs() -> Iterator[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
            assert found, f"variable {variable['name']}: {variable['definition']}"
            yield f"variable {variable['name']}", f"{found.group(1)}{{{found.group(2)}!=''}}"


def _grafana(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


def _selectors(expr: str) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, campus_template: Path) -> dict[str, set[str]]:
    """What a hub exports, after a few calls: series name → the label names seen on it."""
    import asyncio

    campus_dir = tmp_path_factory.mktemp("deploy") / "campus"
    shutil.copytree(campus_template, campus_dir)
    creds = CampusCredentials.load(campus_dir / "hub.keys")

    async def run() -> str:
        from tests.conftest import LUNCH_MS

        clock = ManualClock(LUNCH_MS)
        async with running_hub(hub_config(campus_dir, metrics_listen="127.0.0.1:0"), clock) as running:
            campus = Campus(creds, clock, running.target)
            try:
                await campus.send(campus.chip(campus.card(), campus.gate(), pb.SCENE_GATE_ENTRY))
                await campus.send(
                    campus.chip(
                        campus.card(status="lost"), campus.pos(), pb.SCENE_CANTEEN_PURCHASE, amount_fen=500
                    )
                )
                assert running.telemetry is not None
                return await scrape(running.telemetry.metrics_url)
            finally:
                await campus.close()

    text = asyncio.run(run())
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            series.setdefault(family.name + suffix, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


@pytest.mark.parametrize(("where", "expr"), [*_rule_exprs(), *_dashboard_exprs()])
def test_every_expression_names_metrics_and_labels_the_hub_exports(
    where: str, expr: str, exported: dict[str, set[str]]
) -> None:
    selectors = _selectors(_grafana(expr))
    assert selectors, f"{where}: no metric in {expr}"
    for selector in selectors:
        name = selector.name or next(m.value for m in selector.matchers.matchers if m.name == "__name__")
        assert name in exported, f"{where}: {name} is not a metric the hub exports"
        labels = exported[name]
        if not labels:
            continue  # no series yet (e.g. no bank call was made): nothing to compare the labels with
        for matcher in selector.matchers.matchers:
            if matcher.name not in ("__name__", *TARGET_LABELS):
                assert matcher.name in labels | {"le"}, f"{where}: {name} has no label {matcher.name}"


def test_every_alert_has_a_summary_and_a_runbook() -> None:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    alerts = [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]
    assert {rule["alert"] for rule in alerts} >= {
        "OneCardAuthorizeP99OverBudget",
        "OneCardDeclineShareJumped",
        "OneCardJournalCommitSlow",
        "OneCardJournalQueueFilling",
        "OneCardBankGatewayErrors",
        "OneCardBlocklistLagging",
    }
    for rule in alerts:
        assert rule["annotations"]["summary"] and len(rule["annotations"]["runbook"]) > 40, rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket")


@pytest.mark.parametrize(
    "argv",
    [("check", "rules", str(RULES)), ("check", "config", str(CONFIG)), ("test", "rules", str(RULE_TESTS))],
    ids=["check rules", "check config", "test rules"],
)
def test_promtool_accepts_the_rules_and_the_scrape_config(argv: tuple[str, ...]) -> None:
    assert Path(PROMTOOL).is_file(), "promtool is missing: `make promtool` (make test and make lint run it)"
    done = subprocess.run([PROMTOOL, *argv], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
