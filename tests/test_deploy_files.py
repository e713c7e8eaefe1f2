"""The cluster files that run the image elsewhere, checked as far as this machine allows: Ray's cluster
launcher config against Ray's own schema, the KubeRay RayJob's pod templates and its volume claim against
Kubernetes' own schema (strict: a misspelt field fails) and its own fields against KubeRay's v1 API as
documented; and what a shared cluster needs of both: Ray's token authentication on, no dashboard on a public
address, runs and caches on storage every node shares."""
from __future__ import annotations

import json
import re
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
                       "autoscalerOptions", "headServiceAnnotations", "suspend", "authOptions"}
GROUP_FIELDS = {"rayStartParams", "template", "serviceType", "groupName", "replicas", "minReplicas", "maxReplicas",
                "numOfHosts", "idleTimeoutSeconds", "suspend"}


def load(name: str, kind: str | None = None) -> dict:
    """The file's one document, or of several the one of `kind`."""
    documents = list(yaml.safe_load_all((DOCKER / name).read_text()))
    if kind is None:
        (document,) = documents
        return document
    (document,) = [d for d in documents if d["kind"] == kind]
    return document


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
    job = load("rayjob.yaml", "RayJob")
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
    template = pod_templates(load("rayjob.yaml", "RayJob"))["head"]
    template["spec"]["containers"][0]["volumeMount"] = template["spec"]["containers"][0].pop("volumeMounts")
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(as_pod_template("head", template), kubernetes_validate.latest_version(), strict=True)


def ray_starts(config: dict) -> list[str]:
    return [c for key in ("head_start_ray_commands", "worker_start_ray_commands") for c in config[key] if "ray start" in c]


def test_the_launchers_cluster_authenticates_with_a_token_and_keeps_its_dashboard_on_the_head():
    config = load("cluster.yaml")
    options = config["docker"]["run_options"]
    assert "-e RAY_AUTH_MODE=token" in options
    (token_path,) = [o.split("=", 1)[1] for o in options if o.startswith("-e RAY_AUTH_TOKEN_PATH=")]
    assert config["file_mounts"][token_path] == "~/.ray/auth_token"  # what `ray get-auth-token --generate` writes
    (head_start,) = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in head_start
    assert not any("0.0.0.0" in command for command in ray_starts(config))


def test_the_launchers_runs_and_cache_are_on_the_shared_mount_and_group_shared():
    config = load("cluster.yaml")
    volumes = dict(o.split()[1].split(":")[::-1] for o in config["docker"]["run_options"] if o.startswith("-v "))
    assert volumes["/app/runs"].startswith("/mnt/pmc/") and volumes["/app/.cache"].startswith("/mnt/pmc/")
    setup = "\n".join(config["initialization_commands"])
    assert re.search(r"mount -t nfs4 -o \S+ \S+:/ /mnt/pmc\b", setup)
    assert "chmod 2770" in setup and not re.search(r"chmod (1?777|a\+w|o\+w)", setup)


def test_the_rayjob_authenticates_with_a_token_and_its_dashboard_is_not_published():
    cluster = load("rayjob.yaml", "RayJob")["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert tuple(map(int, cluster["rayVersion"].split(".")[:2])) >= (2, 52)  # Ray's token authentication
    head = cluster["headGroupSpec"]
    # KubeRay submits and follows the job through the head's dashboard and probes it on localhost: it listens
    # on the pod's own addresses, reached only inside the cluster (a ClusterIP Service, no ingress), with the token.
    assert head["serviceType"] == "ClusterIP" and "enableIngress" not in head
    for template in pod_templates(load("rayjob.yaml", "RayJob")).values():
        for container in template["spec"]["containers"]:
            assert "hostPort" not in json.dumps(container.get("ports", []))
            # The token is KubeRay's Secret, given to the containers by the operator: never written here.
            assert not {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} & {env["name"] for env in container.get("env", [])}


def test_the_rayjobs_runs_and_cache_are_on_a_claim_every_pod_shares():
    claim = load("rayjob.yaml", "PersistentVolumeClaim")
    kubernetes_validate.validate(claim, kubernetes_validate.latest_version(), strict=True)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for template in pod_templates(load("rayjob.yaml", "RayJob")).values():
        spec = template["spec"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
        mounts = {m["mountPath"]: claims.get(m["name"]) for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["/app/runs"] == mounts["/app/.cache"] == claim["metadata"]["name"]
        assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"],
                spec["securityContext"]["fsGroup"]) == (1000, 1000, 1000)  # the image's user and group
