"""Fixtures shared by the data tests."""

import socket

import pytest


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails: a test that reaches for the network (a TFDS download)
    fails at once instead of hanging."""
    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
