"""Raw WebSocket helpers for the protocol tests: send exactly what a test means to send."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.support.running import RunningServer


@asynccontextmanager
async def raw_socket(
    server: RunningServer, path: str = "/socket"
) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(server.ws_url + path) as websocket:
        yield websocket


async def send(websocket: WebSocketConnection, message: Any) -> None:
    if not isinstance(message, str | bytes):
        message = json.dumps(message)
    await websocket.send_message(message)


async def receive(websocket: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            message = json.loads(await websocket.get_message())
            if message["type"] != "ping":
                return message


async def closed_code(websocket: WebSocketConnection) -> int:
    """Wait for the server's close and return its code."""
    with trio.fail_after(10):
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await websocket.get_message()
    return closed.value.reason.code


def welcome(msg_id: int = 1, token: str = "test1234", client_id: str = "any", **data: Any) -> dict:
    return {
        "type": "welcome",
        "msg_id": msg_id,
        "client_id": client_id,
        "access_token": token,
        "data": data,
    }


def assert_error(message: dict, code: int, name: str) -> None:
    assert message["type"] == "error", message
    assert (message["code"], message["name"]) == (code, name), message
    assert isinstance(message["message"], str) and message["message"]
    assert isinstance(message["msg_id"], int)
