"""JSON schemas of the kubeadm configuration types the roles render.

Modelled field by field on the Go types of kubeadm (cmd/kubeadm/app/apis/kubeadm/v1beta3 and
v1beta4 types.go in kubernetes/kubernetes): JSON names, types, the fields without `omitempty`
that kubeadm requires, and closed objects (`additionalProperties: false`) because kubeadm's
strict decoder rejects unknown fields. Only the differences between the two versions are spelt
out twice. KubeletConfiguration (kubelet.config.k8s.io/v1beta1) is modelled for the fields the
roles set, closed as well, so a misspelt kubelet field fails too.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
STRINGS: Schema = {"type": "array", "items": STRING}
# metav1.Duration serialises as a Go duration string ("4m0s", "30s").
DURATION: Schema = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}
INT32: Schema = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}


def closed(properties: Schema, required: tuple[str, ...] = ()) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def type_meta(api_version: str, kind: str) -> Schema:
    return {"apiVersion": {"const": api_version}, "kind": {"const": kind}}


# corev1.Taint
TAINT = closed(
    {
        "key": STRING,
        "value": STRING,
        "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
        "timeAdded": STRING,
    },
    required=("key", "effect"),
)
PULL_POLICY: Schema = {"enum": ["Always", "IfNotPresent", "Never"]}
HOST_PATH_MOUNT = closed(
    {"name": STRING, "hostPath": STRING, "mountPath": STRING, "readOnly": BOOL, "pathType": STRING},
    required=("name", "hostPath", "mountPath"),
)
API_ENDPOINT = closed({"advertiseAddress": STRING, "bindPort": INT32})
PATCHES = closed({"directory": STRING})
BOOTSTRAP_TOKEN = closed(
    {
        "token": {"type": "string", "pattern": r"^[a-z0-9]{6}\.[a-z0-9]{16}$"},
        "description": STRING,
        "ttl": DURATION,
        "expires": STRING,
        "usages": STRINGS,
        "groups": STRINGS,
    },
    required=("token",),
)
EXTERNAL_ETCD_V1BETA3 = closed(
    {"endpoints": STRINGS, "caFile": STRING, "certFile": STRING, "keyFile": STRING},
    required=("endpoints", "caFile", "certFile", "keyFile"),
)
FILE_DISCOVERY = closed({"kubeConfigPath": STRING}, required=("kubeConfigPath",))
BOOTSTRAP_TOKEN_DISCOVERY = closed(
    {
        "token": STRING,
        "apiServerEndpoint": STRING,
        "caCertHashes": {
            "type": "array",
            "items": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        },
        "unsafeSkipCAVerification": BOOL,
    },
    required=("token",),
)

# The v1beta3 -> v1beta4 change that breaks naive templates: extraArgs became a list of {name, value}.
EXTRA_ARGS_MAP: Schema = {"type": "object", "additionalProperties": STRING}
EXTRA_ARGS_LIST: Schema = {
    "type": "array",
    "items": closed({"name": STRING, "value": STRING}, ("name", "value")),
}
ENV_VAR = closed(
    {"name": STRING, "value": STRING, "valueFrom": {"type": "object"}}, required=("name",)
)
TIMEOUTS = closed(
    {
        name: DURATION
        for name in (
            "controlPlaneComponentHealthCheck",
            "kubeletHealthCheck",
            "kubernetesAPICall",
            "etcdAPICall",
            "tlsBootstrap",
            "discovery",
            "upgradeManifests",
        )
    }
)


def _node_registration(extra_args: Schema, v1beta4: bool) -> Schema:
    properties = {
        "name": STRING,
        "criSocket": STRING,
        "taints": {"type": ["array", "null"], "items": TAINT},
        "kubeletExtraArgs": extra_args,
        "ignorePreflightErrors": STRINGS,
        "imagePullPolicy": PULL_POLICY,
    }
    if v1beta4:
        properties["imagePullSerial"] = BOOL
    return closed(properties)


def _schemas(version: str) -> dict[str, Schema]:
    v1beta4 = version == "v1beta4"
    api_version = f"kubeadm.k8s.io/{version}"
    extra_args = EXTRA_ARGS_LIST if v1beta4 else EXTRA_ARGS_MAP
    image_meta = {"imageRepository": STRING, "imageTag": STRING}

    component = {
        "extraArgs": extra_args,
        "extraVolumes": {"type": "array", "items": HOST_PATH_MOUNT},
    }
    if v1beta4:
        component["extraEnvs"] = {"type": "array", "items": ENV_VAR}
    api_server = {**component, "certSANs": STRINGS}
    if not v1beta4:
        # v1beta4 moved it to InitConfiguration.timeouts.controlPlaneComponentHealthCheck.
        api_server["timeoutForControlPlane"] = DURATION

    local_etcd = {
        **image_meta,
        "dataDir": STRING,
        "extraArgs": extra_args,
        "serverCertSANs": STRINGS,
        "peerCertSANs": STRINGS,
    }
    if v1beta4:
        local_etcd["extraEnvs"] = {"type": "array", "items": ENV_VAR}
    external_etcd = EXTERNAL_ETCD_V1BETA3
    if v1beta4:
        external_etcd = closed(
            {**EXTERNAL_ETCD_V1BETA3["properties"], "httpEndpoints": STRINGS},
            required=("endpoints", "caFile", "certFile", "keyFile"),
        )

    dns = {**image_meta}
    cluster = {
        **type_meta(api_version, "ClusterConfiguration"),
        "etcd": closed({"local": closed(local_etcd, ("dataDir",)), "external": external_etcd}),
        "networking": closed({"serviceSubnet": STRING, "podSubnet": STRING, "dnsDomain": STRING}),
        "kubernetesVersion": {"type": "string", "pattern": r"^v1\.[0-9]+\.[0-9]+$"},
        "controlPlaneEndpoint": STRING,
        "apiServer": closed(api_server),
        "controllerManager": closed(component),
        "scheduler": closed(component),
        "dns": closed(dns),
        "certificatesDir": STRING,
        "imageRepository": STRING,
        "featureGates": {"type": "object", "additionalProperties": BOOL},
        "clusterName": STRING,
    }
    if v1beta4:
        cluster["dns"] = closed({**dns, "disabled": BOOL})
        cluster["proxy"] = closed({"disabled": BOOL})
        cluster["encryptionAlgorithm"] = {
            "enum": ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"]
        }
        cluster["certificateValidityPeriod"] = DURATION
        cluster["caCertificateValidityPeriod"] = DURATION

    node_registration = _node_registration(extra_args, v1beta4)
    init = {
        **type_meta(api_version, "InitConfiguration"),
        "bootstrapTokens": {"type": "array", "items": BOOTSTRAP_TOKEN},
        "nodeRegistration": node_registration,
        "localAPIEndpoint": API_ENDPOINT,
        "certificateKey": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "skipPhases": STRINGS,
        "patches": PATCHES,
    }
    discovery = {
        "bootstrapToken": BOOTSTRAP_TOKEN_DISCOVERY,
        "file": FILE_DISCOVERY,
        "tlsBootstrapToken": STRING,
    }
    if not v1beta4:
        # v1beta4 moved it to JoinConfiguration.timeouts.discovery.
        discovery["timeout"] = DURATION
    join = {
        **type_meta(api_version, "JoinConfiguration"),
        "nodeRegistration": node_registration,
        "caCertPath": STRING,
        "discovery": closed(discovery),
        "controlPlane": closed({"localAPIEndpoint": API_ENDPOINT, "certificateKey": STRING}),
        "skipPhases": STRINGS,
        "patches": PATCHES,
    }
    if v1beta4:
        for fields in (init, join):
            fields["dryRun"] = BOOL
            fields["timeouts"] = TIMEOUTS
    return {
        "InitConfiguration": closed(init, ("apiVersion", "kind")),
        "ClusterConfiguration": closed(cluster, ("apiVersion", "kind")),
        # Discovery has no omitempty in either version: a join without it is refused.
        "JoinConfiguration": closed(join, ("apiVersion", "kind", "discovery")),
    }


KUBEADM_SCHEMAS: dict[str, dict[str, Schema]] = {
    "kubeadm.k8s.io/v1beta3": _schemas("v1beta3"),
    "kubeadm.k8s.io/v1beta4": _schemas("v1beta4"),
}

KUBELET_CONFIGURATION = closed(
    {
        **type_meta("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
        "cgroupDriver": {"enum": ["systemd", "cgroupfs"]},
        "containerRuntimeEndpoint": {"type": "string", "pattern": "^unix://"},
        "serverTLSBootstrap": BOOL,
    },
    required=("apiVersion", "kind"),
)


def schema_for(document: dict[str, Any]) -> Schema:
    """The schema of a document by its apiVersion and kind; KeyError for an unknown type."""
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version == "kubelet.config.k8s.io/v1beta1" and kind == "KubeletConfiguration":
        return KUBELET_CONFIGURATION
    return KUBEADM_SCHEMAS[api_version][kind]


def kubeadm_api_version_for(kubernetes_version: str) -> str:
    """The config API version kubeadm of a release reads natively (v1beta4 from 1.31)."""
    minor = int(kubernetes_version.split(".")[1])
    return "kubeadm.k8s.io/v1beta4" if minor >= 31 else "kubeadm.k8s.io/v1beta3"
