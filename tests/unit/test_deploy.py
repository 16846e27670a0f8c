"""The Kubernetes deployment in deploy/: the cairn chart and the Milvus chart values, checked offline.

The cairn chart is rendered by Helm's own engine (helm-python-sdk binds the Helm Go SDK, so this is
`helm template` without the binary), and every object it renders is validated against the
Kubernetes OpenAPI schemas that kubernetes-validate ships (strict: unknown fields are errors).
Nothing is downloaded at test time. What the manifests say about cairn itself (probe paths, port,
environment variable names) is checked against cairn's own app and `Settings`.

The Milvus chart is not vendored: its values files are checked against deploy/values/milvus.schema.json,
which pins the key names of the chart version they target and the settings cairn depends on. Nor is
CloudNativePG's CRD: the example catalog cluster is checked against deploy/postgres/cnpg-cluster.schema.json,
and any core object beside it against the Kubernetes schemas.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import typer.main
import yaml
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from typer.core import TyperGroup

from cairn import Settings
from cairn.catalog.engine import catalog_engine
from cairn.cli import app as cli_app
from cairn.core import Cairn
from cairn.http import PUBLIC_ROUTES, create_app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CHART = DEPLOY / "charts" / "cairn"
VALUES = DEPLOY / "values"
CAIRN_EXAMPLES = sorted(VALUES.glob("cairn-*.yaml"))
MILVUS_EXAMPLES = sorted(VALUES.glob("milvus-*.yaml"))
CNPG_EXAMPLE = DEPLOY / "postgres" / "cnpg-cluster.yaml"
KUBERNETES_VERSION = "1.30.0"  # the oldest release still maintained when the chart was written

# Variables the chart sets that are not cairn settings: the AWS SDK's (docs/security.md) and the
# cache locations of a read-only root file system.
NON_CAIRN_ENV = {
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "HOME",
    "XDG_CACHE_HOME",
}
# Settings typed as secrets (milvus_token, llm_api_key, encryption_key, ...) and the S3 keys.
SECRET_ENV = {
    f"CAIRN_{name.upper()}"
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
} | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """`helm template cairn deploy/charts/cairn -n cairn` with *values*: every object rendered."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name="cairn", namespace="cairn")
    return [
        obj
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for obj in yaml.safe_load_all(text)
        if obj
    ]


def validate_object(obj: dict[str, Any]) -> None:
    """Validate one object against the Kubernetes schema of its kind; raise if it does not conform."""
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def the(objects: list[dict[str, Any]], kind: str, component: str = "api") -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind and o["metadata"]["labels"].get("app.kubernetes.io/component", component) == component
    ]
    assert len(found) == 1, f"expected one {kind} ({component}), found {len(found)}"
    return found[0]


def containers(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            yield from obj["spec"]["template"]["spec"]["containers"]


@pytest.fixture(scope="module", params=CAIRN_EXAMPLES, ids=lambda p: p.name)
def example(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The chart rendered with one of the example values files."""
    return render(_load(request.param))


def test_there_is_an_example_for_the_x10000_and_for_minio() -> None:
    """Both stores the issue names have a cairn and a Milvus example."""
    assert {p.name for p in CAIRN_EXAMPLES} == {"cairn-x10000.yaml", "cairn-minio.yaml"}
    assert {p.name for p in MILVUS_EXAMPLES} == {"milvus-x10000.yaml", "milvus-minio.yaml"}


# -- the cairn chart: Helm and the Kubernetes schemas ------------------------------------------------


def test_the_chart_lints_clean_with_each_example() -> None:
    """`helm lint --strict` finds no error or warning with either example."""
    for path in CAIRN_EXAMPLES:
        report = helm.lint(CHART, _load(path), strict=True, kube_version=f"v{KUBERNETES_VERSION}")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"], (path.name, report)
        assert not problems, (path.name, report)


def test_every_rendered_object_is_valid_kubernetes(example: list[dict[str, Any]]) -> None:
    """Each object conforms to the strict Kubernetes schema of its kind and version."""
    kinds = {obj["kind"] for obj in example}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ServiceAccount", "PodDisruptionBudget"} <= kinds
    for obj in example:
        validate_object(obj)


def test_the_validator_rejects_a_broken_manifest(example: list[dict[str, Any]]) -> None:
    """A misspelt field, a wrong type and a missing required field are each caught: the check can fail."""
    deployment = the(example, "Deployment")
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {"path": "/healthz"}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    missing = copy.deepcopy(deployment)
    del missing["spec"]["selector"]
    for broken in (misspelt, wrong_type, missing):
        with pytest.raises(kubernetes_validate.ValidationError):
            validate_object(broken)


def test_the_values_schema_refuses_what_would_deploy_wrongly() -> None:
    """values.schema.json stops typos, a writable root file system and a non-S3 store before rendering."""
    good = _load(VALUES / "cairn-x10000.yaml")
    render(good)
    typo = copy.deepcopy(good)
    typo["cairn"]["denseIndx"] = "HNSW"
    writable = copy.deepcopy(good)
    writable["securityContext"] = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False}
    local_store = copy.deepcopy(good)
    local_store["cairn"]["store"] = "/var/lib/cairn/vault"
    plain_catalog_url = copy.deepcopy(good)
    plain_catalog_url["catalog"]["url"] = "postgresql+psycopg://cairn:hunter2@db:5432/cairn"
    for bad in (typo, writable, local_store, plain_catalog_url):
        with pytest.raises(helm.HelmValuesError):
            render(bad)


def test_rendering_without_milvus_or_a_store_fails_with_the_setting_to_fix() -> None:
    """The chart's defaults alone do not deploy: Milvus and the vault bucket must be named."""
    with pytest.raises(helm.HelmRenderError, match=r"cairn\.milvusUri is required"):
        render({})


# -- the cairn chart against cairn itself ------------------------------------------------------------


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The paths cairn's HTTP app serves."""
    cairn = Cairn(Settings(home=tmp_path_factory.mktemp("home")))
    try:
        return {getattr(route, "path", "") for route in create_app(cairn).routes}
    finally:
        cairn.close()


def test_probes_ask_real_unauthenticated_routes_on_the_served_port(
    example: list[dict[str, Any]], app_routes: set[str]
) -> None:
    """Liveness asks /healthz, readiness /readyz; both exist, need no key, and use the port cairn serves on."""
    container = the(example, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container["args"]
    assert container["command"] == ["cairn"]
    assert args[0] == "serve"
    served_port = int(args[args.index("--port") + 1])
    assert args[args.index("--host") + 1] != "127.0.0.1", "a pod must listen beyond loopback"
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container[kind]["httpGet"]
        assert probe["path"] in app_routes, f"{kind} asks {probe['path']}, which cairn does not serve"
        assert probe["path"] in PUBLIC_ROUTES, f"{kind} asks {probe['path']}, which needs an API key"
        assert ports[probe["port"]] == served_port
    service = the(example, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def test_every_cairn_variable_is_a_real_setting(example: list[dict[str, Any]]) -> None:
    """Each CAIRN_* variable names a field of `Settings`; anything else is a known SDK variable."""
    fields = {f"CAIRN_{name.upper()}" for name in Settings.model_fields}
    for container in containers(example):
        for name in _env(container):
            assert name in fields or name in NON_CAIRN_ENV, f"{name} is neither a cairn setting nor expected"


def test_the_rendered_environment_is_accepted_by_settings(
    example: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain values the chart sets parse as cairn `Settings` (secrets filled with stand-ins)."""
    env = _env(the(example, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    for name, item in env.items():
        monkeypatch.setenv(name, item.get("value", "stand-in:secret"))
    settings = Settings()
    assert str(settings.milvus_uri).startswith("https://")
    assert str(settings.store).startswith("s3://")
    assert settings.dense_index == "HNSW"
    assert settings.parse_workers == int(env["CAIRN_PARSE_WORKERS"]["value"])


def test_secrets_come_from_secret_references_only(example: list[dict[str, Any]]) -> None:
    """Tokens are `secretKeyRef`s, keys and CAs read-only mounted files; no Secret or literal secret is rendered."""
    assert not [o for o in example if o["kind"] == "Secret"]
    assert {"CAIRN_MILVUS_TOKEN", "CAIRN_LLM_API_KEY", "CAIRN_ENCRYPTION_KEY"} <= SECRET_ENV
    env = _env(the(example, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    for name in SECRET_ENV & env.keys():
        assert "value" not in env[name], name
        assert "secretKeyRef" in env[name]["valueFrom"], name
    assert {"CAIRN_MILVUS_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env.keys()
    mounts = the(example, "Deployment")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    for name in ("CAIRN_ENCRYPTION_KEY_FILE", "CAIRN_S3_CA_BUNDLE", "CAIRN_MILVUS_TLS_CA"):
        file = env[name]["value"]
        assert any(file.startswith(m["mountPath"] + "/") and m.get("readOnly") for m in mounts), name


def test_pods_run_non_root_on_a_read_only_root_with_writable_scratch(example: list[dict[str, Any]]) -> None:
    """Non-root, no privilege escalation, all capabilities dropped; CAIRN_HOME and /tmp are volumes."""
    for obj in example:
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            mounted = {m["mountPath"] for m in container["volumeMounts"]}
            assert {_env(container)["CAIRN_HOME"]["value"], "/tmp"} <= mounted


def test_the_autoscaler_owns_the_replica_count(example: list[dict[str, Any]]) -> None:
    """With the HPA on, the Deployment sets no replicas, and the HPA targets that Deployment by name."""
    deployment, hpa = the(example, "Deployment"), the(example, "HorizontalPodAutoscaler")
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2


# -- the catalog and the workers --------------------------------------------------------------------


def _command(container: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The cairn subcommand a container runs and its options, as cairn's own CLI parses them."""
    assert container["command"] == ["cairn"]
    name, *args = container["args"]
    group = typer.main.get_command(cli_app)
    assert isinstance(group, TyperGroup)
    command = group.commands[name]
    return name, command.make_context(name, list(args)).params


def _single_pod(values: dict[str, Any]) -> dict[str, Any]:
    """*values* turned into one API pod that runs its own jobs: no autoscaling, no workers."""
    single = copy.deepcopy(values)
    single["replicaCount"] = 1
    single["autoscaling"]["enabled"] = False
    single["workers"] = {**single["workers"], "enabled": False}
    return single


def test_the_worker_deployment_runs_cairn_worker_with_the_apis_settings(example: list[dict[str, Any]]) -> None:
    """`cairn worker` pods: the API's image, environment and volumes, no port or probe, a batch's grace."""
    api = the(example, "Deployment")["spec"]["template"]["spec"]
    worker = the(example, "Deployment", "worker")["spec"]["template"]["spec"]
    (api_container,), (container,) = api["containers"], worker["containers"]
    name, options = _command(container)
    assert name == "worker"
    assert options["until_idle"] is False, "a worker pod that exits when idle would be restarted in a loop"
    assert container["image"] == api_container["image"]
    assert container["env"] == api_container["env"]
    assert container["volumeMounts"] == api_container["volumeMounts"]
    assert worker["volumes"] == api["volumes"]
    assert "ports" not in container
    assert not {"startupProbe", "livenessProbe", "readinessProbe"} & container.keys()
    assert worker["terminationGracePeriodSeconds"] >= 120
    pod_labels = the(example, "Deployment", "worker")["spec"]["template"]["metadata"]["labels"]
    for service in (o for o in example if o["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        assert not selector <= pod_labels.items(), f"Service {service['metadata']['name']} selects the workers"


@pytest.mark.parametrize("path", CAIRN_EXAMPLES, ids=lambda p: p.name)
def test_every_pod_reads_the_catalog_url_from_the_named_secret(path: Path) -> None:
    """API, worker and toolbox containers all get CAIRN_CATALOG_URL from `catalog.existingSecret`/`secretKey`."""
    values = _load(path)
    objects = render(values)
    expected = {"name": values["catalog"]["existingSecret"], "key": values["catalog"]["secretKey"]}
    assert expected["name"]
    deployments = {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in objects if o["kind"] == "Deployment"}
    assert {"api", "worker"} <= deployments
    for container in containers(objects):
        env = _env(container)["CAIRN_CATALOG_URL"]
        assert "value" not in env
        assert env["valueFrom"]["secretKeyRef"] == expected, container["name"]


def test_api_pods_leave_ingest_to_the_workers_when_there_are_workers() -> None:
    """With workers the API runs `cairn serve --no-worker`; without them it runs jobs itself and no worker renders."""
    values = _load(VALUES / "cairn-x10000.yaml")
    assert values["workers"]["enabled"] is True
    with_workers = render(values)
    name, options = _command(the(with_workers, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert (name, options["worker"]) == ("serve", False)

    alone = copy.deepcopy(values)
    alone["workers"]["enabled"] = False
    without_workers = render(alone)
    name, options = _command(the(without_workers, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert (name, options["worker"]) == ("serve", True)
    assert not [o for o in without_workers if o["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"]


def test_workers_get_their_own_disruption_budget(example: list[dict[str, Any]]) -> None:
    """Beside the API's PodDisruptionBudget, one that selects exactly the worker pods and lets a drain proceed."""
    budget = the(example, "PodDisruptionBudget", "worker")
    worker = the(example, "Deployment", "worker")
    assert budget["spec"]["selector"] == worker["spec"]["selector"]
    assert budget["spec"]["maxUnavailable"] >= 1
    assert the(example, "PodDisruptionBudget")["spec"]["selector"] == the(example, "Deployment")["spec"]["selector"]


def test_the_service_pins_no_client_to_a_pod(example: list[dict[str, Any]]) -> None:
    """Jobs live in the catalog and any pod answers for them, so the Service sets no ClientIP affinity."""
    assert the(example, "Service")["spec"].get("sessionAffinity", "None") == "None"


@pytest.mark.parametrize(
    "more_pods",
    [
        pytest.param(lambda v: v["autoscaling"].update(enabled=True), id="autoscaling"),
        pytest.param(lambda v: v.update(replicaCount=3), id="three-api-replicas"),
        pytest.param(lambda v: v["workers"].update(enabled=True), id="one-api-pod-and-workers"),
    ],
)
def test_the_chart_refuses_several_pods_without_a_shared_catalog(more_pods: Any) -> None:
    """Without `catalog.existingSecret` one lone pod renders (SQLite); several pods fail, saying why."""
    values = _load(VALUES / "cairn-x10000.yaml")
    values["catalog"]["existingSecret"] = ""
    single = _single_pod(values)
    alone = render(single)
    assert all("CAIRN_CATALOG_URL" not in _env(c) for c in containers(alone))
    more_pods(single)
    with pytest.raises(helm.HelmRenderError, match=r"catalog\.existingSecret is required.*share one catalog"):
        render(single)


# -- the catalog's PostgreSQL: the CloudNativePG example ----------------------------------------------


@pytest.fixture(scope="module")
def cnpg_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((DEPLOY / "postgres" / "cnpg-cluster.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _cnpg_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(CNPG_EXAMPLE.read_text()) if doc]


def test_the_cnpg_example_validates(cnpg_schema: jsonschema.Draft7Validator) -> None:
    """The `Cluster` meets cnpg-cluster.schema.json (3 instances, database and owner `cairn`).

    Any core object beside it is valid Kubernetes.
    """
    documents = _cnpg_documents()
    clusters = [doc for doc in documents if doc["apiVersion"].startswith("postgresql.cnpg.io/")]
    assert len(clusters) == 1
    for doc in documents:
        if doc in clusters:
            errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in cnpg_schema.iter_errors(doc)]
            assert not errors, errors
        else:
            validate_object(doc)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda c: c.update(apiVersion="postgresql.cnpg.io/v2"), "an API version CloudNativePG does not serve"),
        (lambda c: c["spec"].update(instances=1), "a single instance, with no failover"),
        (lambda c: c["spec"]["bootstrap"]["initdb"].update(database="app"), "a database other than cairn"),
        (lambda c: c["spec"]["storage"].update(sise="20Gi"), "a misspelt field"),
        (lambda c: c["spec"].update(enableSuperuserAccess=True), "superuser logins over the network"),
        (lambda c: c["spec"].update(imageName="ghcr.io/cloudnative-pg/postgresql:12.20"), "PostgreSQL 12"),
    ],
)
def test_the_cnpg_schema_rejects_a_cluster_cairn_should_not_use(
    change: Any, why: str, cnpg_schema: jsonschema.Draft7Validator
) -> None:
    """Each broken variant of the example Cluster fails validation."""
    (cluster,) = (doc for doc in _cnpg_documents() if doc["kind"] == "Cluster")
    change(cluster)
    assert list(cnpg_schema.iter_errors(cluster)), f"accepted {why}"


def test_the_examples_read_the_catalog_url_cnpg_generates_and_cairn_opens_it() -> None:
    """The example values name the cluster's `<name>-app` Secret and its `uri`, and that URL opens with psycopg 3.

    The `uri` is built as CloudNativePG 1.30 builds it (pkg/specs/secrets.go): `postgresql://`, the
    owner and its URL-escaped password, the `-rw` Service in the cluster's namespace, port 5432, the
    database. Plain `postgresql://` selects psycopg 3 since SQLAlchemy 2.1, the driver cairn ships.
    """
    (cluster,) = (doc for doc in _cnpg_documents() if doc["kind"] == "Cluster")
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    host = f"{cluster['metadata']['name']}-rw.{cluster['metadata']['namespace']}"
    password = "p@ss:w/rd%"
    uri = f"postgresql://{initdb['owner']}:{quote(password, safe='')}@{host}:5432/{initdb['database']}"
    parsed = make_url(Settings(catalog_url=SecretStr(uri)).catalog_database)
    assert (parsed.username, parsed.password, parsed.host, parsed.database) == ("cairn", password, host, "cairn")
    engine = catalog_engine(uri)
    try:
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    finally:
        engine.dispose()
    for path in CAIRN_EXAMPLES:
        catalog = _load(path)["catalog"]
        assert catalog == {"existingSecret": f"{cluster['metadata']['name']}-app", "secretKey": "uri"}, path.name


# -- the Milvus chart values -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def milvus_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((VALUES / "milvus.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("path", MILVUS_EXAMPLES, ids=lambda p: p.name)
def test_milvus_values_meet_cairns_requirements(path: Path, milvus_schema: jsonschema.Draft7Validator) -> None:
    """Cluster mode, Milvus >= 2.5, external S3 over TLS, keys from Secrets, only the chart's key names."""
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in milvus_schema.iter_errors(_load(path))]
    assert not errors, errors


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda v: v["externalS3"].update(usessl=True), "a key the chart does not have"),
        (lambda v: v["minio"].update(enabled=True), "the bundled MinIO with its default keys"),
        (lambda v: v["externalS3"].update(secretKey="hunter2"), "a secret written into values"),
        (lambda v: v["image"]["all"].update(tag="v2.4.16"), "a Milvus without BM25"),
        (lambda v: v["queryNode"].update(extraEnv=[]), "a node without the S3 keys"),
    ],
)
def test_the_milvus_schema_rejects_values_cairn_cannot_use(
    change: Any, why: str, milvus_schema: jsonschema.Draft7Validator
) -> None:
    """Each broken variant of a good example fails validation."""
    values = _load(VALUES / "milvus-x10000.yaml")
    change(values)
    assert list(milvus_schema.iter_errors(values)), f"accepted {why}"


def _milvus_config_key(name: str) -> str:
    """How Milvus matches an environment variable to a milvus.yaml key (paramtable's formatter)."""
    return name.lower().removeprefix("milvus.").replace("/", "").replace("_", "").replace(".", "")


@pytest.mark.parametrize("path", MILVUS_EXAMPLES, ids=lambda p: p.name)
def test_milvus_config_turns_on_authentication_and_tls(path: Path) -> None:
    """user.yaml enables authorization and proxy TLS with mounted certificates, and trusts the S3 CA."""
    values = _load(path)
    config = yaml.safe_load(values["extraConfigFiles"]["user.yaml"])
    assert config["common"]["security"]["authorizationEnabled"] is True
    assert config["common"]["security"]["tlsMode"] in (1, 2)
    proxy_mounts = [m["mountPath"] for m in values["proxy"]["volumeMounts"]]
    for file in (config["tls"]["serverPemPath"], config["tls"]["serverKeyPath"]):
        assert any(file.startswith(m.rstrip("/") + "/") for m in proxy_mounts), file
    ca = config["minio"]["ssl"]["tlsCACert"]
    assert any(ca.startswith(m["mountPath"].rstrip("/") + "/") for m in values["volumeMounts"]), ca
    env_names = {item["name"] for item in values["proxy"]["extraEnv"]}
    for key in ("minio.accessKeyID", "minio.secretAccessKey", "common.security.defaultRootPassword"):
        assert _milvus_config_key(key) in {_milvus_config_key(n) for n in env_names}, key


@pytest.mark.parametrize("path", MILVUS_EXAMPLES, ids=lambda p: p.name)
def test_milvus_runs_exactly_one_message_queue(path: Path) -> None:
    """One of Pulsar 3, Pulsar 2, Kafka or Woodpecker is on, as chart 4.2.x expects in cluster mode."""
    values = _load(path)
    enabled = [mq for mq in ("pulsarv3", "pulsar", "kafka", "woodpecker") if values.get(mq, {}).get("enabled")]
    assert len(enabled) == 1, enabled
