"""``signalbox keys create|list|revoke``: the operator's side of ingest's API keys.

Edits the keys file (``INGEST_KEYS_FILE``) that every ingest re-reads within a second;
no restart is needed. See :mod:`signalbox.ingest.keys` for the model and rotation.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.settings import Settings
from signalbox.ingest.keys import KeyFile, KeyFileError, describe

HELP = """\
Rotation without downtime: create a second key for the same producer, switch the
producer to it, then revoke the old one. Revoked keys stay listed for the audit trail.
"""


def add_parser(sub: Any) -> None:
    """The ``keys`` subcommand of ``signalbox``."""
    keys = sub.add_parser("keys", help="API keys of ingest (INGEST_KEYS_FILE)", description=HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key; prints it once (only a digest is kept)")
    create.add_argument("--name", required=True,
                        help="the producer that holds the key, e.g. stripe-webhooks")
    create.add_argument("--types", required=True,
                        help="event types it may send, comma-separated: exact names, "
                             "prefix.* (payment.*) or * for every producer type")
    actions.add_parser("list", help="id, name, event types, created, active or revoked")
    revoke = actions.add_parser("revoke", help="revoke a key by id (ingest refuses it within 1 s)")
    revoke.add_argument("key_id")


def run(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout,
        err: TextIO = sys.stderr) -> int:
    store = KeyFile(settings.ingest.keys_file)
    try:
        if args.action == "create":
            types = [t.strip() for t in args.types.split(",") if t.strip()]
            key, token = store.create(args.name, types, schemas.event_types(), now_ms())
            print(token, file=out)
            print(f"created key {key.key_id} for {key.name!r} in {store.path}; this is the only "
                  "time it is shown. Producers send it as 'Authorization: Bearer <key>'.",
                  file=err)
        elif args.action == "list":
            for key in store.load():
                print(describe(key), file=out)
        else:
            key = store.revoke(args.key_id, now_ms())
            print(describe(key), file=out)
    except KeyFileError as exc:
        print(f"signalbox keys: {exc}", file=err)
        return 2
    return 0
