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


def resolve_env(
    process: dict[str, Any], settings: dict[str, Any], secrets: dict[str, str]
) -> dict[str, str]:
    """One process's complete environment with secrets filled in (the systemd env file)."""
    urls = _connection_urls(settings)
    env = dict(process["env"])
    for name, key in process["secret_env"].items():
        value = secrets[key]
        env[name] = urls[name][0].format(password=value) if name in urls else value
    return env


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "process_settings": process_settings,
            "process_secrets": process_secrets,
            "resolve_env": resolve_env,
        }
