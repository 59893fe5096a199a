"""TLS and SCRAM material for a secured local Kafka broker.

:class:`SaslSslListener` describes one extra listener of
:class:`consumers.brokers.ApacheKafka`: SASL_SSL with SCRAM-SHA-512, behind
a server certificate signed by a certificate authority made up on the spot
and thrown away with the broker. Everything is generated with ``keytool``,
which every Java runtime ships, so nothing beyond the broker's own Java is
needed.

What :meth:`SaslSslListener.prepare` writes (in a directory only the
current user can read):

``ca.pem``
    The throwaway CA's certificate: what a client trusts (``--ssl-cafile``).
``broker.p12``
    The broker's key and certificate chain (PKCS#12). The certificate names
    ``localhost`` and ``127.0.0.1`` and nothing else, so a client that checks
    host names refuses the broker under any other name.
``<user>.password``
    One file per SCRAM user, holding the password (``--sasl-password-file``).

Passwords never appear on a command line: ``keytool`` reads its store
password from a file, and the SCRAM credentials reach ``kafka-storage
format`` through a Java argument file (see :meth:`format_arguments`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CERTIFICATE_DNS_NAMES",
    "CERTIFICATE_IP_ADDRESSES",
    "SCRAM_MECHANISM",
    "BrokerSecurityError",
    "SaslSslListener",
    "ScramUser",
    "write_private",
]

SCRAM_MECHANISM = "SCRAM-SHA-512"
#: The names the broker certificate is valid for; nothing else passes a
#: client's host-name check.
CERTIFICATE_DNS_NAMES = ("localhost",)
CERTIFICATE_IP_ADDRESSES = ("127.0.0.1",)
#: ``kafka-storage format --add-scram`` parses ``[name=...,password=...]``
#: itself; keep to characters that cannot break that syntax.
_SAFE = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
#: keytool is a JVM; these shave about a third off each of its starts.
_KEYTOOL_JVM_OPTS = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")


class BrokerSecurityError(Exception):
    """The certificates or credentials of a secured broker could not be made."""


@dataclass(frozen=True)
class ScramUser:
    """A SCRAM user of the broker. The password is left out of ``repr``."""

    name: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not _SAFE.match(self.name):
            raise ValueError(f"SCRAM user name {self.name!r} must match {_SAFE.pattern}")
        if not _SAFE.match(self.password):
            raise ValueError(f"the password of SCRAM user {self.name!r} must match {_SAFE.pattern}")


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, readable by the current user only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


class SaslSslListener:
    """A SASL_SSL listener with SCRAM-SHA-512 users and a throwaway CA.

    Parameters
    ----------
    users : mapping of str to str, optional
        SCRAM user name to password. By default one user, ``streamrec``,
        with a random password.
    validity_days : int
        Lifetime of the CA and the broker certificate.

    Attributes
    ----------
    users : dict of str to ScramUser
    directory : pathlib.Path or None
        Where :meth:`prepare` wrote the files; None before.

    Examples
    --------
    >>> listener = SaslSslListener({"alice": "alice-secret"})
    >>> listener.users["alice"]
    ScramUser(name='alice')
    >>> listener.format_arguments()
    ['--add-scram', 'SCRAM-SHA-512=[name=alice,password=alice-secret]']
    """

    #: The listener's name in ``listeners`` and ``listener.security.protocol.map``.
    name = "SASL_SSL"

    def __init__(self, users: Mapping[str, str] | None = None, *, validity_days: int = 2) -> None:
        if users is None:
            users = {"streamrec": secrets.token_urlsafe(24)}
        if not users:
            raise ValueError("a SASL_SSL listener needs at least one SCRAM user")
        self.users = {name: ScramUser(name, password) for name, password in users.items()}
        self.validity_days = validity_days
        self.directory: Path | None = None
        self._store_password: str | None = None

    # -- files ---------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if self.directory is None:
            raise BrokerSecurityError("the SASL_SSL listener is not prepared yet")
        return self.directory / name

    @property
    def ca_file(self) -> Path:
        """PEM certificate of the throwaway CA, for the clients' trust store."""
        return self._path("ca.pem")

    @property
    def keystore(self) -> Path:
        """The broker's PKCS#12 key store (key and CA-signed certificate chain)."""
        return self._path("broker.p12")

    def password_file(self, user: str | None = None) -> Path:
        """File holding ``user``'s password (the first user by default)."""
        name = user if user is not None else next(iter(self.users))
        if name not in self.users:
            raise KeyError(f"no SCRAM user {name!r}; users: {sorted(self.users)}")
        return self._path(f"{name}.password")

    # -- generation ----------------------------------------------------------
    def prepare(self, directory: Path, java: str) -> None:
        """Make the CA, the broker's key store and the users' password files.

        Parameters
        ----------
        directory : pathlib.Path
            Created (mode 0700) if missing.
        java : str
            The ``java`` executable; ``keytool`` is looked up beside it.

        Raises
        ------
        BrokerSecurityError
            If ``keytool`` is missing or fails.
        """
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self._store_password = secrets.token_urlsafe(24)
        store_password_file = write_private(directory / "store.password", self._store_password)
        keytool = _find_keytool(java)
        ca_store = directory / "ca.p12"
        csr = directory / "broker.csr"
        signed = directory / "broker.pem"
        validity = str(self.validity_days)
        store = ["-storetype", "PKCS12", "-storepass:file", str(store_password_file)]
        san = ",".join(
            [*(f"dns:{n}" for n in CERTIFICATE_DNS_NAMES),
             *(f"ip:{a}" for a in CERTIFICATE_IP_ADDRESSES)]
        )  # fmt: skip
        steps = [
            # 1. The CA: a self-signed key pair allowed to sign certificates.
            ["-genkeypair", "-keystore", str(ca_store), *store, "-alias", "ca",
             "-dname", "CN=streamrec throwaway CA", "-keyalg", "RSA", "-keysize", "2048",
             "-validity", validity, "-ext", "bc:c=ca:true", "-ext", "ku:c=keyCertSign,cRLSign"],
            ["-exportcert", "-rfc", "-keystore", str(ca_store), *store, "-alias", "ca",
             "-file", str(self.ca_file)],
            # 2. The broker's key pair, and a request for the CA to sign it.
            ["-genkeypair", "-keystore", str(self.keystore), *store, "-alias", "broker",
             "-dname", "CN=localhost", "-keyalg", "RSA", "-keysize", "2048",
             "-validity", validity],
            ["-certreq", "-keystore", str(self.keystore), *store, "-alias", "broker",
             "-file", str(csr)],
            # 3. The CA signs it for localhost and 127.0.0.1 only, as a TLS server.
            ["-gencert", "-rfc", "-keystore", str(ca_store), *store, "-alias", "ca",
             "-infile", str(csr), "-outfile", str(signed), "-validity", validity,
             "-ext", f"san={san}", "-ext", "ku:c=digitalSignature,keyEncipherment",
             "-ext", "eku=serverAuth"],
            # 4. The signed certificate replaces the self-signed one; keytool
            #    only accepts it once it can chain it to a trusted CA.
            ["-importcert", "-noprompt", "-keystore", str(self.keystore), *store,
             "-alias", "ca", "-file", str(self.ca_file)],
            ["-importcert", "-noprompt", "-keystore", str(self.keystore), *store,
             "-alias", "broker", "-file", str(signed)],
        ]  # fmt: skip
        for args in steps:
            _run_keytool(keytool, args)
        # The CA's private key has done its job; nobody can sign with it again.
        ca_store.unlink()
        csr.unlink()
        for user in self.users.values():
            write_private(self.password_file(user.name), user.password + "\n")

    # -- broker configuration ------------------------------------------------
    def broker_properties(self) -> dict[str, object]:
        """Broker properties for the listener (merged into ``server.properties``)."""
        if self._store_password is None:
            raise BrokerSecurityError("call prepare() before broker_properties()")
        prefix = f"listener.name.{self.name.lower()}"
        return {
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"{prefix}.sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"{prefix}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            f"{prefix}.ssl.keystore.type": "PKCS12",
            f"{prefix}.ssl.keystore.location": str(self.keystore),
            f"{prefix}.ssl.keystore.password": self._store_password,
            f"{prefix}.ssl.key.password": self._store_password,
            f"{prefix}.ssl.client.auth": "none",
            f"{prefix}.ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        }

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that create the SCRAM users.

        KRaft keeps SCRAM credentials in the metadata log, so they exist
        before the broker first accepts a client. These arguments hold the
        passwords: pass them in a Java argument file, not on a command line.
        """
        args: list[str] = []
        for user in self.users.values():
            scram = f"{SCRAM_MECHANISM}=[name={user.name},password={user.password}]"
            args += ["--add-scram", scram]
        return args

    def __repr__(self) -> str:
        return f"SaslSslListener(users={sorted(self.users)}, directory={self.directory})"


def _find_keytool(java: str) -> str:
    beside = Path(java).resolve().parent / "keytool"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("keytool")
    if found is None:
        raise BrokerSecurityError(
            f"keytool not found beside {java} nor on PATH; it comes with every Java runtime"
        )
    return found


def _run_keytool(keytool: str, args: list[str]) -> None:
    cmd = [keytool, *_KEYTOOL_JVM_OPTS, *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BrokerSecurityError(f"keytool {args[0]} did not finish in 120s") from exc
    if res.returncode != 0:
        out = "\n".join((res.stdout + res.stderr).splitlines()[-20:])
        raise BrokerSecurityError(f"keytool {args[0]} failed (exit {res.returncode}):\n{out}")
