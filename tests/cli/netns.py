"""Separate hosts for multi-node tests: one network namespace per host, each joined
by a veth pair to a bridge in the root namespace (issue 23), so that what the nodes
send each other and the database crosses a real (virtual) network.

``Hosts(["a", "b"])`` makes namespaces ``aiodimse-<pid>-a`` ... with addresses
``10.N.M.2``, ``.3`` ... on a /24 free on this machine, the bridge ``ad<pid>z`` at
``.1`` (the root side: the test's own servers listen there); ``exec(name)`` is the
argv prefix that runs a program inside one. Everything is deleted on ``close``;
names carry the creating process's id, so what a killed test run left behind is
deleted by the next one (``sweep``). Making them needs root and iproute2:
``unavailable()`` says why not, for the skip.

The test's PostgreSQL cluster listens on 127.0.0.1 only (it is shared by the
session, with trust authentication): ``Relay`` forwards a port on the root-side
address to it, so a node's database traffic crosses its veth pair too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import re
import shutil
import subprocess
from collections.abc import Sequence

__all__ = ["Hosts", "Relay", "sweep", "unavailable"]

_TIMEOUT = 10.0  # s for one ip command
_NAME = re.compile(r"^aiodimse-(\d+)-[a-z]$")
_LINK = re.compile(r"^ad(\d+)[a-z]+$")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=_TIMEOUT)


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "no ip command (iproute2; tests/run.sh installs it as root)"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    name = f"aiodimse-{os.getpid()}-z"
    made = _ip("netns", "add", name, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _ip("netns", "delete", name, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep() -> None:
    """Delete the namespaces and links of test processes that are gone."""
    listed = _ip("netns", "list", check=False).stdout.split()
    for name in listed:
        found = _NAME.match(name)
        if found and not _alive(int(found[1])):
            _ip("netns", "delete", name, check=False)
    for line in _ip("-br", "link", check=False).stdout.splitlines():
        link = line.split()[0].split("@")[0] if line.split() else ""
        found = _LINK.match(link)
        if found and not _alive(int(found[1])):
            _ip("link", "delete", link, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.128.0.0/9 that no route of this machine covers."""
    used = [ipaddress.ip_network(word, strict=False)
            for word in _ip("-4", "route", "show", "table", "all", check=False).stdout.split()
            if re.fullmatch(r"\d+\.\d+\.\d+\.\d+/\d+", word)]
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{random.randint(128, 255)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /24 in 10.128.0.0/9")


class Hosts:
    """Namespaces ``names`` (single letters) on one bridge; ``close()`` deletes all."""

    def __init__(self, names: Sequence[str]) -> None:
        pid = os.getpid()
        self.bridge = f"ad{pid}z"  # (hosts are a-y)
        self.namespaces: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        net = _free_subnet()
        hosts = iter(net.hosts())
        self.root = str(next(hosts))
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.root}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for name in names:
                assert re.fullmatch(r"[a-y]", name), name
                ns, outer, inner = f"aiodimse-{pid}-{name}", f"ad{pid}{name}", f"ad{pid}{name}i"
                _ip("netns", "add", ns)
                self.namespaces[name] = ns
                _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
                _ip("link", "set", inner, "netns", ns)
                _ip("link", "set", outer, "master", self.bridge)
                _ip("link", "set", outer, "up")
                address = str(next(hosts))
                _ip("-n", ns, "addr", "add", f"{address}/24", "dev", inner)
                _ip("-n", ns, "link", "set", inner, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                self.addresses[name] = address
        except BaseException:
            self.close()
            raise

    def exec(self, name: str) -> list[str]:
        """The argv prefix running a program on host ``name``."""
        return ["ip", "netns", "exec", self.namespaces[name]]

    def close(self) -> None:
        """Delete the namespaces (their veth ends, and so the pairs, go with them)
        and the bridge. Processes run inside must be ended first."""
        for ns in self.namespaces.values():
            _ip("netns", "delete", ns, check=False)
        self.namespaces.clear()
        _ip("link", "delete", self.bridge, check=False)


class Relay:
    """A TCP relay on ``host`` (an ephemeral ``port``) to ``target``: ``start``, then
    ``close`` (which ends the connections it carries too)."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.host, self.target = host, target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        with contextlib.suppress(OSError):
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
