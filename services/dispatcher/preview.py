"""``signalbox templates render``: a message exactly as the dispatcher would send it, offline.

The automation runs in the engine over the events of a file, as ``signalbox simulate``
runs it (time order, virtual ticks); every email and SMS command it issues, held ones
awaiting an approval included, is written as the Avro record the evaluator produces and
read back as the dispatcher reads it, then built by the dispatcher's own code:
:meth:`EmailChannel.build <signalbox.dispatcher.channels.email.EmailChannel.build>`
(subject, text, HTML, every header with ``Date`` and ``List-Unsubscribe``) and
:func:`~signalbox.dispatcher.channels.sms.render_sms`. There is no second renderer, no
broker and no relay: what this prints is what a customer would get.

The automations come from ``--automations``, else ``SIGNALBOX_AUTOMATIONS_FILE``, else
the built-in defaults (the evaluator's file); teams from ``SIGNALBOX_TEAMS``. Templates,
sender, public URL and unsubscribe secret come from the dispatcher's variables. A
disabled automation is previewed as if enabled. An automation with a time trigger that
has not fired by the last event is ticked on (``--until``, default a year and a day
later) until it first does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, cast

from signalbox.common import schemas
from signalbox.common.action_command import (
    Command,
    MessageCommand,
    command_from_record,
    command_to_record,
)
from signalbox.common.clock import FixedClock, SystemClock
from signalbox.common.codec import AvroCodec
from signalbox.common.errors import SignalboxError
from signalbox.common.settings import Settings
from signalbox.dispatcher.channels.email import EmailChannel
from signalbox.dispatcher.channels.sms import render_sms
from signalbox.dispatcher.outcomes import DeliveryError
from signalbox.dispatcher.templates import TemplateStore
from signalbox.evaluator.definitions import load_file
from signalbox.evaluator.engine import AutomationError, AutomationSet, Decision
from signalbox.evaluator.engine.model import Event
from signalbox.evaluator.simulate import (
    Simulation,
    SimulationInputError,
    parse_duration,
    parse_time,
    read_events,
)

PROG = "signalbox templates render"
HORIZON_MS = 366 * 86_400_000  # how far a time trigger is ticked on by default


class PreviewError(SignalboxError):
    """The preview cannot be made; the message says what and where."""

    what = "preview"


@dataclass(frozen=True)
class Preview:
    """One message as it would go out."""

    channel: str
    command_id: str
    trigger: str
    issued_at: int
    held_by: str  # the approval that holds it, "" when sent straight away
    headers: tuple[tuple[str, str], ...] = ()  # email
    text: str = ""  # the email's text part, or the SMS
    html: str | None = None
    to: tuple[str, ...] = ()


def add_parser(sub: Any) -> None:
    templates = sub.add_parser("templates", help="message templates")
    actions = templates.add_subparsers(dest="action", required=True)
    render = actions.add_parser(
        "render", help="preview the messages an automation sends for some events",
        description="Runs the automation over the events in FILE as `signalbox simulate` "
                    "does and prints each email and SMS exactly as the dispatcher would send "
                    "it (headers with Date and List-Unsubscribe, text, HTML, SMS text), "
                    "built by the dispatcher's own code; no broker, no relay. A time "
                    "trigger is ticked on until it first fires, or up to --until. Exit 1 "
                    "when a template fails to render, 2 on bad input.")
    render.add_argument("--automation", required=True, help="the automation's id")
    render.add_argument("--event", required=True,
                        help="a JSON event (as POST /v1/events takes it), a JSON array of "
                             "them, or a JSONL file")
    render.add_argument("--automations",
                        help="automations YAML (default: SIGNALBOX_AUTOMATIONS_FILE, else "
                             "the built-in defaults)")
    render.add_argument("--until", help="tick a time trigger up to this time (ISO 8601 or "
                                        "epoch ms)")
    render.add_argument("--tick", default="1h", help="virtual tick interval (default 1h)")
    render.add_argument("--now", help="the send time, the Date header (default: now)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        automations_file = (args.automations or settings.evaluator.automations_file
                            or _default_file())
        automation = _automation(automations_file, args.automation, settings)
        with open(args.event, encoding="utf-8") as f:
            events = read_events(_event_lines(f.read(), args.event), source=args.event)
        tick_ms = parse_duration(args.tick)
        until = parse_time(args.until) if args.until else None
        now_ms = parse_time(args.now) if args.now else SystemClock().now_ms()
    except (AutomationError, SimulationInputError, OSError, PreviewError) as exc:
        for problem in _problems(exc):
            print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    try:
        previews = render(settings, automation, events, tick_ms, until, now_ms)
    except PreviewError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    for n, preview in enumerate(previews, start=1):
        sys.stdout.write(describe(preview, n, len(previews)))
    return 0


def _problems(exc: Exception) -> list[str]:
    """What is wrong with the input, one line each."""
    if isinstance(exc, AutomationError):
        return [f"{exc.source}: {error}" for error in exc.errors]
    if isinstance(exc, SimulationInputError):
        return list(exc.problems)
    if isinstance(exc, OSError):
        return [f"{exc.filename}: {exc.strerror}"]
    return [str(exc)]


def _default_file() -> str:
    from signalbox.evaluator.main import default_automations_path

    return default_automations_path()


def _automation(path: str, automation_id: str, settings: Settings) -> AutomationSet:
    """The file's automation ``automation_id`` alone (enabled), validated as the evaluator,
    ``automations apply`` and ``simulate`` validate it (teams and templates included)."""
    loaded = load_file(path, settings).build()
    chosen = [a for a in loaded.automations if a.id == automation_id]
    if not chosen:
        ids = ", ".join(a.id for a in loaded.automations) or "none"
        raise PreviewError(f"{path}: no automation {automation_id!r} (ids: {ids})")
    return AutomationSet((replace(chosen[0], enabled=True),), loaded.teams)


def _event_lines(text: str, source: str) -> list[str]:
    """One JSON line per event: a JSON object or array as a whole, else JSONL."""
    try:
        whole = json.loads(text)
    except ValueError:
        return text.splitlines()  # JSONL; read_events names the bad line
    items = whole if isinstance(whole, list) else [whole]
    if not items:
        raise PreviewError(f"{source}: no events")
    return [json.dumps(item) for item in items]


def _issued(automations: AutomationSet, events: list[Event], tick_ms: int,
            until: int | None) -> Iterator[tuple[Command, str]]:
    """The automation's commands over the events, each with the approval holding it ("")
    or none; a time trigger is ticked on to ``until``, or until it first fires."""
    sim = Simulation(automations, tick_ms)
    fired = False

    def commands(decision: Decision) -> Iterator[tuple[Command, str]]:
        nonlocal fired
        for command in decision.commands:
            fired = True
            yield command, ""
        held = decision.state.approvals if decision.state is not None else {}
        for request in decision.approvals:
            fired = True
            for command in held[request.approval_id].commands:
                yield command, request.approval_id

    for event in events:
        for decision in sim.feed(event):
            yield from commands(decision)
    if not automations.timed or not events or (fired and until is None):
        return
    for decision in sim.advance(until if until is not None else
                                events[-1].occurred_at + HORIZON_MS):
        yield from commands(decision)
        if fired and until is None:
            return


def render(settings: Settings, automations: AutomationSet, events: list[Event], tick_ms: int,
           until: int | None, now_ms: int) -> list[Preview]:
    """Every email and SMS the automation issues over ``events``, built for sending at
    ``now_ms``; a template problem is a :class:`PreviewError`."""
    codec = AvroCodec()  # the record the evaluator writes, as the dispatcher reads it
    templates = TemplateStore([settings.templates_dir] if settings.templates_dir else [])
    email = EmailChannel(settings.dispatcher.smtp, templates, settings.dispatcher.public_url,
                         settings.dispatcher.unsubscribe_secret, clock=FixedClock(now_ms))
    previews: list[Preview] = []
    for issued, held_by in _issued(automations, events, tick_ms, until):
        wire = codec.encode(schemas.ACTION_COMMAND, command_to_record(issued))
        command = command_from_record(codec.decode(schemas.ACTION_COMMAND, wire))
        if not isinstance(command.action, MessageCommand):
            continue
        try:
            previews.append(_preview(command, held_by, email, templates))
        except (DeliveryError, ValueError) as exc:  # a template problem, a bad header
            raise PreviewError(f"{command.channel} command {command.command_id} "
                               f"({command.trigger.type}): {exc}") from exc
    if not previews:
        ticked = _iso(until) if until is not None else "a year after the last event"
        raise PreviewError(f"automation {automations.automations[0].id!r} sends no email or "
                           f"SMS for these events (ticks up to {ticked})")
    return previews


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _preview(command: Command, held_by: str, email: EmailChannel,
             templates: TemplateStore) -> Preview:
    to = command.action.to if isinstance(command.action, MessageCommand) else ()
    if command.channel == "sms":
        return Preview(command.channel, command.command_id, command.trigger.type,
                       command.issued_at, held_by, to=to, text=render_sms(templates, command))
    message = email.build(command)
    return Preview(command.channel, command.command_id, command.trigger.type,
                   command.issued_at, held_by, to=to,
                   headers=tuple((k, str(v)) for k, v in message.items()),
                   text=_part(message, "plain") or "", html=_part(message, "html"))


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    return str(cast(EmailMessage, part).get_content()).replace("\r\n", "\n")


def describe(preview: Preview, n: int, total: int) -> str:
    """The message for a terminal: headers, then each part."""
    held = f", held for approval {preview.held_by}" if preview.held_by else ""
    lines = [f"=== {preview.channel} {n} of {total}: {preview.trigger} at "
             f"{_iso(preview.issued_at)}, command {preview.command_id}{held}"]
    if preview.channel == "sms":
        lines += [f"To: {', '.join(preview.to) or '(no number known)'}", "", preview.text]
    else:
        lines += [f"{k}: {v}" for k, v in preview.headers]
        lines += ["", "--- text/plain", preview.text.rstrip("\n")]
        if preview.html is not None:
            lines += ["--- text/html", preview.html.rstrip("\n")]
    return "\n".join(lines) + "\n\n"
