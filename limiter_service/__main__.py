"""Command line: serve (default), ``create-table``, ``check-rules``.

python -m limiter_service [--host H] [--port P] [--workers N]
python -m limiter_service create-table
python -m limiter_service check-rules FILE
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from limiter_service.logs import log_config
from limiter_service.rules import RuleError, load_rules_file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m limiter_service", description="The rate limiter service.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1; more than 1 needs LIMITER_STORE=dynamodb: the memory store is per process)",
    )
    sub = parser.add_subparsers(dest="command")
    create = sub.add_parser("create-table", help="create LIMITER_TABLE at the configured endpoint (local runs, tests)")
    create.add_argument(
        "--aws",
        action="store_true",
        help="allow creating it in AWS itself when no local endpoint is configured (the data layer owns it there)",
    )
    rules = sub.add_parser("check-rules", help="validate a rules file and exit")
    rules.add_argument("file")
    return parser


def _invalid_rules(exc: RuleError) -> str:
    if len(exc.errors) == 1:
        return f"invalid rules: {exc}"
    return f"invalid rules ({len(exc.errors)} errors):\n" + "\n".join(f"  {e}" for e in exc.errors)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-rules":
        try:
            rules = load_rules_file(args.file)
        except RuleError as exc:
            print(_invalid_rules(exc), file=sys.stderr)
            return 2
        print(f"{len(rules)} rules OK")
        return 0
    if args.workers < 1:
        print(f"--workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2

    from pydantic import ValidationError

    from limiter_service.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"invalid LIMITER_* settings: {exc}", file=sys.stderr)
        return 2

    if args.command == "create-table":
        import os

        if not (os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")) and not args.aws:
            print(
                "create-table: no AWS_ENDPOINT_URL_DYNAMODB set; refusing to create a table in AWS itself "
                "(the data layer creates it there). Pass --aws to do it anyway.",
                file=sys.stderr,
            )
            return 2
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped,unused-ignore]

        from limiter_service.stores.dynamodb import create_table

        try:
            status = create_table(settings.table)
        except (BotoCoreError, ClientError, TimeoutError) as exc:
            print(f"create-table {settings.table} failed: {exc}", file=sys.stderr)
            return 1
        print(f"table {settings.table}: {status}")
        return 0

    if args.workers > 1 and settings.store == "memory":
        print(
            f"--workers {args.workers} with LIMITER_STORE=memory: each worker process would keep its own counters, "
            f"so every limit would admit up to {args.workers} times its value. Use LIMITER_STORE=dynamodb to share "
            "counters between workers, or one worker per process (scale with replicas).",
            file=sys.stderr,
        )
        return 2

    from limiter_service.app import load_rules

    try:
        load_rules(settings)  # an invalid rules file stops the service here, with a clear message
    except RuleError as exc:
        print(_invalid_rules(exc), file=sys.stderr)
        return 2

    import uvicorn

    uvicorn.run(
        "limiter_service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=log_config(settings.log_level),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
