"""What cannot run here (no container engine, no cluster), checked against the code it deploys.

The compose file goes through a real compose CLI's `config`; the topic script runs with a stand-in
`kafka-topics.sh`; the Grafana panels, the rules, the Kubernetes manifests and the Dockerfile are
compared with the worker's metrics registry, its settings and its web routes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sla_stream.cli.notify import DEFAULT_WEB_PORT, ENV_VARS
from sla_stream.notify.metrics import BridgeMetrics
from sla_stream.settings import Settings
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.topics import topic_specs
from sla_stream.worker_app import canonical_url
from tests.system_programs import require

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SETTINGS_VARS = {f"SLA_{name.upper()}" for name in Settings.model_fields}
NOTIFY_VARS = set(ENV_VARS.values())
# Metrics other programs export, named in panels and rules on purpose.
EXTERNAL_METRICS = {"up", "kafka_consumergroup_lag"}


# -- helpers ----------------------------------------------------------------------------------


def exported(registry: CollectorRegistry) -> set[str]:
    """Every sample name a registry's families can expose."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "summary": ("", "_count", "_sum", "_created"),
    }
    return {f.name + s for f in registry.collect() for s in suffixes[f.type]}


WORKER_METRICS = exported(Metrics().registry)
BRIDGE_METRICS = exported(BridgeMetrics().registry)

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "bool"}
_KEYWORDS |= {"group_right", "offset", "inf", "nan"}


def metric_names(promql: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[m.end() :].lstrip()
        if m.group() not in _KEYWORDS and not rest.startswith("("):
            names.add(m.group())
    return names


def test_metric_names_finds_selectors_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(sla_x_bucket{job="a b"}[5m]))) > 1 '
        "and on (i) deriv(sum(foo)[10m:1m]) unless bool up"
    )
    assert metric_names(expr) == {"sla_x_bucket", "foo", "up"}


@cache
def worker_routes() -> frozenset[str]:
    """The paths the worker's web server serves, from the app itself."""
    import tempfile

    from sla_stream.worker_app import create_app

    settings = Settings(broker="127.0.0.1:1", data_dir=Path(tempfile.mkdtemp()))
    return frozenset(create_app(settings, "127.0.0.1:1").faust.web.views)


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def manifests() -> Iterator[dict[str, Any]]:
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests() if m["kind"] == kind]


# -- compose ----------------------------------------------------------------------------------


def compose_cli() -> list[str]:
    """The compose CLI: Docker's plugin if present, else Debian's docker-compose."""
    docker = shutil.which("docker")
    if docker:
        done = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if done.returncode == 0:
            return [docker, "compose"]
    return [require("docker-compose")]


def test_compose_config_parses_with_a_real_compose_cli() -> None:
    cli = compose_cli()
    config = [*cli, "-f", str(DEPLOY / "compose.yaml"), "config"]
    access = {"SLA_VIEWER_TOKEN_HASHES": "0" * 64, "SLA_CLUSTER_SECRET": "s" * 32}
    bare = {k: v for k, v in os.environ.items() if k not in access}
    # The workers' access variables are required: `config` (hence `up`) names them when unset.
    refused = subprocess.run(config, capture_output=True, text=True, timeout=60, env=bare)
    assert refused.returncode != 0 and "SLA_VIEWER_TOKEN_HASHES" in refused.stderr
    env = {**bare, **access}
    done = subprocess.run(config, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) == set(compose()["services"])
    worker = resolved["services"]["worker-1"]
    assert {k: worker["environment"][k] for k in access} == access
    assert worker["build"]["dockerfile"] == "deploy/Dockerfile"
    assert Path(worker["build"]["context"]).resolve() == REPO


def test_compose_runs_the_whole_system_next_to_apache_kafka() -> None:
    services = compose()["services"]
    assert set(services) >= {"kafka", "topics", "contracts", "worker-1", "worker-2", "notify"}
    assert set(services) >= {"prometheus", "alertmanager", "grafana"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    one_shot = {"condition": "service_completed_successfully"}
    assert services["topics"]["depends_on"]["kafka"] == {"condition": "service_healthy"}
    assert services["contracts"]["depends_on"]["topics"] == one_shot
    assert services["contracts"]["command"][:2] == ["contracts", "apply"]
    for name in ("worker-1", "worker-2"):
        assert services[name]["depends_on"]["topics"] == one_shot
        assert services[name]["command"] == ["worker"]
    volumes = {services[n]["volumes"][0].split(":")[0] for n in ("worker-1", "worker-2")}
    assert len(volumes) == 2  # each worker its own RocksDB volume
    assert services["notify"]["command"] == ["notify", "alertmanager"]
    url = services["notify"]["environment"]["SLA_ALERTMANAGER_URL"]
    assert url == "http://alertmanager:9093"


def test_compose_configures_sla_stream_by_sla_variables_only() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if service.get("image", "").startswith("sla-stream") or "build" in service:
            env = service["environment"]
            allowed = SETTINGS_VARS | (NOTIFY_VARS if name == "notify" else set())
            assert set(env) <= allowed, (name, set(env) - allowed)
            Settings(**{k[4:].lower(): v for k, v in env.items() if k in SETTINGS_VARS})
    assert set(services["topics"]["environment"]) <= SETTINGS_VARS


def test_compose_workers_are_reached_by_their_service_names() -> None:
    services = compose()["services"]
    for name in ("worker-1", "worker-2"):
        env = services[name]["environment"]
        settings = Settings(**{k[4:].lower(): v for k, v in env.items() if k in SETTINGS_VARS})
        assert canonical_url(settings) == f"http://{name}:{settings.web_port}"


def test_compose_bind_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)


def test_prometheus_scrapes_the_compose_services_on_their_ports() -> None:
    services = compose()["services"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    web_port = services["worker-1"]["environment"]["SLA_WEB_PORT"]
    assert sorted(jobs["sla-stream"]) == [f"worker-1:{web_port}", f"worker-2:{web_port}"]
    assert jobs["sla-notify"] == [
        f"notify:{services['notify']['environment']['SLA_NOTIFY_WEB_PORT']}"
    ]
    for target in (t for targets in jobs.values() for t in targets):
        host = target.split(":")[0]
        assert host == "localhost" or host in services, target
    assert "/metrics" in worker_routes()


def test_the_topic_script_creates_what_the_workers_declare(tmp_path: Path) -> None:
    """Run it with a stand-in kafka-topics.sh that prints its arguments."""
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    script = (DEPLOY / "kafka" / "create-topics.sh").read_text()
    assert script.count("/opt/kafka/bin/kafka-topics.sh") == 1
    (tmp_path / "run.sh").write_text(script.replace("/opt/kafka/bin/kafka-topics.sh", str(fake)))
    env = {"SLA_BROKER": "kafka:9092", "SLA_PARTITIONS": "6", "SLA_REPLICATION_FACTOR": "3"}
    env["SLA_TOPIC_PREFIX"] = "ops."
    done = subprocess.run(["sh", str(tmp_path / "run.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    created = {}
    for line in done.stdout.splitlines():
        args = line.split()
        if "--create" in args:
            value = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
            configs = dict(args[i + 1].split("=") for i, a in enumerate(args) if a == "--config")
            created[value["--topic"]] = (
                int(value["--partitions"]),
                int(value["--replication-factor"]),
                configs,
            )
    settings = Settings(partitions=6, replication_factor=3, topic_prefix="ops.")
    expected = {
        s.name: (s.partitions, s.replication_factor, s.config) for s in topic_specs(settings)
    }
    assert created == expected
    assert created["ops.contracts"][2] == {"cleanup.policy": "compact"}


# -- Grafana ----------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "sla-stream-sre.json").read_text())


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def test_every_panel_queries_metrics_that_are_exported() -> None:
    known = WORKER_METRICS | BRIDGE_METRICS | EXTERNAL_METRICS
    for panel in panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= known, (panel["title"], names - known)


def test_the_sre_panels_read_the_workers_own_metrics() -> None:
    by_title = {p["title"]: [t["expr"] for t in p["targets"]] for p in panels()}

    def reads(title: str, metric: str, *also: str) -> None:
        exprs = by_title[title]
        assert all(metric in metric_names(e) and metric in WORKER_METRICS for e in exprs), exprs
        assert all(all(a in e for a in also) for e in exprs), (title, also)

    reads("Event rate by type", "sla_events_total", "rate(")
    reads("Event processing time", "sla_event_processing_seconds_bucket", "histogram_quantile(")
    reads("Alert lateness", "sla_alert_lateness_seconds_bucket", "histogram_quantile(")
    reads("Dead letters by reason", "sla_dead_letters_total", "by (reason)")
    reads("Open clocks", "sla_open_clocks")
    reads("Adherence by contract", "sla_adherence_ratio", "contract")
    quantiles = {e.split(",")[0] for e in by_title["Alert lateness"]}
    assert quantiles == {
        "histogram_quantile(0.5",
        "histogram_quantile(0.9",
        "histogram_quantile(0.99",
    }


def test_grafana_provisioning_points_at_the_dashboard_and_datasource() -> None:
    root = DEPLOY / "grafana" / "provisioning"
    datasource = yaml.safe_load((root / "datasources" / "prometheus.yaml").read_text())
    (ds,) = datasource["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == ds["uid"]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels())
    provider = yaml.safe_load((root / "dashboards" / "sla-stream.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_rules_name_exported_metrics_and_carry_a_summary_and_runbook() -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {
        "SlaStreamWorkerDown",
        "SlaStreamConsumerLagGrowing",
        "SlaStreamAlertLatenessHigh",
    } <= names
    assert {"SlaStreamDeadLetters", "SlaStreamEventsRejected"} <= names
    known = WORKER_METRICS | BRIDGE_METRICS | EXTERNAL_METRICS
    for rule in rules:
        assert re.fullmatch(r"(Sla[A-Z][A-Za-z]+)", rule["alert"])
        assert metric_names(rule["expr"]) <= known, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"]
        assert rule["labels"]["urgency"] in {"page", "ticket"}
        assert "severity" not in rule["labels"]  # the SLA alerts' severity is P1..P4


# -- Kubernetes -------------------------------------------------------------------------------


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The SLA_* variables a container gets, from the ConfigMap it names and its own env."""
    maps = {m["metadata"]["name"]: m["data"] for m in of_kind("ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]])
        else:  # secrets are the user's; only the workers cannot run without theirs
            required = container["name"] == "worker"
            assert source["secretRef"].get("optional") is (None if required else True)
    # Downward-API variables (the pod's name) only feed `$(NAME)` references in SLA_* values:
    # expand them the way the kubelet does, with a stand-in for the pod's own value.
    downward = {
        e["name"]: f"<{e['valueFrom']['fieldRef']['fieldPath']}>"
        for e in container.get("env", [])
        if "valueFrom" in e
    }
    for e in container.get("env", []):
        if "value" in e:
            value = e["value"]
            for name, stand_in in downward.items():
                value = value.replace(f"$({name})", stand_in)
            env[e["name"]] = value
    return env


def workloads() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for m in manifests():
        if m["kind"] in ("StatefulSet", "Deployment", "Job"):
            for c in m["spec"]["template"]["spec"]["containers"]:
                yield m["kind"], m, c


def test_k8s_manifests_parse_and_kustomize_lists_them_all() -> None:
    kinds = sorted(m["kind"] for m in manifests())
    assert kinds == ["ConfigMap", "Deployment", "Job", "Service", "StatefulSet"]
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_k8s_environment_names_are_settings() -> None:
    for kind, _, container in workloads():
        env = container_env(container)
        allowed = SETTINGS_VARS | (NOTIFY_VARS if container["name"] == "notify" else set())
        assert set(env) <= allowed, (kind, set(env) - allowed)
        Settings(**{k[4:].lower(): v for k, v in env.items() if k in SETTINGS_VARS})


def test_the_statefulset_probes_and_ports_match_the_worker() -> None:
    (sts,) = of_kind("StatefulSet")
    (svc,) = of_kind("Service")
    spec = sts["spec"]
    pod = spec["template"]
    (worker,) = pod["spec"]["containers"]
    env = container_env(worker)
    settings = Settings(**{k[4:].lower(): v for k, v in env.items()})
    assert settings.web_host == "0.0.0.0"  # probes and scrapes come from outside the pod
    # ...but peers forward requests to each pod by its own stable name under the headless
    # service, never to 0.0.0.0 (every pod would take every request as its own).
    assert settings.web_url == f"http://<metadata.name>.{svc['metadata']['name']}:6066"
    assert canonical_url(settings) == settings.web_url
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports == {"web": settings.web_port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = worker[probe]["httpGet"]
        assert get["port"] == "web" and get["path"] == "/healthz"
        assert get["path"] in worker_routes()
    notes = pod["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert int(notes["prometheus.io/port"]) == settings.web_port
    assert notes["prometheus.io/path"] in worker_routes()
    # RocksDB on a persistent volume mounted where SLA_DATA_DIR points.
    (claim,) = spec["volumeClaimTemplates"]
    mount = next(m for m in worker["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    assert Path(mount["mountPath"]) == settings.data_dir
    # Headless service that selects these pods and names the web port.
    assert svc["spec"]["clusterIP"] == "None" and spec["serviceName"] == svc["metadata"]["name"]
    labels = pod["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] == labels
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "web"
    assert worker["resources"]["requests"]["cpu"] and worker["resources"]["limits"]["memory"]


def test_the_contracts_job_and_the_bridge() -> None:
    (job,) = of_kind("Job")
    (apply,) = job["spec"]["template"]["spec"]["containers"]
    assert apply["args"][:2] == ["contracts", "apply"]
    mounted = {m["mountPath"] for m in apply["volumeMounts"]}
    assert str(Path(apply["args"][2]).parent) in mounted
    (notify,) = of_kind("Deployment")
    (bridge,) = notify["spec"]["template"]["spec"]["containers"]
    assert bridge["args"] == ["notify", "alertmanager"]
    env = container_env(bridge)
    port = int(env[ENV_VARS["web_port"]])
    assert port == DEFAULT_WEB_PORT and env[ENV_VARS["web_host"]] == "0.0.0.0"
    assert {p["containerPort"] for p in bridge["ports"]} == {port}
    assert int(notify["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]) == port
    for _, _, container in workloads():
        assert container["resources"]["requests"], container["name"]


# -- Dockerfile -------------------------------------------------------------------------------


def test_the_dockerfile_builds_the_cli_and_sets_only_sla_variables() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["sla-stream"]' in text and 'CMD ["worker"]' in text
    env_block = re.search(r"^ENV (.+?)(?=^\S)", text, re.S | re.M)
    assert env_block
    names = set(re.findall(r"([A-Z_]+)=", env_block.group(1))) - {"PYTHONUNBUFFERED"}
    assert names <= SETTINGS_VARS | NOTIFY_VARS, names
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    assert exposed == {Settings().web_port, DEFAULT_WEB_PORT}
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (REPO / source).exists(), source


@pytest.mark.parametrize("path", ["compose.yaml", "prometheus/alertmanager.yml"])
def test_yaml_files_parse(path: str) -> None:
    assert yaml.safe_load((DEPLOY / path).read_text())


# Settings of a worker that serves beyond loopback (viewer tokens, hence a cluster secret).
SERVED = {"viewer_token_hashes": ["0" * 64], "cluster_secret": "s" * 32}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:6066"),
        ({"web_host": "10.0.0.7", "web_port": 7000, **SERVED}, "http://10.0.0.7:7000"),
        ({"web_host": "0.0.0.0", **SERVED}, "http://node-3.workers.example:6066"),
        ({"web_host": "::", **SERVED}, "http://node-3.workers.example:6066"),
        ({"web_host": "::1"}, "http://[::1]:6066"),
        # No viewer token: the server listens on loopback only, and says where.
        ({"web_host": "0.0.0.0"}, "http://127.0.0.1:6066"),
        ({"web_host": "10.0.0.7"}, "http://127.0.0.1:6066"),
        (
            {"web_host": "0.0.0.0", "web_url": "https://sla-1.internal:8443/"},
            "https://sla-1.internal:8443",
        ),
    ],
)
def test_the_canonical_url_is_never_a_wildcard_address(env: dict[str, Any], expected: str) -> None:
    assert canonical_url(Settings(**env), fqdn=lambda: "node-3.workers.example") == expected


@pytest.mark.parametrize("url", ["http://0.0.0.0:6066", "worker-1:6066", "ftp://worker-1"])
def test_a_web_url_no_peer_can_use_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="web_url"):
        Settings(web_url=url)
