"""The fd-leak check that two dozen tests rely on: it must catch a leak and
must not blame the code under test for gRPC's own eventfds."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import fds_not_leaked


def test_a_leaked_fd_fails_the_check() -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(AssertionError, match=r"fds leaked: .*pipe:"), fds_not_leaked():
            leaked = os.dup(read_end)
    finally:
        os.close(leaked)
        os.close(read_end)
        os.close(write_end)


def test_closed_fds_pass() -> None:
    with fds_not_leaked():
        os.close(os.dup(0))


@pytest.mark.parametrize("grpc_loaded", [True, False])
def test_an_eventfd_is_blamed_only_when_grpc_is_not_loaded(
    grpc_loaded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if grpc_loaded:
        monkeypatch.setitem(sys.modules, "grpc", sys.modules.get("grpc", sys))
    else:
        monkeypatch.delitem(sys.modules, "grpc", raising=False)
    efd = -1
    try:
        if grpc_loaded:
            with fds_not_leaked():
                efd = os.eventfd(0)
        else:
            with pytest.raises(AssertionError, match=r"eventfd"), fds_not_leaked():
                efd = os.eventfd(0)
    finally:
        if efd >= 0:
            os.close(efd)
