"""The platform module picks the event loop (uvloop or plain asyncio, forced
plain by SSEHUB_NO_UVLOOP) and watches stop signals even on a loop that
cannot (Windows' loops)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest

from ssehub.server._platform import (
    NO_UVLOOP_VARIABLE,
    add_stop_signals,
    check_reuse_port,
    new_event_loop,
    run,
)
from tests.support.helpers import missing


def _is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.split(".")[0] == "uvloop"


@pytest.fixture
def uvloop_installed() -> None:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        missing("uvloop is not installed on this platform")


@pytest.mark.usefixtures("uvloop_installed")
@pytest.mark.parametrize("value", [None, "", "0", " 0 "])
def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(NO_UVLOOP_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(NO_UVLOOP_VARIABLE, value)
    loop = new_event_loop()
    try:
        assert _is_uvloop(loop)
    finally:
        loop.close()


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_the_variable_forces_the_plain_asyncio_loop(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(NO_UVLOOP_VARIABLE, value)
    loop = new_event_loop()
    try:
        assert not _is_uvloop(loop)
        assert isinstance(loop, asyncio.BaseEventLoop)  # asyncio's own
    finally:
        loop.close()


@pytest.mark.usefixtures("uvloop_installed")
@pytest.mark.parametrize(("value", "uvloop"), [("0", True), ("1", False)])
def test_run_runs_the_coroutine_on_the_chosen_loop(
    monkeypatch: pytest.MonkeyPatch, value: str, uvloop: bool
) -> None:
    monkeypatch.setenv(NO_UVLOOP_VARIABLE, value)

    async def main() -> bool:
        await asyncio.sleep(0)
        return _is_uvloop(asyncio.get_running_loop())

    assert run(main()) is uvloop


def test_reuse_port_is_there_on_linux() -> None:
    check_reuse_port("--workers > 1")  # no error where SO_REUSEPORT exists


class _LoopWithoutSignals(asyncio.SelectorEventLoop):
    """A real loop that, like Windows' loops, cannot watch signals itself."""

    def add_signal_handler(self, sig: int, callback: object, *args: object) -> None:
        raise NotImplementedError


@pytest.fixture
def restored_signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.mark.usefixtures("restored_signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signals_reach_a_loop_that_cannot_watch_them(sig: signal.Signals) -> None:
    loop = _LoopWithoutSignals()
    try:

        async def main() -> str:
            stop = asyncio.Event()
            add_stop_signals(asyncio.get_running_loop(), stop.set)
            asyncio.get_running_loop().call_later(0.05, signal.raise_signal, sig)
            await asyncio.wait_for(stop.wait(), 5)
            return "stopped"

        assert loop.run_until_complete(main()) == "stopped"
    finally:
        loop.close()


@pytest.mark.usefixtures("restored_signals")
def test_stop_signals_use_the_loops_own_handler_where_it_has_one() -> None:
    loop = asyncio.SelectorEventLoop()
    try:

        async def main() -> None:
            stop = asyncio.Event()
            add_stop_signals(asyncio.get_running_loop(), stop.set)
            signal.raise_signal(signal.SIGTERM)
            await asyncio.wait_for(stop.wait(), 5)

        loop.run_until_complete(main())
        assert loop.remove_signal_handler(signal.SIGTERM)  # it was the loop's
    finally:
        loop.close()
