"""The ``growbin`` command: the processes of the deploy contract, migrations, seed data, keys.

``growbin api DOMAIN``, ``growbin worker QUEUE`` and ``growbin deploy-init`` are how both
runtimes start the application (systemd units and the chart's containers alike); their options
come from the settings model, never from the command line of one runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from datetime import UTC
from pathlib import Path

from growbin.core import migrations, processes
from growbin.core.db import close_databases
from growbin.core.security import generate_private_key_pem, public_key_pem
from growbin.core.settings import get_settings

# `growbin deploy-init` reports a change as "<domain>: applied ..." or "<domain>: loaded ...";
# Ansible's changed_when reads those words (roles/app_systemd/tasks/deploy_init.yml).


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    api = get_settings().api
    uvicorn.run(
        f"growbin.services.{args.domain}:app",
        host=api.host,
        port=api.port,
        workers=api.processes,
        proxy_headers=True,
        forwarded_allow_ips=api.forwarded_allow_ips,
        timeout_keep_alive=api.keepalive_seconds,
        timeout_graceful_shutdown=api.graceful_shutdown_seconds,
        server_header=False,
        log_config=None,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from growbin.worker.celery_app import app

    settings = get_settings()
    # Gossip and mingle only chat between workers at start; the queues carry all the work.
    app.worker_main(
        [
            "worker",
            "--queues",
            args.queue,
            "--concurrency",
            str(settings.worker.concurrency),
            "--hostname",
            f"{args.queue}@%h",
            "--loglevel",
            settings.log_level,
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _worker_ping(args: argparse.Namespace) -> int:
    """Exit 0 when this host's worker of QUEUE answers a ping through the broker (probes)."""
    import socket

    from growbin.worker.celery_app import app

    destination = f"{args.queue}@{socket.gethostname()}"
    replies = app.control.inspect(destination=[destination], timeout=args.timeout).ping() or {}
    if destination not in replies:
        print(f"{destination} did not answer a ping within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


def _deploy_init(args: argparse.Namespace) -> int:
    """Migrate, then load seed data: what both runtimes run before new code starts."""
    domains = args.domain or migrations.migratable_domains()
    _migrate(argparse.Namespace(domain=None, domains=domains, downgrade=None, revision="head"))
    seeds = ["recycling"]
    if get_settings().deploy.seed_sample_locations:
        seeds.append("locations")
    _seed(argparse.Namespace(domains=[d for d in seeds if d in domains]))
    return 0


def _contract(_: argparse.Namespace) -> int:
    print(json.dumps(processes.contract(), indent=2, sort_keys=True))
    return 0


def _openapi(_: argparse.Namespace) -> int:
    from growbin.services.all import api_reference

    print(json.dumps(api_reference(), indent=2, ensure_ascii=False))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    domains = getattr(args, "domains", None) or (
        [args.domain] if args.domain else migrations.migratable_domains()
    )
    for domain in domains:
        if args.downgrade:
            print(f"{domain}: downgrade to {args.downgrade}")
            migrations.downgrade(domain, args.downgrade)
        else:
            before = migrations.current(domain)
            migrations.upgrade(domain, args.revision)
            after = migrations.current(domain)
            if before == after:
                print(f"{domain}: at {after or 'base'}, nothing to apply")
            else:
                print(f"{domain}: applied {before or 'base'} -> {after}")
    return 0


async def _run_seed(domain: str) -> str:
    # A domain seeds through `growbin.<domain>.seed:seed()`, returning a one-line summary.
    try:
        module = importlib.import_module(f"growbin.{domain}.seed")
    except ModuleNotFoundError as exc:
        raise SystemExit(f"domain {domain!r} has no seed data") from exc
    try:
        return await module.seed()
    finally:
        await close_databases()


def _seed(args: argparse.Namespace) -> int:
    for domain in args.domains:
        print(f"{domain}: {asyncio.run(_run_seed(domain))}")
    return 0


def _import_locations(args: argparse.Namespace) -> int:
    from growbin.locations.service import import_file

    async def run() -> int:
        try:
            report = await import_file(Path(args.file), args.source)
        finally:
            await close_databases()
        for row in report.rejected:
            print(f"line {row.line}: rejected: {'; '.join(row.reasons)}", file=sys.stderr)
        print(f"imported {report.accepted} rows, rejected {len(report.rejected)}")
        return 1 if report.rejected and args.strict else 0

    try:
        return asyncio.run(run())
    except (OSError, ValueError) as exc:
        print(f"growbin import-locations: {exc}", file=sys.stderr)
        return 2


def _recycling_misses(args: argparse.Namespace) -> int:
    """The searches that found nothing confident, most frequent first (catalogue curation)."""
    from growbin.core.db import get_databases
    from growbin.recycling.schemas import SearchMissRow
    from growbin.recycling.service import top_misses

    async def run() -> list[SearchMissRow]:
        try:
            async with get_databases().sessionmaker("recycling")() as session:
                return await top_misses(session, args.limit)
        finally:
            await close_databases()

    misses = asyncio.run(run())
    print(f"{'count':>7}  {'last seen (UTC)':<16}  query (example as typed)")
    for miss in misses:
        last_seen = miss.last_seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        print(f"{miss.count:>7}  {last_seen:<16}  {miss.query} ({miss.example})")
    if not misses:
        print("no misses recorded")
    return 0


def _generate_keys(args: argparse.Namespace) -> int:
    private = generate_private_key_pem()
    Path(args.private_key).write_text(private)
    Path(args.private_key).chmod(0o600)
    Path(args.public_key).write_text(public_key_pem(private))
    print(f"wrote Ed25519 key pair: {args.private_key} (0600), {args.public_key}")
    return 0


def _positive_int(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="growbin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    api = commands.add_parser("api", help="serve one domain's API (GROWBIN_API__* settings)")
    api.add_argument("domain", choices=processes.API_DOMAINS + ("all",))
    api.set_defaults(handler=_api)

    worker = commands.add_parser("worker", help="run the Celery worker of one queue")
    worker.add_argument("queue", choices=processes.WORKER_QUEUES)
    worker.set_defaults(handler=_worker)

    ping = commands.add_parser(
        "worker-ping", help="exit 0 when this host's worker answers through the broker"
    )
    ping.add_argument("queue", choices=processes.WORKER_QUEUES)
    ping.add_argument("--timeout", type=float, default=10.0)
    ping.set_defaults(handler=_worker_ping)

    deploy_init = commands.add_parser(
        "deploy-init", help="apply migrations and load seed data (idempotent)"
    )
    deploy_init.add_argument(
        "--domain",
        action="append",
        choices=migrations.migratable_domains(),
        help="only this domain (repeatable; default: every domain)",
    )
    deploy_init.set_defaults(handler=_deploy_init)

    contract = commands.add_parser("contract", help="print the deploy contract as JSON")
    contract.set_defaults(handler=_contract)

    openapi = commands.add_parser(
        "openapi", help="print the OpenAPI document of every service's public routes"
    )
    openapi.set_defaults(handler=_openapi)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--domain", choices=migrations.migratable_domains())
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.add_argument("--downgrade", metavar="REVISION", help="downgrade to REVISION instead")
    migrate.set_defaults(handler=_migrate)

    seed = commands.add_parser("seed", help="load a domain's bundled data")
    seed.add_argument("domains", nargs="+", metavar="DOMAIN", help="e.g. recycling locations")
    seed.set_defaults(handler=_seed)

    imports = commands.add_parser("import-locations", help="import drop-off points from CSV")
    imports.add_argument("file")
    imports.add_argument(
        "--source", help="source label stored with each point (default: file name)"
    )
    imports.add_argument("--strict", action="store_true", help="exit 1 if any row was rejected")
    imports.set_defaults(handler=_import_locations)

    misses = commands.add_parser(
        "recycling-misses", help="list recycling searches that found no confident match"
    )
    misses.add_argument(
        "--limit", type=_positive_int, default=20, help="how many, most frequent first"
    )
    misses.set_defaults(handler=_recycling_misses)

    keys = commands.add_parser("generate-keys", help="write an Ed25519 JWT signing key pair")
    keys.add_argument("--private-key", required=True)
    keys.add_argument("--public-key", required=True)
    keys.set_defaults(handler=_generate_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
