"""What hostile peers cost `aiodimse serve` in memory: before/after figures (bounded in time).

Starts ``python3 -m aiodimse serve`` (whatever ``aiodimse`` PYTHONPATH selects) in a
subprocess under an address-space limit, then runs each attack on a raw socket and
prints the server's peak RSS growth (VmHWM minus the RSS before the attack) and
how the server answered:

* ``empty-pdvs``: an N-SET command, then zero-length data PDVs (one per P-DATA-TF),
  up to ``--flood-mib`` MiB of wire or until the server drops the connection;
* ``deflate-bomb``: an MPPS N-CREATE on a Deflated Explicit VR LE context whose data
  set inflates to ``--bomb-mib`` MiB (a few hundred kB on the wire);
* ``window-overrun``: 800 N-SETs of 256 kB sent without waiting for responses.

Usage: PYTHONPATH=<tree> python3 benchmarks/hostile_memory.py [--flood-mib 36] [--bomb-mib 128]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator

from aiodimse.dimse import MessageAssembler, NCreateRQ, NSetRQ, encode_command, encode_message
from aiodimse.wire import AAssociateRQ, PresentationContextRQ, UserInformation, encode_pdu
from benchmarks.procs import stop_process

MPPS = "1.2.840.10008.3.1.2.3.3"
IMPLICIT = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
DEADLINE = 30.0  # seconds any one attack may take


def rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS (Linux 4.0+)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(limit_mib: int) -> Iterator[tuple[int, int]]:
    port = free_port()
    data = tempfile.mkdtemp(prefix="hostile-mem-")

    # the limit is set in the child itself: the machine is shared, a leak must not take it
    launch = ("import resource, runpy, sys; size = int(sys.argv.pop(1)) << 20; "
              "resource.setrlimit(resource.RLIMIT_AS, (size, size)); "
              "runpy.run_module('aiodimse', run_name='__main__', alter_sys=True)")
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, str(limit_mib), "serve", "--host", "127.0.0.1",
         "--port", str(port), "--data", data, "--log-level", "ERROR"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=data,
    )
    try:
        stop = time.monotonic() + 20
        while time.monotonic() < stop:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        yield proc.pid, port
    finally:
        stop_process(proc, 10)


def associate(port: int, syntax: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), 5)
    sock.settimeout(DEADLINE)
    sock.sendall(encode_pdu(AAssociateRQ(
        called_ae_title="AIODIMSE", calling_ae_title="HOSTILE",
        presentation_contexts=(PresentationContextRQ(
            context_id=1, abstract_syntax=MPPS, transfer_syntaxes=(syntax,)),),
        user_information=UserInformation(maximum_length=16382, implementation_class_uid="1.2.3"),
    )))
    kind, body = read_pdu(sock)
    if kind != 0x02 or body[-1:] == b"":
        raise SystemExit(f"not associated: PDU 0x{kind:02X}")
    return sock


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    head = recv_exactly(sock, 6)
    if len(head) < 6:
        return 0, b""
    body = recv_exactly(sock, struct.unpack(">I", head[2:])[0])
    return head[0], body


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        try:
            chunk = sock.recv(size - len(out))
        except (ConnectionError, TimeoutError):
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def pdv(control: int, data: bytes) -> bytes:
    return struct.pack(">BxIIBB", 4, len(data) + 6, len(data) + 2, 1, control) + data


def statuses(sock: socket.socket, count: int) -> list[int | str]:
    """The Status of the next ``count`` responses (or what ended the wait)."""
    found: list[int | str] = []
    assembler = MessageAssembler()
    while len(found) < count:
        kind, body = read_pdu(sock)
        if kind != 0x04:
            found.append({0: "closed", 0x07: "A-ABORT"}.get(kind, f"PDU 0x{kind:02X}"))
            break
        pos = 0
        while pos < len(body):
            length, ctx, control = struct.unpack_from(">IBB", body, pos)
            received = assembler.feed_pdv(ctx, control, body[pos + 6 : pos + 4 + length])
            pos += 4 + length
            if received is not None:
                found.append(f"0x{getattr(received.message, 'Status', 0xFFFF):04X}")
    return found


def empty_pdvs(port: int, mib: int) -> str:
    sock = associate(port, IMPLICIT)
    command = encode_command(NSetRQ(MessageID=1, RequestedSOPClassUID=MPPS,
                                    RequestedSOPInstanceUID="1.2.3"), has_dataset=True)
    sock.sendall(pdv(0x03, command))
    block = pdv(0x00, b"") * 8192
    sent = 0
    stop = time.monotonic() + DEADLINE
    try:
        while sent < mib << 20 and time.monotonic() < stop:
            sock.sendall(block)
            sent += len(block)
    except OSError as exc:
        return f"connection dropped after {sent >> 10} KiB sent ({type(exc).__name__})"
    finally:
        sock.close()
    return f"all {sent >> 20} MiB sent, no abort"


def deflate_bomb(port: int, mib: int) -> str:
    raw = (b"\x40\x00\x52\x02CS\x0c\x00IN PROGRESS "  # (0040,0252) IN PROGRESS
           + b"\x09\x00\x10\x00OB\x00\x00" + (mib << 20).to_bytes(4, "little"))
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = packer.compress(raw)
    chunk = bytes(1 << 20)
    for _ in range(mib):
        data += packer.compress(chunk)
    data += packer.flush()
    sock = associate(port, DEFLATED)
    command = encode_command(NCreateRQ(MessageID=1, AffectedSOPClassUID=MPPS,
                                       AffectedSOPInstanceUID="1.2.3.4"), has_dataset=True)
    sock.sendall(encode_message(1, command, data, 16382))
    answer = statuses(sock, 1)
    sock.close()
    return f"{len(data) >> 10} KiB on the wire -> {answer}"


def window_overrun(port: int) -> str:
    sock = associate(port, IMPLICIT)
    size = 256 << 10
    dataset = b"\x09\x00\x10\x00" + (size - 8).to_bytes(4, "little") + bytes(size - 8)
    out = []
    for message_id in range(1, 801):
        command = encode_command(NSetRQ(MessageID=message_id, RequestedSOPClassUID=MPPS,
                                        RequestedSOPInstanceUID="1.2.3"), has_dataset=True)
        out.append(encode_message(1, command, dataset, 16382))
    # sent from a thread: the server may stop reading until we read its answers
    sender = threading.Thread(target=sock.sendall, args=(b"".join(out),), daemon=True)
    sender.start()
    answers = statuses(sock, 800)
    sock.close()
    sender.join(DEADLINE)
    return f"{len(answers)} answered ({sorted({str(a) for a in answers})})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood-mib", type=int, default=36)
    parser.add_argument("--bomb-mib", type=int, default=128)
    parser.add_argument("--limit-mib", type=int, default=3072,
                        help="the server's address-space limit (a guard for the machine)")
    args = parser.parse_args()
    attacks = {
        "empty-pdvs": lambda port: empty_pdvs(port, args.flood_mib),
        "deflate-bomb": lambda port: deflate_bomb(port, args.bomb_mib),
        "window-overrun": window_overrun,
    }
    print(f"aiodimse from {os.environ.get('PYTHONPATH', '(installed)')}")
    for name, attack in attacks.items():
        with server(args.limit_mib) as (pid, port):
            time.sleep(0.5)
            before = rss_kib(pid, "VmRSS")
            reset_peak(pid)
            outcome = attack(port)
            time.sleep(0.5)
            peak = rss_kib(pid, "VmHWM")
            print(f"{name:15} peak RSS +{(peak - before) / 1024:7.1f} MiB  {outcome}")


if __name__ == "__main__":
    main()
