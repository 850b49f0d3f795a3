"""``aiodimse serve`` with TLS, and the SCU tools' ``--tls`` options."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Event, evt
from aiodimse.cli.main import main
from aiodimse.services import STORAGE_COMMITMENT as STGCMT
from aiodimse.services import STORAGE_COMMITMENT_INSTANCE as STGCMT_INSTANCE

from ._serve import free_port
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


async def test_tls_commitment_report_to_a_tls_peer(serve: StartServe, tmp_path: Path) -> None:
    """[tls] with a CA: clients must present certificates, and the report goes to an
    AE table entry with ``tls = true``, verified against the same CA."""
    cert, key = _self_signed(tmp_path)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    client_ctx.load_cert_chain(str(cert), str(key))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(cert), str(key))
    back_port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text(
        f'[tls]\ncert = "{cert}"\nkey = "{key}"\nca = "{cert}"\n'
        "[commitment]\nsame_association = false\n"
        f'[ae.MODALITY]\nhost = "127.0.0.1"\nport = {back_port}\ntls = true\n'
    )
    srv = await serve("-aet", "ARCHIVE", "--config", str(config)).ready()
    reports: asyncio.Queue[str] = asyncio.Queue()
    receiver = AE("MODALITY")
    receiver.add_supported_context(STGCMT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        await reports.put(str(event.event_information.TransactionUID))
        return 0, None

    back = await receiver.start_server(("127.0.0.1", back_port), ssl_context=server_ctx,
                                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    async with back:
        requester = AE("MODALITY")
        requester.add_requested_context(STGCMT)
        transaction = str(generate_uid())
        request = Dataset()
        request.TransactionUID = transaction
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = "1.2.3"
        request.ReferencedSOPSequence = [item]
        async with requester.associate("127.0.0.1", srv.port, ae_title="ARCHIVE",
                                       ssl_context=client_ctx) as assoc:
            status, _ = await assoc.send_n_action(request, 1, STGCMT, STGCMT_INSTANCE)
        assert status.Status == 0
        assert await asyncio.wait_for(reports.get(), 10) == transaction
    # Without a client certificate the server refuses the TLS handshake.
    code = await asyncio.wait_for(asyncio.to_thread(
        main, ["echo", "127.0.0.1", str(srv.port), "--timeout", "5", "--tls-ca", str(cert)]
    ), 30)
    assert code == 3
    code = await asyncio.wait_for(asyncio.to_thread(
        main, ["echo", "127.0.0.1", str(srv.port), "--timeout", "5", "--tls-ca", str(cert),
               "--tls-cert", str(cert), "--tls-key", str(key)]
    ), 30)
    assert code == 0
