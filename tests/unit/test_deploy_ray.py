"""deploy/ray/raycluster.yaml, checked offline: KubeRay's RayCluster as cairn needs it, with valid pod templates.

The KubeRay CRD is not vendored: the cluster is checked against deploy/ray/raycluster.schema.json (the
fields the example uses, under the CRD's names, and cairn's requirements), and each pod template is
checked as a Kubernetes Pod against the schemas kubernetes-validate ships (strict: unknown fields fail).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "ray" / "raycluster.yaml"
SCHEMA = ROOT / "deploy" / "ray" / "raycluster.schema.json"
KUBERNETES_VERSION = "1.30.0"


@pytest.fixture(scope="module")
def schema() -> jsonschema.Draft7Validator:
    loaded = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(loaded)
    return jsonschema.Draft7Validator(loaded)


@pytest.fixture
def cluster() -> dict[str, Any]:
    (found,) = [doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc]
    assert isinstance(found, dict)
    return found


def _templates(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    spec = cluster["spec"]
    return [spec["headGroupSpec"]["template"], *(group["template"] for group in spec["workerGroupSpecs"])]


def test_the_example_meets_the_schema(cluster: dict[str, Any], schema: jsonschema.Draft7Validator) -> None:
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in schema.iter_errors(cluster)]
    assert not errors, errors


def test_every_pod_template_is_a_valid_pod(cluster: dict[str, Any]) -> None:
    """Head and worker templates, wrapped as Pods, pass the Kubernetes schemas (strict)."""
    for template in _templates(cluster):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": template["spec"]}
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_the_ray_version_is_the_one_cairn_pins(cluster: dict[str, Any]) -> None:
    """The cluster's Ray and the driver's must match: Ray refuses a driver of another version."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (pin,) = [re.sub(r"^ray==", "", requirement) for requirement in extras["ray"] if requirement.startswith("ray==")]
    assert cluster["spec"]["rayVersion"] == pin


def test_there_is_a_cpu_group_and_a_gpu_group_asking_for_gpus(cluster: dict[str, Any]) -> None:
    groups = {group["groupName"]: group for group in cluster["spec"]["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    (gpu_container,) = groups["gpu"]["template"]["spec"]["containers"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    (cpu_container,) = groups["cpu"]["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" not in cpu_container["resources"]["limits"]


def _set_head_cpus(cluster: dict[str, Any]) -> None:
    cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = "4"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda c: c["spec"].pop("authOptions"), "no token authentication"),
        (lambda c: c["spec"]["authOptions"].update(mode="disabled"), "authentication disabled"),
        (_set_head_cpus, "actors scheduled on the head"),
        (lambda c: c["spec"].update(rayVersoin="2.60.0"), "a misspelt field"),
        (lambda c: c["spec"]["workerGroupSpecs"][0]["template"]["spec"]["securityContext"].pop("runAsNonRoot"), "root"),
        (
            lambda c: c["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0].update(
                image="rayproject/ray"
            ),
            "an image without cairn",
        ),
    ],
)
def test_the_schema_rejects_a_cluster_cairn_should_not_use(
    change: Callable[[dict[str, Any]], object], why: str, cluster: dict[str, Any], schema: jsonschema.Draft7Validator
) -> None:
    broken = copy.deepcopy(cluster)
    change(broken)
    assert list(schema.iter_errors(broken)), f"accepted {why}"
