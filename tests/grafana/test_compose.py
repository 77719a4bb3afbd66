"""docker-compose.yml against the Compose Specification, and the provisioning files
against what the stack mounts. No Docker engine or Grafana server is needed."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from commitbench.grafana import BUILDERS, names

ROOT = Path(__file__).resolve().parents[2]
SPEC = Path(__file__).parent / "compose_spec" / "compose-spec.json"
SPEC_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
PROVISIONING = ROOT / "grafana" / "provisioning"
ENV_REF = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]  # type: ignore[no-any-return]


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """container path -> (host source, mode) of the service's short-syntax volumes."""
    out = {}
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        out[target] = (source, mode[0] if mode else "rw")
    return out


def test_vendored_schema_is_the_published_one() -> None:
    assert hashlib.sha256(SPEC.read_bytes()).hexdigest() == SPEC_SHA256


def test_compose_file_is_valid_against_the_compose_spec(compose: dict[str, Any]) -> None:
    validator = Draft202012Validator(json.loads(SPEC.read_text()))
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_validation_catches_a_broken_file(compose: dict[str, Any]) -> None:
    validator = Draft202012Validator(json.loads(SPEC.read_text()))
    broken = json.loads(json.dumps(compose))
    broken["services"]["grafana"]["depends_on"]["migrate"]["condition"] = "when_ready"
    assert list(validator.iter_errors(broken))


def test_postgres_is_pinned_healthy_and_persistent(compose: dict[str, Any]) -> None:
    pg = services(compose)["postgres"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-[a-z0-9]+)?", pg["image"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    volume = next(s.split(":")[0] for s in pg["volumes"] if s.endswith("/var/lib/postgresql/data"))
    assert volume in compose["volumes"]  # a named volume, not a bind mount


def test_migrate_runs_once_after_postgres_is_healthy(compose: dict[str, Any]) -> None:
    migrate = services(compose)["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    script = " ".join(migrate["command"])
    assert script.index("commitbench db upgrade") < script.index(
        "commitbench db create-readonly-role"
    )
    assert "COMMITBENCH_READONLY_PASSWORD" in migrate["environment"]
    # The stack starts again with the role already there: --replace re-hardens it.
    assert "commitbench db create-readonly-role --replace " in script


def test_grafana_is_pinned_waits_for_migrate_and_mounts_read_only(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    assert re.fullmatch(r"grafana/grafana(-oss)?:\d+\.\d+\.\d+", grafana["image"])
    assert grafana["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    m = mounts(grafana)
    assert m["/etc/grafana/provisioning"] == ("./grafana/provisioning", "ro")
    source, mode = next(v for k, v in m.items() if k.startswith("/etc/commitbench/dashboards"))
    assert (source, mode) == ("./grafana/dashboards", "ro")
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).name in BUILDERS


def test_runner_is_optional_and_reserves_gpus(compose: dict[str, Any]) -> None:
    runner = services(compose)["runner"]
    assert runner["profiles"] == ["runner"]
    devices = runner["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    others = [s for name, s in services(compose).items() if name != "runner"]
    assert all("profiles" not in s for s in others)


def test_no_secret_is_committed(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for key, value in service.get("environment", {}).items():
            if "PASSWORD" in key:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (name, key)
            if key == "COMMITBENCH_DB":
                assert "${POSTGRES_PASSWORD:?" in value, name
    example = (ROOT / ".env.example").read_text()
    for line in example.splitlines():
        if "PASSWORD=" in line:
            assert line.endswith("="), f".env.example sets a password: {line}"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_every_variable_compose_reads_is_documented(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m for m in ENV_REF.findall(text.replace("$$", ""))}
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used <= documented, used - documented


def test_dockerfile_installs_the_package_without_the_bench_extra() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", text)
    commands = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if "torch" in line or "[bench]" in line]


# -- provisioning -----------------------------------------------------------------------


def load(relative: str) -> dict[str, Any]:
    loaded = yaml.safe_load((PROVISIONING / relative).read_text())
    assert loaded["apiVersion"] == 1
    return loaded  # type: ignore[no-any-return]


def test_datasource_is_the_read_only_role_with_the_fixed_uid(compose: dict[str, Any]) -> None:
    (ds,) = load("datasources/commitbench.yaml")["datasources"]
    assert ds["uid"] == names.DATASOURCE_UID and ds["type"] == names.DATASOURCE_TYPE
    assert ds["url"] == "postgres:5432"
    assert ds["user"] == "$COMMITBENCH_READONLY_ROLE"
    assert ds["secureJsonData"]["password"] == "$COMMITBENCH_READONLY_PASSWORD"
    assert "password" not in ds and "password" not in ds["jsonData"]
    assert ds["editable"] is False
    # Every $VAR the file reads is in Grafana's environment.
    env = services(compose)["grafana"]["environment"]
    text = (PROVISIONING / "datasources/commitbench.yaml").read_text()
    needed = set(ENV_REF.findall(text.split("\n", 5)[-1]))
    assert needed <= set(env), needed - set(env)


def test_dashboard_provider_reads_the_mounted_dashboards(compose: dict[str, Any]) -> None:
    (provider,) = load("dashboards/commitbench.yaml")["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    path = provider["options"]["path"]
    source, mode = mounts(services(compose)["grafana"])[path]
    assert mode == "ro"
    on_host = sorted(p.name for p in (ROOT / source).glob("*.json"))
    assert on_host == sorted(BUILDERS)


def test_alert_rule_queries_the_data_source_and_fires_on_any_row() -> None:
    (group,) = load("alerting/regressions.yaml")["groups"]
    (rule,) = group["rules"]
    refs = {d["refId"]: d for d in rule["data"]}
    assert refs["A"]["datasourceUid"] == names.DATASOURCE_UID
    assert "g.state = 'open'" in refs["A"]["model"]["rawSql"]
    assert refs["B"]["model"]["expression"] == "A"
    assert refs["C"]["model"]["expression"] == "B"
    assert rule["condition"] == "C"
    assert rule["noDataState"] == "OK"
    assert group["folder"] == names.FOLDER
