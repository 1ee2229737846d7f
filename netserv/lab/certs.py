"""The course's certificates: a throw-away CA and server certificate, in memory.

Theory of operation
-------------------
A TLS server needs a certificate that its clients trust. Production servers
get one from a public CA; a course, a test or a benchmark on loopback needs
one that costs nothing and is gone afterwards. trustme (a small library made
for exactly this) creates a certificate authority and a certificate it signs,
in memory, in milliseconds. Nothing is written to the repository, no key
file is kept, no ``openssl`` command line is run; where a library wants a
*file* (http.server's HTTPSServer, the load generator's ``--tls --cafile FILE``),
``files()`` writes one to a temporary directory and removes it afterwards.

trustme is in the ``course`` and ``test`` extras; netserv itself never needs it.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["CourseCA", "CourseFiles"]

#: The names the server certificate is valid for: every loopback name the
#: course's servers bind and its clients dial.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CourseFiles:
    """Paths of the PEM files ``CourseCA.files()`` wrote (valid inside the block)."""

    ca: str  # the CA certificate: what a client trusts (bench --tls --cafile FILE)
    cert: str  # the server's private key and certificate chain, in one file


class CourseCA:
    """A certificate authority and one server certificate for loopback.

    server_context(): a server-side SSLContext with the standard library's
    defaults (ssl.create_default_context(Purpose.CLIENT_AUTH)) and the
    certificate loaded. client_context(): a client-side one that trusts this
    CA only. Both are new objects on every call. Error: ImportError naming
    the extra if trustme is not installed.
    """

    def __init__(self, names: tuple[str, ...] = LOOPBACK_NAMES) -> None:
        try:
            import trustme
        except ImportError as error:
            raise ImportError("the course's certificates need trustme: "
                              "pip install -e '.[course]' (or '.[test]')") from error
        self._ca: Any = trustme.CA()
        self._cert: Any = self._ca.issue_cert(*names)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def ca_pem(self) -> bytes:
        """The CA certificate in PEM (public: nothing secret in it)."""
        return bytes(self._ca.cert_pem.bytes())

    @contextlib.contextmanager
    def files(self) -> Iterator[CourseFiles]:
        """Write the CA certificate and the server's key and chain to a temporary
        directory (readable by this user only) for the block; remove them after."""
        with tempfile.TemporaryDirectory(prefix="netserv-tls-") as folder:
            ca = os.path.join(folder, "ca.pem")
            cert = os.path.join(folder, "server.pem")
            self._ca.cert_pem.write_to_path(ca)
            self._cert.private_key_and_cert_chain_pem.write_to_path(cert)
            yield CourseFiles(ca=ca, cert=cert)
