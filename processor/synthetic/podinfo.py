"""``podinfo.json``: the core/v1 Pod, its Events and its Node, as crier's pod reporter saw them.

Objects come from client-go's typed clients, so they carry no ``kind``/``apiVersion``. Events are
in two shapes, as on a real cluster: kubelet and cluster-autoscaler use the legacy API
(``firstTimestamp``/``lastTimestamp``/``count``, ``source``), the scheduler the events.k8s.io API
(``eventTime`` with microseconds, ``action``, null first/last timestamps, no ``count``). Pod
statuses reflect the moment of the snapshot: an aborted job's pod may still be terminating.
"""

from __future__ import annotations

import random
from typing import Any

from processor.synthetic._encoding import go_json, rfc3339_micro, rfc3339_ms
from processor.synthetic.fleet import (
    POD_NAMESPACE,
    PROW_VERSION,
    UTILITY_IMAGES,
    Node,
    image_bytes,
    image_id,
    uuid4,
)
from processor.synthetic.lifecycle import ContainerRun, PodRun
from processor.synthetic.prowjob import JobSpec, annotations_for, labels_for, pod_grace_seconds

FINALIZER = "prow.x-k8s.io/gcsk8sreporter"
_KUBELET_VERSION = "v1.32.4-gke.1106000"


def podinfo_json(rng: random.Random, spec: JobSpec, pod: PodRun, snapshot_ms: int) -> bytes:
    r"""Return ``podinfo.json`` (crier writes it with ``json.MarshalIndent(report, "", "\t")``)."""
    rv = _ResourceVersions()
    report = {
        "pod": _pod(spec, pod, snapshot_ms, rv),
        "events": _events(rng, spec, pod, snapshot_ms, rv),
        "node": _node(pod.node, snapshot_ms, rv),
    }
    return go_json(report, indent=True)


class _ResourceVersions:
    """Hands out etcd revisions that grow with time, like a busy cluster's."""

    def at(self, ms: int) -> str:
        """Return the revision an object written at ``ms`` would carry."""
        return str(900_000_000 + (ms // 37) % 1_000_000_000)


def _terminated(run: ContainerRun) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": run.exit_code, "reason": run.reason}
    if run.message:
        state["message"] = run.message
    state["startedAt"] = rfc3339_ms(run.started_ms)
    state["finishedAt"] = rfc3339_ms(run.finished_ms)
    state["containerID"] = run.container_id
    return {"terminated": state}


def _container_status(  # noqa: PLR0913 - one container's facts at one moment
    name: str,
    image: str,
    run: ContainerRun | None,
    snapshot_ms: int,
    *,
    init: bool,
    waiting: tuple[str, str] | None = None,
) -> dict[str, Any]:
    if run is None or run.started_ms > snapshot_ms:
        reason, message = waiting or ("PodInitializing", "")
        waiting_state = {"reason": reason, "message": message} if message else {"reason": reason}
        return {
            "name": name,
            "state": {"waiting": waiting_state},
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "image": image,
            "imageID": "",
            "started": False,
        }
    done = run.finished_ms <= snapshot_ms
    state = _terminated(run) if done else {"running": {"startedAt": rfc3339_ms(run.started_ms)}}
    return {
        "name": name,
        "state": state,
        "lastState": {},
        "ready": (done and run.exit_code == 0) if init else not done,
        "restartCount": 0,
        "image": run.image,
        "imageID": image_id(run.image),
        "containerID": run.container_id,
        "started": not done,
    }


def _condition(
    kind: str, ms: int, *, holds: bool, reason: str = "", message: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": kind,
        "status": "True" if holds else "False",
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339_ms(ms),
    }
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def _conditions(pod: PodRun, snapshot_ms: int) -> list[dict[str, Any]]:
    terminal = pod.ended_ms <= snapshot_ms
    conditions = [
        _condition("PodReadyToStartContainers", pod.sandbox_ms, holds=True)
        if not terminal
        else _condition("PodReadyToStartContainers", pod.ended_ms, holds=False)
    ]
    if pod.initialized_ms is not None and pod.initialized_ms <= snapshot_ms:
        reason = "PodCompleted" if terminal and pod.phase == "Succeeded" else ""
        conditions.append(_condition("Initialized", pod.initialized_ms, holds=True, reason=reason))
    else:
        done = {run.name for run in pod.init_runs if run.exit_code == 0}
        waiting = " ".join(name for name in pod.init_names if name not in done)
        conditions.append(
            _condition(
                "Initialized",
                pod.kubelet_ms,
                holds=False,
                reason="ContainersNotInitialized",
                message=f"containers with incomplete status: [{waiting}]",
            )
        )
    ready_now = (
        pod.ready_ms is not None
        and pod.ready_ms <= snapshot_ms
        and (pod.unready_ms is None or pod.unready_ms > snapshot_ms)
    )
    if ready_now and pod.ready_ms is not None:
        ready = [
            _condition(kind, pod.ready_ms, holds=True) for kind in ("Ready", "ContainersReady")
        ]
    else:
        since = pod.unready_ms if pod.unready_ms and pod.unready_ms <= snapshot_ms else None
        since = since or pod.kubelet_ms
        if terminal and pod.phase == "Succeeded":
            reason, message = "PodCompleted", ""
        else:
            unready = [r.name for r in pod.main_runs if r.finished_ms <= snapshot_ms] or [
                "test",
                "sidecar",
            ]
            reason = "ContainersNotReady"
            message = f"containers with unready status: [{' '.join(unready)}]"
        ready = [
            _condition(kind, since, holds=False, reason=reason, message=message)
            for kind in ("Ready", "ContainersReady")
        ]
    conditions.extend(ready)
    conditions.append(_condition("PodScheduled", pod.scheduled_ms, holds=True))
    return conditions


def _pod(spec: JobSpec, pod: PodRun, snapshot_ms: int, rv: _ResourceVersions) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": spec.name,
        "namespace": POD_NAMESPACE,
        "uid": pod.uid,
        "resourceVersion": rv.at(snapshot_ms - 500),
        "creationTimestamp": rfc3339_ms(pod.created_ms),
    }
    if pod.deletion_ms is not None and pod.deletion_ms <= snapshot_ms:
        metadata["deletionTimestamp"] = rfc3339_ms(pod.deletion_ms + pod_grace_seconds() * 1000)
        metadata["deletionGracePeriodSeconds"] = pod_grace_seconds()
    pod_labels = dict(labels_for(spec, pod.build_id))
    pod_labels["prow.k8s.io/plank-version"] = PROW_VERSION
    metadata["labels"] = dict(sorted(pod_labels.items()))
    metadata["annotations"] = annotations_for(spec)
    metadata["finalizers"] = [FINALIZER]

    runs = {run.name: run for run in (*pod.init_runs, *pod.main_runs)}
    terminal = pod.ended_ms <= snapshot_ms
    # Running only once every container was created; one stuck pulling keeps the pod Pending.
    phase = (
        pod.phase if terminal else ("Running" if pod.main_runs and not pod.waiting else "Pending")
    )
    waiting = {name: (reason, message) for name, reason, message in pod.waiting}
    status: dict[str, Any] = {"phase": phase, "conditions": _conditions(pod, snapshot_ms)}
    if terminal and pod.message:
        status["message"] = pod.message
    if terminal and pod.reason:
        status["reason"] = pod.reason
    status.update(
        {
            "hostIP": pod.node.internal_ip,
            "hostIPs": [{"ip": pod.node.internal_ip}],
            "podIP": pod.pod_ip,
            "podIPs": [{"ip": pod.pod_ip}],
            "startTime": rfc3339_ms(pod.kubelet_ms),
            "initContainerStatuses": [
                _container_status(n, _image(spec, n), runs.get(n), snapshot_ms, init=True)
                for n in pod.init_names
            ],
            "containerStatuses": [
                _container_status(
                    n, _image(spec, n), runs.get(n), snapshot_ms, init=False, waiting=waiting.get(n)
                )
                for n in ("sidecar", "test")  # kubelet sorts container statuses by name
            ],
            "qosClass": "Burstable",
        }
    )
    return {"metadata": metadata, "spec": _pod_spec(spec, pod), "status": status}


def _image(spec: JobSpec, name: str) -> str:
    if name == "test":
        return spec.config.image
    return UTILITY_IMAGES["entrypoint" if name == "place-entrypoint" else name]


def _utility_container(name: str, image: str, mounts: list[str]) -> dict[str, Any]:
    binary = "entrypoint" if name == "place-entrypoint" else name
    command = ["/bin/cp"] if name == "place-entrypoint" else [f"/ko-app/{binary}"]
    out: dict[str, Any] = {"name": name, "image": image, "command": command}
    if name == "place-entrypoint":
        out["args"] = ["/ko-app/entrypoint", "/tools/entrypoint"]
    out.update(
        {
            "resources": {},
            "volumeMounts": [{"name": m, "mountPath": _MOUNTS[m]} for m in mounts],
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "imagePullPolicy": "IfNotPresent",
        }
    )
    return out


_MOUNTS = {
    "logs": "/logs",
    "tools": "/tools",
    "code": "/home/prow/go",
    "gcs-credentials": "/secrets/gcs",
}


def _pod_spec(spec: JobSpec, pod: PodRun) -> dict[str, Any]:
    cloning = "clonerefs" in pod.init_names
    volumes: list[dict[str, Any]] = [
        {"name": "logs", "emptyDir": {}},
        {"name": "tools", "emptyDir": {}},
        {
            "name": "gcs-credentials",
            "secret": {"secretName": "gcs-credentials", "defaultMode": 420},
        },
    ]
    if cloning:
        volumes.append({"name": "code", "emptyDir": {}})
    inits = []
    for name in pod.init_names:
        mounts = {
            "clonerefs": ["logs", "code"],
            "initupload": ["logs", "gcs-credentials"],
            "place-entrypoint": ["tools"],
        }[name]
        inits.append(_utility_container(name, _image(spec, name), mounts))
    refs = spec.main_refs()
    test: dict[str, Any] = {
        "name": "test",
        "image": spec.config.image,
        "command": ["/tools/entrypoint"],
    }
    if refs:
        test["workingDir"] = f"/home/prow/go/src/github.com/{refs['org']}/{refs['repo']}"
    test.update(
        {
            "resources": {"requests": {"cpu": "4", "memory": "8Gi"}},
            "volumeMounts": [
                {"name": m, "mountPath": _MOUNTS[m]}
                for m in (["logs", "tools", "code"] if cloning else ["logs", "tools"])
            ],
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "imagePullPolicy": "IfNotPresent",
        }
    )
    sidecar = _utility_container("sidecar", _image(spec, "sidecar"), ["logs", "gcs-credentials"])
    return {
        "volumes": volumes,
        "initContainers": inits,
        "containers": [test, sidecar],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": pod_grace_seconds(),
        "dnsPolicy": "ClusterFirst",
        "automountServiceAccountToken": False,
        "nodeName": pod.node.name,
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {
                "key": f"node.kubernetes.io/{taint}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
            for taint in ("not-ready", "unreachable")
        ],
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }


def go_duration_ms(ms: int) -> str:
    """Format milliseconds like Go's ``time.Duration.String`` (``850ms``, ``1.5s``, ``1m2.3s``)."""
    if ms < 1000:  # noqa: PLR2004 - one second
        return f"{ms}ms"
    minutes, rest = divmod(ms, 60_000)
    seconds = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{seconds}" if minutes else seconds


def _events(  # noqa: C901 - a flat list of "if it happened, add its event"
    rng: random.Random, spec: JobSpec, pod: PodRun, snapshot_ms: int, rv: _ResourceVersions
) -> list[dict[str, Any]]:
    node = pod.node.name
    pending: list[tuple[int, dict[str, Any]]] = []

    def involved(field_path: str = "") -> dict[str, Any]:
        ref: dict[str, Any] = {
            "kind": "Pod",
            "namespace": POD_NAMESPACE,
            "name": spec.name,
            "uid": pod.uid,
            "apiVersion": "v1",
            "resourceVersion": rv.at(pod.created_ms + 300),
        }
        if field_path:
            ref["fieldPath"] = field_path
        return ref

    def legacy(
        ms: int, reason: str, message: str, field_path: str = "", *, component: str = "kubelet"
    ) -> None:
        if ms > snapshot_ms:
            return
        ns = ms * 1_000_000 + rng.randrange(1_000_000)
        host = node if component == "kubelet" else ""
        source = {"component": component, "host": host} if host else {"component": component}
        pending.append(
            (
                ns,
                {
                    "metadata": _event_meta(spec.name, ns, rng, rv),
                    "involvedObject": involved(field_path),
                    "reason": reason,
                    "message": message,
                    "source": source,
                    "firstTimestamp": rfc3339_ms(ms),
                    "lastTimestamp": rfc3339_ms(ms),
                    "count": 1,
                    "type": "Warning" if reason.startswith("Failed") else "Normal",
                    "eventTime": None,
                    "reportingComponent": component,
                    "reportingInstance": host,
                },
            )
        )

    def scheduler(ms: int, reason: str, message: str, kind: str) -> None:
        ns = ms * 1_000_000 + rng.randrange(1_000_000)
        pending.append(
            (
                ns,
                {
                    "metadata": _event_meta(spec.name, ns, rng, rv),
                    "involvedObject": involved(),
                    "reason": reason,
                    "message": message,
                    "source": {},
                    "firstTimestamp": None,
                    "lastTimestamp": None,
                    "type": kind,
                    "eventTime": rfc3339_micro(ns // 1000),
                    "action": "Scheduling" if kind == "Warning" else "Binding",
                    "reportingComponent": "default-scheduler",
                    "reportingInstance": "default-scheduler-gke-prow-build-control-plane",
                },
            )
        )

    if pod.unschedulable_ms is not None:
        scheduler(
            pod.unschedulable_ms,
            "FailedScheduling",
            "0/24 nodes are available: 24 Insufficient cpu. preemption: 0/24 nodes are "
            "available: 24 No preemption victims found for incoming pod.",
            "Warning",
        )
        legacy(
            pod.unschedulable_ms + rng.randrange(800, 4000),
            "TriggeredScaleUp",
            "pod triggered scale-up: [{https://www.googleapis.com/compute/v1/projects/acme-prow/"
            f"zones/{pod.node.zone}/instanceGroups/gke-prow-build-{pod.node.pool}-grp "
            "11->12 (max: 40)}]",
            component="cluster-autoscaler",
        )
    scheduler(
        pod.scheduled_ms,
        "Scheduled",
        f"Successfully assigned {POD_NAMESPACE}/{spec.name} to {node}",
        "Normal",
    )
    for run in (*pod.init_runs, *pod.main_runs):
        kind = "initContainers" if run in pod.init_runs else "containers"
        path = f"spec.{kind}{{{run.name}}}"
        if run.pulling_ms is not None:
            legacy(run.pulling_ms, "Pulling", f'Pulling image "{run.image}"', path)
            took = go_duration_ms(run.pulled_ms - run.pulling_ms)
            legacy(
                run.pulled_ms,
                "Pulled",
                f'Successfully pulled image "{run.image}" in {took} ({took} including waiting). '
                f"Image size: {image_bytes(run.image)} bytes.",
                path,
            )
        else:
            legacy(
                run.pulled_ms,
                "Pulled",
                f'Container image "{run.image}" already present on machine',
                path,
            )
        legacy(run.created_ms, "Created", f"Created container: {run.name}", path)
        legacy(run.started_ms, "Started", f"Started container {run.name}", path)
    test_path = "spec.containers{test}"
    for attempt, ms in enumerate(pod.pull_failures_ms):
        image = _image(spec, "test")
        legacy(ms, "Pulling", f'Pulling image "{image}"', test_path)
        legacy(
            ms + rng.randrange(300, 1500),
            "Failed",
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull '
            f'and unpack image "{image}": not found',
            test_path,
        )
        if attempt:
            legacy(ms - 1, "BackOff", f'Back-off pulling image "{image}"', test_path)
    if pod.killing_ms is not None:
        for offset, run in enumerate(pod.main_runs):
            legacy(
                pod.killing_ms + offset,
                "Killing",
                f"Stopping container {run.name}",
                f"spec.containers{{{run.name}}}",
            )
    pending.sort(key=lambda item: item[0])
    return [event for _, event in pending]


def _event_meta(
    pod_name: str, ns: int, rng: random.Random, rv: _ResourceVersions
) -> dict[str, Any]:
    return {
        "name": f"{pod_name}.{ns:x}",
        "namespace": POD_NAMESPACE,
        "uid": uuid4(rng),
        "resourceVersion": rv.at(ns // 1_000_000),
        "creationTimestamp": rfc3339_ms(ns // 1_000_000),
    }


def _node(node: Node, snapshot_ms: int, rv: _ResourceVersions) -> dict[str, Any]:
    cpu = 16 if "16" in node.pool else 8
    memory_ki = 65_851_340 if cpu == 16 else 32_880_872  # noqa: PLR2004 - machine sizes
    return {
        "metadata": {
            "name": node.name,
            "uid": node.uid,
            "resourceVersion": rv.at(snapshot_ms - 4000),
            "creationTimestamp": rfc3339_ms(node.created_s * 1000),
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "cloud.google.com/gke-nodepool": node.pool,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": f"n2-standard-{cpu}",
                "topology.kubernetes.io/region": "us-central1",
                "topology.kubernetes.io/zone": node.zone,
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "podCIDR": node.pod_cidr,
            "podCIDRs": [node.pod_cidr],
            "providerID": f"gce://acme-prow/{node.zone}/{node.name}",
        },
        "status": {
            "capacity": {
                "cpu": str(cpu),
                "ephemeral-storage": "203056560Ki",
                "memory": f"{memory_ki}Ki",
                "pods": "110",
            },
            "allocatable": {
                "cpu": f"{cpu * 1000 - 70}m",
                "ephemeral-storage": "77853836780",
                "memory": f"{memory_ki - 3_500_000}Ki",
                "pods": "110",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": rfc3339_ms(snapshot_ms - 7000),
                    "lastTransitionTime": rfc3339_ms(node.created_s * 1000 + 41_000),
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": node.internal_ip},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": node.machine_id,
                "systemUUID": node.machine_id[:8]
                + "-"
                + node.machine_id[8:12]
                + "-"
                + node.machine_id[12:16]
                + "-"
                + node.machine_id[16:20]
                + "-"
                + node.machine_id[20:32],
                "bootID": node.boot_id,
                "kernelVersion": "6.6.87+",
                "osImage": "Container-Optimized OS from Google",
                "containerRuntimeVersion": "containerd://1.7.27",
                "kubeletVersion": _KUBELET_VERSION,
                "kubeProxyVersion": _KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
