"""An aiosmtpd server on 127.0.0.1 that stores every message it accepts as a file.

Started by aiosmtpd.sh. The server offers STARTTLS and, only after TLS, AUTH with PLAIN, LOGIN,
CRAM-MD5, XOAUTH2 and OAUTHBEARER. MAIL needs a successful AUTH. It accepts every recipient except
reject@example.test (550), tempfail@example.test (450) and closing@example.test (421, with the
connection left open, unlike a server that closes after 421).

Each message is stored Maildir-style: written to FOLDER/tmp/NAME, then renamed to FOLDER/new/NAME,
holding the bytes received after DATA with dot-stuffing removed and nothing added. Before that
rename, FOLDER/envelopes/NAME receives one line per fact, fields separated by tabs:

    tls<TAB>TLSv1.3
    auth<TAB>LOGIN-NAME
    mail_from<TAB>ADDRESS[<TAB>PARAMETER...]
    rcpt_to<TAB>ADDRESS[<TAB>PARAMETER...]      (one line per accepted recipient)

aiosmtpd upper-cases MAIL and RCPT parameters. The server binds port 0 and writes the port it got
to the file named by --port-file once it accepts connections.
"""

import argparse
import asyncio
import base64
import hmac
import itertools
import json
import logging
import os
import secrets
import signal
import ssl
import time

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword, auth_mechanism

REJECTED_RECIPIENT = "reject@example.test"
DEFERRED_RECIPIENT = "tempfail@example.test"
CLOSING_RECIPIENT = "closing@example.test"
MESSAGE_SIZE_LIMIT = 10 * 1024 * 1024
HOSTNAME = "sink.example.test"

log = logging.getLogger("aiosmtpd_server")


class Credentials:
    """The one account the server accepts, by password or by OAuth 2.0 bearer token."""

    def __init__(self, user: str, password: str, token: str):
        self.user = user.encode()
        self.password = password.encode()
        self.token = token.encode()

    def check_password(self, login: bytes, password: bytes) -> bool:
        return hmac.compare_digest(login, self.user) and hmac.compare_digest(
            password, self.password
        )

    def check_token(self, login: bytes, token: bytes) -> bool:
        return hmac.compare_digest(login, self.user) and hmac.compare_digest(token, self.token)


class Handler:
    """aiosmtpd hooks: recipient checks, message storage and the extra SASL mechanisms."""

    def __init__(self, folder: str, credentials: Credentials):
        self.folder = folder
        self.credentials = credentials
        self.sequence = itertools.count()
        for name in ("tmp", "new", "cur", "envelopes"):
            os.makedirs(os.path.join(folder, name), exist_ok=True)

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        """Checks a login name and password sent with PLAIN or LOGIN."""
        accepted = isinstance(auth_data, LoginPassword) and self.credentials.check_password(
            auth_data.login, auth_data.password
        )
        log.info("AUTH %s %s", mechanism, "accepted" if accepted else "rejected")
        return AuthResult(success=accepted, handled=False, auth_data=auth_data)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() == REJECTED_RECIPIENT:
            return f"550 5.1.1 <{address}>: recipient rejected by the test server"
        if address.lower() == DEFERRED_RECIPIENT:
            return f"450 4.2.0 <{address}>: recipient deferred by the test server"
        if address.lower() == CLOSING_RECIPIENT:
            return f"421 4.3.2 <{address}>: the test server claims to be closing"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if not hasattr(envelope, "rcpt_parameters"):
            envelope.rcpt_parameters = []
        envelope.rcpt_parameters.append((address, list(rcpt_options)))
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}.{os.getpid()}_{next(self.sequence)}.{HOSTNAME}"
        lines = []
        if session.ssl is not None:
            lines.append(["tls", session.ssl["ssl_object"].version()])
        if session.login_data is not None:
            lines.append(["auth", session.login_data.decode("utf-8", "surrogateescape")])
        lines.append(["mail_from", envelope.mail_from, *envelope.mail_options])
        for address, parameters in getattr(envelope, "rcpt_parameters", []):
            lines.append(["rcpt_to", address, *parameters])
        envelope_text = "".join("\t".join(fields) + "\n" for fields in lines)

        self._write_atomically(
            os.path.join("envelopes", name), envelope_text.encode("utf-8", "surrogateescape")
        )
        self._write_atomically(os.path.join("new", name), envelope.original_content)
        log.info("stored %s (%d bytes)", name, len(envelope.original_content))
        return f"250 2.0.0 OK: stored as {name}"

    def _write_atomically(self, relative_path: str, data: bytes) -> None:
        temporary = os.path.join(self.folder, "tmp", os.path.basename(relative_path))
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.rename(temporary, os.path.join(self.folder, relative_path))

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, server, args):
        """RFC 2195: the client returns its name and HMAC-MD5(password, challenge) in hex."""
        if len(args) > 1:
            log.info("AUTH CRAM-MD5 rejected: the client sent an initial response")
            await server.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = f"<{secrets.token_hex(8)}.{time.time_ns()}@{HOSTNAME}>".encode()
        response = await server.challenge_auth(challenge)
        if response is MISSING:
            return AuthResult(success=False, handled=True)

        login, _, digest = response.rpartition(b" ")
        expected = hmac.new(self.credentials.password, challenge, "md5").hexdigest().encode()
        accepted = hmac.compare_digest(login, self.credentials.user) and hmac.compare_digest(
            digest.lower(), expected
        )
        log.info("AUTH CRAM-MD5 %s", "accepted" if accepted else "rejected")
        return AuthResult(success=accepted, handled=False, auth_data=LoginPassword(login, b""))

    @auth_mechanism("XOAUTH2")
    async def auth_XOAUTH2(self, server, args):
        """Google's XOAUTH2: `user=NAME ^A auth=Bearer TOKEN ^A ^A`, base64-encoded."""
        response = await self._initial_response(server, args)
        if response is MISSING:
            return AuthResult(success=False, handled=True)

        fields = response.split(b"\x01")
        accepted = False
        well_formed = (
            len(fields) == 4
            and fields[0].startswith(b"user=")
            and fields[1].startswith(b"auth=Bearer ")
            and fields[2:] == [b"", b""]
        )
        if well_formed:
            login = fields[0].removeprefix(b"user=")
            token = fields[1].removeprefix(b"auth=Bearer ")
            accepted = self.credentials.check_token(login, token)
        log.info("AUTH XOAUTH2 %s", "accepted" if accepted else "rejected")
        if accepted:
            return AuthResult(success=True, auth_data=LoginPassword(login, b""))

        error = {"status": "401", "schemes": "Bearer", "scope": "https://mail.example.test/"}
        return await self._fail_with_error_challenge(server, error)

    @auth_mechanism("OAUTHBEARER")
    async def auth_OAUTHBEARER(self, server, args):
        """RFC 7628: `n,a=NAME, ^A host=... ^A port=... ^A auth=Bearer TOKEN ^A ^A`."""
        response = await self._initial_response(server, args)
        if response is MISSING:
            return AuthResult(success=False, handled=True)

        header, _, rest = response.partition(b"\x01")
        header_fields = header.split(b",")
        login = None
        if len(header_fields) == 3 and header_fields[0] == b"n" and header_fields[2] == b"":
            if header_fields[1].startswith(b"a="):
                login = header_fields[1][2:].replace(b"=2C", b",").replace(b"=3D", b"=")
        pairs = rest.split(b"\x01")
        tokens = [p.removeprefix(b"auth=Bearer ") for p in pairs if p.startswith(b"auth=Bearer ")]
        accepted = (
            login is not None
            and pairs[-2:] == [b"", b""]
            and len(tokens) == 1
            and self.credentials.check_token(login, tokens[0])
        )
        log.info("AUTH OAUTHBEARER %s", "accepted" if accepted else "rejected")
        if accepted:
            return AuthResult(success=True, auth_data=LoginPassword(login, b""))

        error = {
            "status": "invalid_token",
            "schemes": "bearer",
            "scope": "https://mail.example.test/",
        }
        return await self._fail_with_error_challenge(server, error)

    @staticmethod
    async def _initial_response(server, args):
        """Returns the decoded initial response, or requests it with an empty challenge."""
        if len(args) == 1:
            return await server.challenge_auth(b"")
        try:
            return base64.b64decode(args[1], validate=True)
        except ValueError:
            log.info("AUTH %s rejected: invalid base64 in the initial response", args[0])
            await server.push("501 5.5.2 invalid base64 in the initial response")
            return MISSING

    @staticmethod
    async def _fail_with_error_challenge(server, error):
        """Sends the JSON error as a challenge, reads the client's dummy reply, then fails."""
        reply = await server.challenge_auth(json.dumps(error).encode())
        if reply is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 invalid token for the test account"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="where messages are stored")
    parser.add_argument("--port-file", required=True, help="receives the port once listening")
    parser.add_argument("--cert", required=True, help="server certificate chain, PEM")
    parser.add_argument("--key", required=True, help="server private key, PEM")
    parser.add_argument("--user", required=True, help="the account's login name")
    parser.add_argument("--password", required=True, help="the account's password")
    parser.add_argument("--token", required=True, help="the account's OAuth 2.0 bearer token")
    args = parser.parse_args()

    # Descriptors inherited from the starting shell, such as the pipe of a caller that reads the
    # shell's output until EOF, are closed so that the caller is not kept waiting.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))

    # A session of its own keeps a signal sent to the starting shell's process group, such as
    # Ctrl-C, from reaching the server. A process group leader cannot do this and stays as it is.
    try:
        os.setsid()
    except PermissionError:
        pass

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(args.cert, args.key)
    handler = Handler(args.folder, Credentials(args.user, args.password, args.token))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def new_session() -> SMTP:
        return SMTP(
            handler,
            loop=loop,
            hostname=HOSTNAME,
            data_size_limit=MESSAGE_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            tls_context=tls_context,
            auth_required=True,
            auth_require_tls=True,
            authenticator=handler.authenticate,
        )

    server = loop.run_until_complete(loop.create_server(new_session, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    with open(args.port_file + ".tmp", "w") as file:
        file.write(f"{port}\n")
    os.rename(args.port_file + ".tmp", args.port_file)
    log.info("listening on 127.0.0.1:%d, storing messages in %s", port, args.folder)

    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    loop.run_forever()
    server.close()
    loop.run_until_complete(server.wait_closed())
    log.info("stopped")


if __name__ == "__main__":
    main()
