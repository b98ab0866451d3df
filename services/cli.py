"""``signalbox``: one entry point for the four services and the operator commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from signalbox.common.settings import Settings, SettingsError


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from signalbox.common.topics import apply, catalogue, wait_for_broker

    specs = catalogue(settings.kafka)
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
        return list_command(settings, as_json=args.json)
    return apply_command(settings, args.file, args.prune, args.by or getpass.getuser(),
                         dry_run=args.dry_run)


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


def _simulate(args: argparse.Namespace) -> int:
    import contextlib

    from signalbox.evaluator.definitions import load_file
    from signalbox.evaluator.engine import AutomationError
    from signalbox.evaluator.simulate import (
        SimulationInputError,
        parse_duration,
        parse_time,
        read_events,
        run,
    )

    try:
        # The evaluator's own path, with the same settings as `automations apply`: what
        # one accepts, the other does (SIGNALBOX_TEAMS, SIGNALBOX_TEMPLATES_DIR).
        automations = load_file(args.automations, Settings.from_env()).build()
        tick_ms = parse_duration(args.tick)
        until = parse_time(args.until) if args.until else None
        with open(args.events, encoding="utf-8") as lines:
            events = read_events(lines, source=args.events)
    except AutomationError as exc:
        for error in exc.errors:
            print(f"signalbox simulate: {exc.source}: {error}", file=sys.stderr)
        return 2
    except SimulationInputError as exc:
        for problem in exc.problems:
            print(f"signalbox simulate: {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"signalbox simulate: {args.events}: {exc.strerror}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        out = sys.stdout if args.out == "-" else stack.enter_context(
            open(args.out, "w", encoding="utf-8"))
        counts = run(automations, events, out, tick_ms, until)
    print("signalbox simulate: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
          file=sys.stderr)
    return 0


def _events(args: argparse.Namespace) -> int:
    from signalbox.ingest.event_docs import markdown

    sys.stdout.write(markdown())
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
    apply_.add_argument("--dry-run", action="store_true",
                        help="write nothing; print the diff of what apply would change")
    list_ = actions.add_parser(
        "list", help="the effective set (the evaluators' file and the topic, with each "
                     "automation's source) and what evaluators reject")
    list_.add_argument("--json", action="store_true",
                       help="the JSON of GET /v1/automations instead of the table")
    simulate = sub.add_parser(
        "simulate", help="run the automation engine offline over a JSONL file of events",
        description="Runs the evaluator's engine over a JSONL file of events (the format of "
                    "POST /v1/events, see docs/events.md) with a virtual clock, and writes "
                    "the commands it would emit as JSON lines. Deterministic: the same input "
                    "gives the same output, byte for byte.")
    simulate.add_argument("--automations", required=True, help="automations YAML file")
    simulate.add_argument("--events", required=True, help="JSONL file, one event per line")
    simulate.add_argument("--until", help="run ticks up to this time (ISO 8601 or epoch ms); "
                                          "default: the last event's time")
    simulate.add_argument("--tick", default="1h", help="virtual tick interval (default 1h)")
    simulate.add_argument("--out", default="-", help="output file (default: stdout)")
    events = sub.add_parser("events", help="the event catalogue")
    events.add_argument("action", choices=("catalogue",),
                        help="catalogue: print docs/events.md, generated from the Avro schema")
    capture = sub.add_parser(
        "smtp-capture", help="development SMTP server that stores every message it receives"
    )
    capture.add_argument("--host", default="127.0.0.1")
    capture.add_argument("--port", type=int, default=2525)
    capture.add_argument("--maildir", default=".run/mail")
    from signalbox.dispatcher.dlq import add_parser as add_dlq_parser

    add_dlq_parser(sub)
    from signalbox.ingest.keys_cli import add_parser as add_keys_parser

    add_keys_parser(sub)
    from signalbox.dispatcher.preview import add_parser as add_templates_parser

    add_templates_parser(sub)
    from signalbox.ingest.sources.cli import add_parser as add_sources_parser

    add_sources_parser(sub)
    return parser


#: Operator commands: they talk to Kafka and print for a person (see _operator).
OPERATOR_COMMANDS = ("topics", "automations", "dlq", "keys")


def _operator(args: argparse.Namespace) -> int:
    """Run an operator command: its output on stdout, for a person; on stderr only
    warnings and errors, rendered as text (the services' JSON lines are for log
    shippers). A command that fails is logged as an error and exits 1."""
    import structlog
    from confluent_kafka import KafkaException

    from signalbox.common.telemetry import configure_logging

    settings = Settings.from_env()
    configure_logging("cli", "debug" if settings.logging.level == "debug" else "warning",
                      "console")
    try:
        if args.command == "topics":
            return _topics(settings, args)
        if args.command == "automations":
            return _automations(settings, args)
        if args.command == "dlq":
            from signalbox.dispatcher import dlq

            return dlq.run(settings, args)
        from signalbox.ingest import keys_cli

        return keys_cli.run(settings, args)
    except SettingsError:
        raise
    except (OSError, RuntimeError, TimeoutError, KafkaException) as exc:
        name = " ".join(x for x in (args.command, getattr(args, "action", None)) if x)
        structlog.get_logger("signalbox.cli").error("command_failed", command=name,
                                                     error=str(exc))
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in OPERATOR_COMMANDS:
            return _operator(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "events":
            return _events(args)
        if args.command == "smtp-capture":
            return _smtp_capture(args)
        if args.command == "templates":  # offline: no broker, no relay
            from signalbox.dispatcher import preview

            return preview.run(Settings.from_env(), args)
        if args.command == "sources":
            from signalbox.ingest.sources import cli as sources_cli

            return sources_cli.run(args)
        return _service(args.command)
    except SettingsError as exc:
        print(f"signalbox: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
