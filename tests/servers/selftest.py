"""Checks a running test server with Python's smtplib, independently of the Rust client.

Usage: python3 selftest.py postfix|aiosmtpd

Reads $STATE/NAME/env written by NAME.sh start, where STATE is
${SMTP_TEST_STATE:-/tmp/smtp-proto-test}, and exits non-zero naming the first check that failed.
A failure here means the server setup is wrong, not the client under test.
"""

import base64
import os
import smtplib
import ssl
import sys
import time
import uuid

TIMEOUT = 20


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(CHECKS)}")
    name = sys.argv[1]
    state = os.environ.get("SMTP_TEST_STATE", "/tmp/smtp-proto-test")
    env = read_env(os.path.join(state, name, "env"))
    CHECKS[name](env)
    print(f"selftest {name}: all checks passed")


def read_env(path: str) -> dict:
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        sys.exit(f"{path} not found: start the server first")
    return dict(line.split("=", 1) for line in lines if line)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def expect_reply(expected_code: int, what: str, action) -> None:
    """Runs action, which must raise an smtplib error carrying expected_code."""
    try:
        action()
    except smtplib.SMTPResponseException as error:
        check(error.smtp_code == expected_code, f"{what}: {error.smtp_code} {error.smtp_error!r}")
        return
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        check(codes == [expected_code], f"{what}: {error.recipients!r}")
        return
    check(False, f"{what}: expected {expected_code}, the server accepted")


def tls_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = True
    return context


def wait_for_file(folder: str, needle: bytes) -> bytes:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for sub in ("new", "cur"):
            directory = os.path.join(folder, sub)
            for entry in os.listdir(directory) if os.path.isdir(directory) else []:
                with open(os.path.join(directory, entry), "rb") as file:
                    data = file.read()
                if needle in data:
                    return data
        time.sleep(0.05)
    raise SystemExit(f"FAILED: no message containing {needle!r} in {folder} after {TIMEOUT} s")


def tricky_message(token: str) -> bytes:
    """A message that a server rewriting anything would change: no Date, no Message-ID, long
    lines, lines starting with dots, a lone dot, 8-bit bytes that are not UTF-8, trailing blanks."""
    lines = [
        b"From: Alice <alice@example.test>",
        b"To: Bob <bob@example.test>",
        b"Subject: selftest " + token.encode() + b" caf\xc3\xa9",
        b"X-Long-Header: " + b"h" * 1200,
        b"",
        b"token " + token.encode(),
        b".",
        b"..",
        b".leading dot",
        b"line with 8-bit bytes: \xe9\xff\x80\xc3\xa9",
        b"x" * 998,
        b"y" * 1500,
        b"z" * 5000,
        b"trailing blanks   \t",
        b"",
        b"From the start of a line",
        b"last line",
    ]
    return b"\r\n".join(lines) + b"\r\n"


def strip_postfix_headers(data: bytes) -> bytes:
    """Removes the header lines that Postfix prepends, then turns LF line ends back to CRLF."""
    lines = data.split(b"\n")
    prepended = (b"return-path:", b"x-original-to:", b"delivered-to:", b"received:")
    while lines:
        if lines[0].lower().startswith(prepended):
            lines.pop(0)
            while lines and lines[0][:1] in (b" ", b"\t"):
                lines.pop(0)
        else:
            break
    return b"\r\n".join(lines)


def check_postfix(env: dict) -> None:
    # smtplib checks the certificate against the host it connects to.
    host = "localhost"
    user = env["SMTP_POSTFIX_USER"]
    password = env["SMTP_POSTFIX_PASSWORD"]
    context = tls_context(env["SMTP_POSTFIX_CA_FILE"])
    maildir = env["SMTP_POSTFIX_MAILDIR"]
    submission = int(env["SMTP_POSTFIX_SUBMISSION_PORT"])

    # Capabilities before and after STARTTLS on the submission port.
    with smtplib.SMTP(host, submission, local_hostname="client.example.test", timeout=TIMEOUT) as s:
        s.ehlo()
        for keyword in ("starttls", "pipelining", "8bitmime", "smtputf8", "chunking", "dsn",
                        "enhancedstatuscodes", "size"):
            check(s.has_extn(keyword), f"submission offers {keyword.upper()} before TLS")
        check(s.esmtp_features["size"] == "10485760", "submission SIZE is 10485760")
        check(not s.has_extn("auth"), "submission offers no AUTH before TLS")
        s.starttls(context=context)
        s.ehlo()
        mechanisms = s.esmtp_features.get("auth", "").split()
        for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
            check(mechanism in mechanisms, f"submission offers AUTH {mechanism} after TLS")
        check(not s.has_extn("starttls"), "submission offers no STARTTLS after TLS")

    # The certificate also verifies for the address 127.0.0.1.
    with smtplib.SMTP("127.0.0.1", submission, timeout=TIMEOUT) as s:
        s.starttls(context=context)
        check(s.noop()[0] == 250, "certificate verifies for 127.0.0.1")

    # Each mechanism, and a wrong password.
    for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
        with smtplib.SMTP(host, submission, timeout=TIMEOUT) as s:
            s.starttls(context=context)
            s.ehlo()
            s.user, s.password = user, password
            method = getattr(s, "auth_" + mechanism.lower().replace("-", "_"))
            code, _ = s.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")
            check(code == 235, f"submission AUTH {mechanism} succeeds")
    with smtplib.SMTP(host, submission, timeout=TIMEOUT) as s:
        s.starttls(context=context)
        expect_reply(535, "submission AUTH PLAIN with a wrong password", lambda: s.login(user, "x"))

    # A message that Postfix must deliver unchanged below the headers it prepends.
    token = uuid.uuid4().hex
    message = tricky_message(token)
    with smtplib.SMTP(host, submission, timeout=TIMEOUT) as s:
        s.starttls(context=context)
        s.login(user, password)
        refused = s.sendmail("alice@example.test", ["bob@example.test"], message,
                             mail_options=["BODY=8BITMIME"])
        check(refused == {}, "submission accepts the message")
    delivered = wait_for_file(maildir, token.encode())
    prepended = delivered[: delivered.find(b"From: Alice")].decode("ascii", "replace")
    check(prepended.startswith("Return-Path: <alice@example.test>\n"),
          "Postfix prepends Return-Path")
    check("\nDelivered-To: bob@example.test\n" in prepended, "Postfix prepends Delivered-To")
    body = strip_postfix_headers(delivered)
    check(body == message, "the delivered message matches the sent one byte for byte")

    # Recipient rejections, relaying and SMTPUTF8 on the port without TLS and AUTH.
    plain = int(env["SMTP_POSTFIX_PLAIN_PORT"])
    with smtplib.SMTP(host, plain, timeout=TIMEOUT) as s:
        s.ehlo()
        check(not s.has_extn("starttls"), "plain offers no STARTTLS")
        check(not s.has_extn("auth"), "plain offers no AUTH")
        s.mail("alice@example.test")
        code, reply = s.rcpt("reject@example.test")
        check(code == 550, f"reject@example.test gets 550: {reply!r}")
        code, reply = s.rcpt("tempfail@example.test")
        check(code == 450, f"tempfail@example.test gets 450: {reply!r}")
        code, reply = s.rcpt("bob@elsewhere.test")
        check(code == 554, f"a recipient outside example.test is not relayed: {reply!r}")
        s.rset()
    with smtplib.SMTP(host, plain, timeout=TIMEOUT) as s:
        s.mail("alice@example.test")
        code, reply = s.rcpt("closing@example.test")
        check(code == 421, f"closing@example.test gets 421: {reply!r}")
        try:
            s.noop()
            closed = False
        except smtplib.SMTPServerDisconnected:
            closed = True
        check(closed, "Postfix closes the connection after the 421")
    with smtplib.SMTP(host, plain, timeout=TIMEOUT) as s:
        utf8_token = uuid.uuid4().hex
        s.sendmail("j\u00fcrgen@example.test", ["\u00e9l\u00e8ve@example.test"],
                   f"Subject: {utf8_token}\r\n\r\nbody\r\n".encode(),
                   mail_options=["SMTPUTF8"])
    delivered = wait_for_file(maildir, utf8_token.encode())
    check("Delivered-To: \u00e9l\u00e8ve@example.test".encode() in delivered,
          "an SMTPUTF8 recipient is delivered")

    # BDAT carries the message without dot-stuffing, in two chunks here.
    bdat_token = uuid.uuid4().hex
    bdat_message = f"Subject: {bdat_token}\r\n\r\n.\r\n..not stuffed\r\n".encode()
    with smtplib.SMTP(host, plain, timeout=TIMEOUT) as s:
        s.ehlo()
        s.mail("alice@example.test")
        s.rcpt("bob@example.test")
        first, second = bdat_message[:20], bdat_message[20:]
        s.send(b"BDAT %d\r\n" % len(first) + first)
        code, reply = s.getreply()
        check(code == 250, f"plain accepts a first BDAT chunk: {reply!r}")
        s.send(b"BDAT %d LAST\r\n" % len(second) + second)
        code, reply = s.getreply()
        check(code == 250, f"plain accepts the last BDAT chunk: {reply!r}")
    delivered = wait_for_file(maildir, bdat_token.encode())
    check(strip_postfix_headers(delivered) == bdat_message, "a BDAT message arrives unchanged")

    # A connection idle for longer than smtpd_timeout gets 421 on the short-timeout port.
    short_timeout = int(env["SMTP_POSTFIX_SHORT_TIMEOUT_SECONDS"])
    with smtplib.SMTP(host, int(env["SMTP_POSTFIX_SHORT_TIMEOUT_PORT"]), timeout=TIMEOUT) as s:
        s.ehlo()
        check(s.has_extn("starttls"), "short-timeout offers STARTTLS")
        time.sleep(short_timeout + 1)
        try:
            code, reply = s.noop()
        except smtplib.SMTPServerDisconnected:
            code, reply = 0, b"disconnected without a reply"
        check(code == 421, f"short-timeout drops an idle connection with 421: {reply!r}")

    # Implicit TLS.
    smtps = int(env["SMTP_POSTFIX_SMTPS_PORT"])
    smtps_token = uuid.uuid4().hex
    with smtplib.SMTP_SSL(host, smtps, context=context, timeout=TIMEOUT) as s:
        s.ehlo()
        check("PLAIN" in s.esmtp_features.get("auth", ""), "smtps offers AUTH PLAIN")
        s.login(user, password)
        s.sendmail("alice@example.test", ["carol@example.test"],
                   f"Subject: {smtps_token}\r\n\r\nbody\r\n".encode())
    wait_for_file(maildir, smtps_token.encode())
    check(True, "smtps delivers a message")


def check_aiosmtpd(env: dict) -> None:
    host = "localhost"
    port = int(env["SMTP_AIOSMTPD_PORT"])
    user = env["SMTP_AIOSMTPD_USER"]
    password = env["SMTP_AIOSMTPD_PASSWORD"]
    token = env["SMTP_AIOSMTPD_OAUTH_TOKEN"]
    context = tls_context(env["SMTP_AIOSMTPD_CA_FILE"])
    folder = env["SMTP_AIOSMTPD_MAILDIR"]

    def connect() -> smtplib.SMTP:
        s = smtplib.SMTP(host, port, local_hostname="client.example.test", timeout=TIMEOUT)
        s.starttls(context=context)
        s.ehlo()
        return s

    with smtplib.SMTP(host, port, timeout=TIMEOUT) as s:
        s.ehlo()
        check(s.has_extn("starttls"), "aiosmtpd offers STARTTLS")
        check(not s.has_extn("auth"), "aiosmtpd offers no AUTH before TLS")
        code, _ = s.docmd("MAIL", "FROM:<alice@example.test>")
        check(code == 530, "aiosmtpd rejects MAIL before AUTH with 530")

    with connect() as s:
        mechanisms = s.esmtp_features.get("auth", "").split()
        for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"):
            check(mechanism in mechanisms, f"aiosmtpd offers AUTH {mechanism} after TLS")

    for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
        with connect() as s:
            s.user, s.password = user, password
            method = getattr(s, "auth_" + mechanism.lower().replace("-", "_"))
            code, _ = s.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")
            check(code == 235, f"aiosmtpd AUTH {mechanism} succeeds")
        with connect() as s:
            s.user, s.password = user, password + "-wrong"
            method = getattr(s, "auth_" + mechanism.lower().replace("-", "_"))
            expect_reply(535, f"aiosmtpd AUTH {mechanism} with a wrong password",
                         lambda: s.auth(mechanism, method))

    def xoauth2(bearer: str) -> str:
        return base64.b64encode(f"user={user}\x01auth=Bearer {bearer}\x01\x01".encode()).decode()

    def oauthbearer(bearer: str) -> str:
        payload = f"n,a={user},\x01host=localhost\x01port={port}\x01auth=Bearer {bearer}\x01\x01"
        return base64.b64encode(payload.encode()).decode()

    for mechanism, encode, dummy in (("XOAUTH2", xoauth2, ""), ("OAUTHBEARER", oauthbearer, "AQ==")):
        with connect() as s:
            code, reply = s.docmd("AUTH", f"{mechanism} {encode(token)}")
            check(code == 235, f"aiosmtpd AUTH {mechanism} succeeds: {reply!r}")
        with connect() as s:
            code, reply = s.docmd("AUTH", f"{mechanism} {encode(token + 'x')}")
            check(code == 334, f"aiosmtpd AUTH {mechanism} with a wrong token gets a challenge")
            check(b"status" in base64.b64decode(reply), f"the {mechanism} challenge is JSON")
            code, reply = s.docmd(dummy)
            check(code == 535, f"aiosmtpd AUTH {mechanism} with a wrong token ends in 535")

    message_token = uuid.uuid4().hex
    message = tricky_message(message_token)
    # aiosmtpd 1.4.6 rejects DATA lines longer than 1001 bytes with their CRLF, so the long lines
    # are left out.
    message = b"\r\n".join(line for line in message.split(b"\r\n") if len(line) <= 998)
    with connect() as s:
        s.login(user, password)
        s.mail("alice@example.test")
        code, reply = s.rcpt("reject@example.test")
        check(code == 550, f"aiosmtpd rejects reject@example.test with 550: {reply!r}")
        code, reply = s.rcpt("tempfail@example.test")
        check(code == 450, f"aiosmtpd defers tempfail@example.test with 450: {reply!r}")
        code, reply = s.rcpt("closing@example.test")
        check(code == 421, f"aiosmtpd answers closing@example.test with 421: {reply!r}")
        check(s.noop()[0] == 250, "aiosmtpd keeps the connection open after that 421")
        s.rset()
        s.sendmail("alice@example.test", ["bob@example.test", "carol@example.test"], message,
                   mail_options=["BODY=8BITMIME"])
    stored = wait_for_file(folder, message_token.encode())
    check(stored == message, "aiosmtpd stores the message byte for byte")
    names = [n for n in os.listdir(os.path.join(folder, "new"))
             if message_token.encode() in open(os.path.join(folder, "new", n), "rb").read()]
    with open(os.path.join(folder, "envelopes", names[0]), encoding="utf-8") as file:
        envelope = [line.split("\t") for line in file.read().splitlines()]
    check(["auth", user] in envelope, "the envelope file names the AUTH login")
    # smtplib adds SIZE before the given options.
    check(["mail_from", "alice@example.test", f"SIZE={len(message)}", "BODY=8BITMIME"]
          in envelope, "the envelope file keeps MAIL FROM and its parameters")
    check([fields[1] for fields in envelope if fields[0] == "rcpt_to"]
          == ["bob@example.test", "carol@example.test"], "the envelope file lists both recipients")


CHECKS = {"postfix": check_postfix, "aiosmtpd": check_aiosmtpd}

if __name__ == "__main__":
    main()
