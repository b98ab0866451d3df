"""``signalbox``: one entry point for the four services and the operator commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from signalbox.common.settings import Settings, SettingsError


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from signalbox.common.topics import apply, catalogue, wait_for_broker

    specs = catalogue(settings)
    if args.action == "list":
        for spec in specs.values():
            config = ",".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
            print(f"{spec.name}\tpartitions={spec.partitions}\trf={spec.replication_factor}"
                  f"\t{config}\t# {spec.doc}")
        return 0
    wait_for_broker(settings.kafka)
    created = apply(settings.kafka, specs.values())
    print(f"{len(specs)} topics in the catalogue; created {len(created)}: "
          f"{', '.join(created) or '-'}")
    return 0


def _automations(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from signalbox.common.topics import wait_for_broker
    from signalbox.evaluator.publish import apply_command, list_command

    wait_for_broker(settings.kafka)
    if args.action == "list":
        return list_command(settings)
    return apply_command(settings, args.file, args.prune, args.by or getpass.getuser())


def _service(name: str) -> int:
    import importlib

    settings = Settings.from_env()
    module = importlib.import_module(f"signalbox.{name}.main")
    module.main(settings)
    return 0


def _smtp_capture(args: argparse.Namespace) -> int:
    from signalbox.dispatcher.capture import run_capture_server

    run_capture_server(args.host, args.port, args.maildir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signalbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("ingest", "HTTP API: JSON events in, Avro on Kafka out"),
        ("evaluator", "Faust worker: per-customer state and automations"),
        ("dispatcher", "carries out action commands (email, ...)"),
        ("scheduler", "emits tick events that drive time-based triggers"),
    ):
        sub.add_parser(name, help=help_)
    topics = sub.add_parser("topics", help="the topic catalogue")
    topics.add_argument("action", choices=("apply", "list"))
    automations = sub.add_parser(
        "automations", help="automations on the compacted automations topic")
    actions = automations.add_subparsers(dest="action", required=True)
    apply_ = actions.add_parser(
        "apply", help="validate FILE whole, then write each changed automation to the topic")
    apply_.add_argument("file", help="automations YAML (the SIGNALBOX_AUTOMATIONS_FILE format)")
    apply_.add_argument("--prune", action="store_true",
                        help="also delete topic entries whose id is not in FILE")
    apply_.add_argument("--by", help="who applies (default: the OS user), kept on each record")
    actions.add_parser("list", help="what the topic holds, and what evaluators rejected")
    capture = sub.add_parser(
        "smtp-capture", help="development SMTP server that stores every message it receives"
    )
    capture.add_argument("--host", default="127.0.0.1")
    capture.add_argument("--port", type=int, default=2525)
    capture.add_argument("--maildir", default=".run/mail")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("topics", "automations"):
            settings = Settings.from_env()
            from signalbox.common.telemetry import configure_logging

            configure_logging("cli", settings.log_level, settings.log_format)
            return (_topics if args.command == "topics" else _automations)(settings, args)
        if args.command == "smtp-capture":
            return _smtp_capture(args)
        return _service(args.command)
    except SettingsError as exc:
        print(f"signalbox: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
