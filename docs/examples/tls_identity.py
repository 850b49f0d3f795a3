"""DICOM over TLS with user identity negotiation, both sides in one program.

The SCP accepts only TLS connections and checks the username and passcode the SCU
sends in its A-ASSOCIATE-RQ (user identity negotiation, PS3.7 D.3.3.7) in an
``EVT_USER_ID`` handler; a wrong passcode gets A-ASSOCIATE-RJ.

Make a certificate for 127.0.0.1 first:

    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\
        -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \\
        -keyout key.pem -out cert.pem

Run: python3 tls_identity.py cert.pem key.pem
"""

import asyncio
import ssl
import sys

from aiodimse import AE, AssociationRejectedError, UserIdentityRQ, evt

VERIFICATION = "1.2.840.10008.1.1"
USERS = {b"alice": b"wonderland"}  # a real SCP would ask its directory


def on_user_id(event):
    """Return (verified, server response): True admits the association."""
    if event.user_id_type != 2:  # 2: username and passcode
        return False, None
    return USERS.get(event.primary_field) == event.secondary_field, None


def identity(user: bytes, passcode: bytes) -> UserIdentityRQ:
    return UserIdentityRQ(identity_type=2, positive_response_requested=False,
                          primary_field=user, secondary_field=passcode)


async def main(cert: str, key: str) -> int:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    scp = AE("SECURE_SCP")
    scp.add_supported_context(VERIFICATION)
    server = await scp.start_server(("127.0.0.1", 0), ssl_context=server_tls,
                                    evt_handlers=[(evt.EVT_USER_ID, on_user_id)])

    client_tls = ssl.create_default_context(cafile=cert)  # trust our own certificate
    scu = AE("MY_SCU")
    scu.add_requested_context(VERIFICATION)
    async with server:
        async with scu.associate("127.0.0.1", server.port, ae_title="SECURE_SCP",
                                 ext_neg=[identity(b"alice", b"wonderland")],
                                 ssl_context=client_tls,
                                 server_hostname="127.0.0.1") as assoc:
            status = await assoc.send_c_echo()
            print(f"alice over TLS: C-ECHO 0x{status.Status:04X}")
        try:
            await scu.associate("127.0.0.1", server.port, ae_title="SECURE_SCP",
                                ext_neg=[identity(b"alice", b"guess")],
                                ssl_context=client_tls, server_hostname="127.0.0.1")
        except AssociationRejectedError as exc:
            print(f"wrong passcode: rejected (result {exc.result}, source {exc.source}, "
                  f"reason {exc.reason})")
        else:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
