"""The cluster files that run the image elsewhere, checked as far as this machine allows: Ray's cluster
launcher config against Ray's own schema, the KubeRay RayJob's pod templates against Kubernetes' own schema
(strict: a misspelt field fails) and its own fields against KubeRay's v1 API as documented."""
from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import ray
import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"
IMAGE = "REGISTRY/pmc-unlearning:cuda"  # the name scripts/image.sh gives the CUDA variant, behind a registry
# KubeRay's ray.io/v1 RayJob fields this manifest may use (its API reference); an unknown one is a typo.
RAYJOB_SPEC_FIELDS = {"entrypoint", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished", "backoffLimit",
                      "rayClusterSpec", "runtimeEnvYAML", "submissionMode", "activeDeadlineSeconds",
                      "entrypointNumCpus", "entrypointNumGpus", "suspend", "jobId", "metadata"}
CLUSTER_SPEC_FIELDS = {"rayVersion", "headGroupSpec", "workerGroupSpecs", "enableInTreeAutoscaling",
                       "autoscalerOptions", "headServiceAnnotations", "suspend"}
GROUP_FIELDS = {"rayStartParams", "template", "serviceType", "groupName", "replicas", "minReplicas", "maxReplicas",
                "numOfHosts", "idleTimeoutSeconds", "suspend"}


def load(name: str) -> dict:
    return yaml.safe_load((DOCKER / name).read_text())


def test_the_cluster_launcher_config_follows_rays_schema():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = load("cluster.yaml")
    jsonschema.validate(config, schema)
    assert config["docker"]["image"] == IMAGE
    assert config["head_node_type"] in config["available_node_types"]


def test_a_broken_cluster_config_fails_the_same_check():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = load("cluster.yaml")
    config["docker"]["run_option"] = config["docker"].pop("run_options")  # a typo Ray would reject
    with pytest.raises(jsonschema.ValidationError, match="run_option"):
        jsonschema.validate(config, schema)


def pod_templates(job: dict) -> dict[str, dict]:
    cluster = job["spec"]["rayClusterSpec"]
    groups = {"head": cluster["headGroupSpec"], **{g["groupName"]: g for g in cluster["workerGroupSpecs"]}}
    return {name: group["template"] for name, group in groups.items()}


def as_pod_template(name: str, template: dict) -> dict:
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}


def test_the_rayjob_pods_follow_kubernetes_schema_and_its_fields_kuberays_api():
    job = load("rayjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert set(job["spec"]) <= RAYJOB_SPEC_FIELDS
    cluster = job["spec"]["rayClusterSpec"]
    assert set(cluster) <= CLUSTER_SPEC_FIELDS
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        assert set(group) <= GROUP_FIELDS
        assert all(isinstance(value, str) for value in group["rayStartParams"].values())  # map[string]string
    assert cluster["rayVersion"] == version("ray")  # the image's Ray: head and job must match
    for name, template in pod_templates(job).items():
        kubernetes_validate.validate(as_pod_template(name, template), kubernetes_validate.latest_version(), strict=True)
        assert {c["image"] for c in template["spec"]["containers"]} == {IMAGE}
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
    assert "make unlearn" in job["spec"]["entrypoint"]


def test_a_misspelt_pod_field_fails_the_same_check():
    template = pod_templates(load("rayjob.yaml"))["head"]
    template["spec"]["containers"][0]["volumeMount"] = template["spec"]["containers"][0].pop("volumeMounts")
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(as_pod_template("head", template), kubernetes_validate.latest_version(), strict=True)
