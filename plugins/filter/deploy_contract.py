"""Filters that turn the deploy contract and the inventory's settings into each process's
environment, for both application runtimes (roles/app_settings).

``process_settings(contract, settings)`` returns, per process of the contract::

    {"env": {GROWBIN_*: value}, "secret_env": {GROWBIN_*: secret key},
     "url_templates": {GROWBIN_*: "scheme://user:{password}@host:port/..."}}

``env`` holds the non-secret settings; ``secret_env`` names the key of the credentials
Secret each secret setting comes from, so the chart can reference it and the systemd env file
can resolve it (``process_secrets`` gives the values by key). Connection URLs that embed a
password (Redis, RabbitMQ) are secret settings whose Secret key holds the password only;
``url_templates`` says how each is composed around it.
"""

from __future__ import annotations

from typing import Any

_DATABASE_PASSWORD_KEY = "database-password-{}"  # noqa: S105 - a key name, not a password


def _connection_urls(settings: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """GROWBIN_* URL setting -> (template with {password}, Secret key of the password)."""
    redis = settings["redis"]
    broker = settings["broker"]
    return {
        "GROWBIN_REDIS__URL": (
            f"redis://{redis['user']}:{{password}}@{redis['host']}:{redis['port']}/{redis['database']}",
            "redis-password",
        ),
        "GROWBIN_BROKER__URL": (
            f"amqp://{broker['user']}:{{password}}@{broker['host']}:{broker['port']}/{broker['vhost']}",
            "rabbitmq-password",
        ),
    }


def _common_env(settings: dict[str, Any]) -> dict[str, str]:
    storage = settings["storage"]
    llm = settings["llm"]
    env = {
        "GROWBIN_ENVIRONMENT": settings["environment"],
        "GROWBIN_LOG_LEVEL": settings["log_level"],
        "GROWBIN_DATABASE__HOST": settings["database"]["host"],
        "GROWBIN_DATABASE__PORT": settings["database"]["port"],
        "GROWBIN_DATABASE__SSLMODE": settings["database"]["sslmode"],
        "GROWBIN_STORAGE__BACKEND": storage["backend"],
        "GROWBIN_LLM__MODEL": llm["model"],
        "GROWBIN_SCANS__MAX_UPLOAD_BYTES": settings["scans"]["max_upload_bytes"],
    }
    optional = {
        "GROWBIN_STORAGE__ROOT": storage.get("root") if storage["backend"] == "filesystem" else "",
        "GROWBIN_STORAGE__BUCKET": storage.get("bucket"),
        "GROWBIN_STORAGE__ENDPOINT_URL": storage.get("endpoint_url"),
        "GROWBIN_STORAGE__PUBLIC_BASE_URL": storage.get("public_base_url"),
        "GROWBIN_STORAGE__REGION": storage.get("region"),
        "GROWBIN_LLM__BASE_URL": llm.get("base_url"),
    }
    env.update({name: value for name, value in optional.items() if value})
    return {name: str(value) for name, value in env.items()}


def process_settings(contract: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    common = _common_env(settings)
    urls = _connection_urls(settings)
    api = settings["api"]
    result = {}
    for name, process in contract["processes"].items():
        env = dict(common)
        secret_env = {
            f"GROWBIN_DATABASE__{domain.upper()}__PASSWORD": _DATABASE_PASSWORD_KEY.format(domain)
            for domain in process["databases"]
        }
        secret_env["GROWBIN_AUTH__JWT_PUBLIC_KEY"] = "jwt-public-key"
        if process["redis"]:
            secret_env["GROWBIN_REDIS__URL"] = urls["GROWBIN_REDIS__URL"][1]
        if process["broker"]:
            secret_env["GROWBIN_BROKER__URL"] = urls["GROWBIN_BROKER__URL"][1]
        if process["signs_tokens"]:
            secret_env["GROWBIN_AUTH__JWT_PRIVATE_KEY"] = "jwt-private-key"
        if process["llm"] and settings["llm"].get("api_key_set"):
            secret_env["GROWBIN_LLM__API_KEY"] = "llm-api-key"
        if process["kind"] == "api":
            env["GROWBIN_API__PORT"] = str(process["ports"]["http"])
            env["GROWBIN_API__FORWARDED_ALLOW_IPS"] = ",".join(api["trusted_proxies"])
            env["GROWBIN_API__PROCESSES"] = str(api["processes"])
            env["GROWBIN_API__KEEPALIVE_SECONDS"] = str(api["keepalive_seconds"])
            env["GROWBIN_API__GRACEFUL_SHUTDOWN_SECONDS"] = str(api["graceful_shutdown_seconds"])
        elif process["kind"] == "worker":
            queue = process["args"][1]
            env["GROWBIN_WORKER__CONCURRENCY"] = str(settings["worker"]["concurrency"][queue])
            env["GROWBIN_WORKER__METRICS_PORT"] = str(process["ports"]["metrics"])
        else:
            env["GROWBIN_DEPLOY__SEED_SAMPLE_LOCATIONS"] = str(
                bool(settings["deploy"]["seed_sample_locations"])
            ).lower()
        # Directories and files the process is pointed at by the contract's own paths.
        for item in process["directories"]:
            env[item["setting"]] = item["value"]
        for item in process["files"]:
            env[item["setting"]] = item["path"]
        templates = {key: urls[key][0] for key in secret_env if key in urls}
        result[name] = {"env": env, "secret_env": secret_env, "url_templates": templates}
    return result


def process_secrets(settings: dict[str, Any], secrets: dict[str, Any]) -> dict[str, str]:
    """The credentials Secret: key -> value (keys as ``process_settings`` names them)."""
    values = {
        _DATABASE_PASSWORD_KEY.format(domain): password
        for domain, password in secrets["database_passwords"].items()
    }
    values.update(
        {
            "redis-password": secrets["redis_password"],
            "rabbitmq-password": secrets["broker_password"],
            "jwt-private-key": secrets["jwt_private_key"],
            "jwt-public-key": secrets["jwt_public_key"],
        }
    )
    if secrets.get("llm_api_key"):
        values["llm-api-key"] = secrets["llm_api_key"]
    return values


def resolve_env(process: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    """One process's complete environment with secrets filled in (the systemd env file)."""
    env = dict(process["env"])
    templates = process.get("url_templates", {})
    for name, key in process["secret_env"].items():
        value = secrets[key]
        env[name] = templates[name].format(password=value) if name in templates else value
    return env


def chart_components(
    contract: dict[str, Any],
    processes: dict[str, Any],
    node_ports: dict[str, int],
    chart_composed: list[str],
) -> dict[str, Any]:
    """The chart's values for the processes: shared settings and each component's own.

    Settings every process has with the same value go into the chart's ConfigMap
    (``settings``); the rest into the component's ``settings``. ``chart_composed`` names
    settings the chart derives itself (the database host is its Service's DNS name there).
    """
    envs = {
        name: {k: v for k, v in p["env"].items() if k not in chart_composed}
        for name, p in processes.items()
    }
    first = next(iter(envs.values()))
    common = {k: v for k, v in first.items() if all(env.get(k) == v for env in envs.values())}

    def component(name: str) -> dict[str, Any]:
        process = contract["processes"][name]
        values: dict[str, Any] = {
            "databases": list(process["databases"]),
            "settings": {k: v for k, v in envs[name].items() if k not in common},
        }
        if process["kind"] != "init":
            values["llm"] = bool(process["llm"])
            values["objectStore"] = bool(process["object_store"])
        return values

    api = {}
    workers = {}
    for name, process in contract["processes"].items():
        if process["kind"] == "api":
            domain = process["args"][1]
            api[domain] = {**component(name), "nodePort": int(node_ports[domain])}
        elif process["kind"] == "worker":
            workers[process["args"][1]] = component(name)
    return {
        "settings": common,
        "api": api,
        "workers": workers,
        "deployInit": component("deploy-init"),
    }


DATA_SERVICES = ("postgresql", "redis", "rabbitmq")
# The chart runs deploy-init on the storage worker's node (deployInit.nodeRole).
INIT_QUEUE = "storage"


def data_flows(
    matrix: list[dict[str, Any]],
    contract: dict[str, Any],
    groups: dict[str, list[str]],
    host_domains: dict[str, str],
    host_queues: dict[str, str],
    runtime: str = "kubernetes",
) -> dict[str, list[str]]:
    """Which components may connect to each data service, from the flow matrix.

    A pod pinned to a node may open what the matrix lets that node open and what its process
    uses (the contract): a flow "from api-waste to rabbitmq" becomes "api-scans may reach
    rabbitmq", and deploy-init, on the storage worker's node, reaches no broker.
    """
    uses = {
        name: {
            "postgresql": bool(process["databases"]),
            "redis": process["redis"],
            "rabbitmq": process["broker"],
        }
        for name, process in contract["processes"].items()
    }
    components: dict[str, list[str]] = {host: [f"api-{d}"] for host, d in host_domains.items()}
    for host, queue in host_queues.items():
        components[host] = [f"worker-{queue}"] + (["deploy-init"] if queue == INIT_QUEUE else [])

    def hosts(names: list[str] | str) -> list[str]:
        if names == "any":
            return sorted(components)
        return [host for name in names for host in groups.get(name, [name])]

    flows: dict[str, set[str]] = {service: set() for service in DATA_SERVICES}
    for flow in matrix:
        if flow["to"] in flows and runtime in flow.get("runtimes", []):
            for host in hosts(flow["from"]):
                flows[flow["to"]].update(
                    c for c in components.get(host, []) if uses.get(c, {}).get(flow["to"])
                )
    return {service: sorted(names) for service, names in flows.items()}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "process_settings": process_settings,
            "process_secrets": process_secrets,
            "resolve_env": resolve_env,
            "data_flows": data_flows,
            "chart_components": chart_components,
        }
