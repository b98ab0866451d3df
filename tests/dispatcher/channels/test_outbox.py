"""The outbox driver: one JSON file per side effect, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signalbox.common.action_command import ExportCommand
from signalbox.dispatcher.channels import OutboxChannel
from signalbox.dispatcher.outcomes import PermanentError
from signalbox.dispatcher.templates import TemplateStore
from tests.dispatcher.channels.support import email_command, make_command


async def test_writes_the_command_and_the_rendered_message(tmp_path: Path) -> None:
    channel = OutboxChannel("email", tmp_path, TemplateStore())
    command = email_command()
    delivery = await channel.send(command)
    path = tmp_path / "email" / f"{command.command_id}.json"
    assert delivery.provider_ref == str(path)
    doc = json.loads(path.read_text())
    assert doc["command_id"] == command.command_id
    assert doc["recipients"] == ["ada@example.com"]
    assert "Ada" in doc["rendered"]["text"]
    assert doc["rendered"]["subject"]
    assert [p.name for p in (tmp_path / "email").iterdir()] == [path.name]  # no temp file left
    await channel.send(command)  # the same command again: the same single file
    assert json.loads(path.read_text()) == doc


async def test_other_channels_keep_the_action(tmp_path: Path) -> None:
    channel = OutboxChannel("export", tmp_path, TemplateStore())
    command = make_command(ExportCommand("dwh", "csv", "x.csv", {"a": "1"}))
    await channel.send(command)
    doc = json.loads((tmp_path / "export" / f"{command.command_id}.json").read_text())
    assert doc["action"]["record"] == {"a": "1"}
    assert doc["rendered"] is None
    assert channel.recipients(command) == ("dwh",)
    assert channel.endpoint(command).startswith("outbox:")


async def test_template_error_is_permanent(tmp_path: Path) -> None:
    channel = OutboxChannel("email", tmp_path, TemplateStore())
    with pytest.raises(PermanentError, match=r"email/nope\.subject: not found"):
        await channel.send(email_command(template="nope"))
    assert not (tmp_path / "email").exists() or not list((tmp_path / "email").iterdir())
