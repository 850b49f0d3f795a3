"""``aiodimse serve`` with TLS, and the SCU tools' ``--tls`` options."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from aiodimse.cli.main import main

from .conftest import StartServe


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )
    return cert, key


async def test_tls_echo(serve: StartServe, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    srv = await serve("--tls-cert", str(cert), "--tls-key", str(key)).ready()
    port = str(srv.port)

    async def echo(*extra: str) -> int:
        argv = ["echo", "127.0.0.1", port, "--timeout", "5", *extra]
        return await asyncio.wait_for(asyncio.to_thread(main, argv), 30)

    assert await echo("--tls", "--tls-ca", str(cert)) == 0
    assert await echo("--tls", "--tls-no-verify") == 0
    assert await echo("--tls") == 3  # the self-signed certificate is not trusted
    assert await echo() == 3  # plain DICOM on a TLS port
