"""Fixtures shared by every test: the local stack, unique names, fresh topics."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from devstack import kafka
from devstack.sessions import shared_stack
from devstack.stack import StackConfig


@pytest.fixture(scope="session")
def stack() -> Iterator[StackConfig]:
    """The local stack, up and healthy, on the ports of `StackConfig.from_env()`.

    Servers already running are reused and left running; the ones test sessions started are
    stopped when the last session using the stack ends. The value gives `bootstrap_servers`,
    `kusto_url`, `storage_connection_string`, `registry_url` and `devstack_dir`.
    """
    with shared_stack(StackConfig.from_env()) as config:
        yield config


def new_name() -> str:
    return f"t_{uuid.uuid4().hex[:6]}"


@pytest.fixture
def unique_name() -> str:
    """A short lowercase name no other test uses, like `t_3f9a1c` (topic, database, table)."""
    return new_name()


@pytest.fixture
def make_topic(stack: StackConfig) -> Callable[..., str]:
    """Factory: `make_topic(partitions=3, name=None)` creates a fresh topic, returns its name."""

    def make(partitions: int = 3, name: str | None = None) -> str:
        topic = name or new_name()
        kafka.create_topic(stack.bootstrap_servers, topic, partitions)
        return topic

    return make
