"""docker/ cannot run here (no Docker engine), so keep it consistent with the code by reading it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from ssmd.cli import COMMANDS, PENDING
from ssmd.settings import Settings, env_var

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def test_compose_uses_only_declared_settings() -> None:
    declared = {env_var(f.name) for f in dataclasses.fields(Settings)}
    used = set(re.findall(r"\b(SSMD_[A-Z0-9_]+)\s*:", (DOCKER / "compose.yaml").read_text()))
    assert used, "compose.yaml configures ssmd through SSMD_* settings"
    assert used <= declared, f"unknown settings in compose.yaml: {sorted(used - declared)}"


def test_compose_services_run_real_subcommands() -> None:
    services = _compose()["services"]
    assert {"nats-1", "nats-2", "nats-3", "valkey", "minio", "worker", "gateway"} <= set(services)
    known = set(COMMANDS) | set(PENDING)
    for name in ("worker", "archiver", "raw-archiver", "gateway", "sim"):
        assert services[name]["command"][0] in known
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
    from ssmd.app import group_of

    for name in ("archiver", "raw-archiver"):
        command = services[name]["command"]
        group_of(command[command.index("--agents") + 1].split(","))  # one valid agent group
    assert services["raw-archiver"]["deploy"]["replicas"] == 1
    nats_urls = services["worker"]["environment"]["SSMD_NATS_URL"]
    assert Settings.load({"nats_url": nats_urls}).nats_url == nats_urls


def test_nats_cluster_is_durable_and_fully_routed() -> None:
    for i in (1, 2, 3):
        conf = (DOCKER / "nats" / f"nats-{i}.conf").read_text()
        assert f"server_name: nats-{i}" in conf
        assert re.search(r"^\s*sync_interval:\s*always\s*$", conf, re.M)
        assert sorted(re.findall(r"nats-route://(nats-\d):6222", conf)) == ["nats-1", "nats-2", "nats-3"]


def test_dockerfile_installs_the_package_with_ssmd_entrypoint() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["ssmd"]' in text
    assert "FROM python:3.11" in text
    assert "COPY schemas" in text and "pip install" in text
