"""docker-compose.yml: the optional Neo4j 5 server renders, stays on loopback, and has no default password.

No Docker engine is needed: `docker-compose config` only parses, interpolates and validates the
file. The subprocess gets an empty --env-file and no AKG_PASSWORD/COMPOSE_* variables, so a
developer's .env or shell cannot make the tests pass (or fail) by accident.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKER_COMPOSE = shutil.which("docker-compose")
PASSWORD = "Test-only pw 42/x"  # no '$': `config` would print it escaped as '$$'

needs_compose = pytest.mark.skipif(
    DOCKER_COMPOSE is None, reason="Debian's docker-compose is not installed (.ci/run installs it)")


def compose_config(tmp_path: Path, password: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AKG_PASSWORD" and not k.startswith("COMPOSE_")}
    if password is not None:
        env["AKG_PASSWORD"] = password
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    return subprocess.run(
        [DOCKER_COMPOSE, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE),
         "--project-directory", str(REPO), "config"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def rendered(tmp_path):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install pyyaml)")
    result = compose_config(tmp_path, PASSWORD)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@needs_compose
def test_renders_with_password(tmp_path):
    result = compose_config(tmp_path, PASSWORD)
    assert result.returncode == 0, result.stderr
    assert "neo4j" in result.stdout


@needs_compose
def test_image_is_pinned_neo4j_5_community(rendered):
    image = rendered["services"]["neo4j"]["image"]
    assert re.fullmatch(r"neo4j:5\.\d+(\.\d+)?-community", image), image


@needs_compose
def test_ports_published_on_loopback_only(rendered):
    published = {}
    for service in rendered["services"].values():
        for port in service.get("ports", []):
            if isinstance(port, dict):  # long syntax (Compose v2 renders this)
                host_ip, target = port.get("host_ip"), int(port["target"])
            else:  # "127.0.0.1:7687:7687/tcp" (docker-compose 1.x renders this)
                parts = str(port).split("/")[0].split(":")
                host_ip = parts[0] if len(parts) == 3 else None
                target = int(parts[-1])
            assert host_ip == "127.0.0.1", f"port {port!r} is not bound to 127.0.0.1"
            published[target] = host_ip
    assert set(published) == {7474, 7687, 8501, 8000}  # Bolt, Neo4j Browser, the explorer (app), the API


@needs_compose
def test_healthcheck_present(rendered):
    health = rendered["services"]["neo4j"].get("healthcheck")
    assert health, "the neo4j service has no healthcheck"
    assert not health.get("disable", False)
    test = health["test"]
    command = " ".join(test) if isinstance(test, list) else test
    assert "cypher-shell" in command
    assert PASSWORD not in command  # the password is read from the container's NEO4J_AUTH


@needs_compose
def test_named_volumes_for_data_and_logs(rendered):
    declared = set(rendered.get("volumes") or {})
    mounts = {}
    for volume in rendered["services"]["neo4j"].get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume":
                mounts[volume["target"]] = volume["source"]
        else:
            source, target = str(volume).split(":")[:2]
            mounts[target] = source
    assert mounts.get("/data") in declared and mounts.get("/logs") in declared, (mounts, declared)
    assert mounts["/data"] != mounts["/logs"]


@needs_compose
def test_auth_comes_from_akg_password(rendered):
    environment = rendered["services"]["neo4j"]["environment"]
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    assert environment["NEO4J_AUTH"] == f"neo4j/{PASSWORD}"


@needs_compose
def test_cypher_cannot_read_the_servers_files(rendered):
    environment = rendered["services"]["neo4j"]["environment"]
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    assert environment["NEO4J_dbms_security_allow__csv__import__from__file__urls"] == "false"


@needs_compose
@pytest.mark.parametrize("password", [None, ""], ids=["unset", "empty"])
def test_refuses_without_password(tmp_path, password):
    result = compose_config(tmp_path, password)
    assert result.returncode != 0
    assert "AKG_PASSWORD" in result.stdout + result.stderr


def test_no_default_password_in_file():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "AKG_PASSWORD:-" not in text
    uses = re.findall(r"\$\{AKG_PASSWORD([^}]*)\}", text)
    assert uses, "docker-compose.yml does not take the password from AKG_PASSWORD"
    for modifier in uses:
        assert modifier.startswith(":?"), f"${{AKG_PASSWORD{modifier}}} is not required (use :?)"
    assert not re.search(r"NEO4J_AUTH\s*[:=]\s*[\"']?neo4j/(?!\$\{)", text), "a literal NEO4J_AUTH password"
    assert not re.search(r"NEO4J_AUTH\s*[:=]\s*[\"']?none", text, re.IGNORECASE), "authentication disabled"


def _published(service: dict) -> list[tuple[str | None, int, int | None]]:
    """(host_ip, target, published) of each port, in either rendering of docker-compose."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip"), int(port["target"]), int(port["published"]) if port.get("published") else None))
        else:
            parts = str(port).split("/")[0].split(":")
            out.append((parts[0] if len(parts) == 3 else None, int(parts[-1]), int(parts[-2]) if len(parts) > 1 else None))
    return out


@needs_compose
def test_app_service_runs_the_explorer_against_neo4j(rendered):
    app = rendered["services"]["app"]
    assert app.get("build"), "the app is built from the repository's Dockerfile"
    assert (REPO / "Dockerfile").is_file()
    assert _published(app) == [("127.0.0.1", 8501, 8501)]
    depends = app["depends_on"]
    assert isinstance(depends, dict) and depends["neo4j"]["condition"] == "service_healthy"
    environment = app["environment"]
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    assert environment["AKG_URI"] == "bolt://neo4j:7687"
    assert environment["AKG_USER"] == "neo4j" and environment["AKG_DATABASE"] == "neo4j"
    assert environment["AKG_PASSWORD"] == PASSWORD
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'CMD \["akg", "ui", "--host", "0.0.0.0", "--port", "8501", "--no-browser"\]', dockerfile)


@needs_compose
def test_api_service_serves_the_http_api_against_neo4j(rendered):
    api = rendered["services"]["api"]
    assert api.get("build") and _published(api) == [("127.0.0.1", 8000, 8000)]
    assert api["command"][:2] == ["akg", "serve"] and "--allow-public-reads" in api["command"]
    assert api["depends_on"]["neo4j"]["condition"] == "service_healthy"
    environment = api["environment"]
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    assert environment["AKG_URI"] == "bolt://neo4j:7687" and environment["AKG_PASSWORD"] == PASSWORD
    assert "/health" in " ".join(api["healthcheck"]["test"])
