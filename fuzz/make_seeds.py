#!/usr/bin/env python3
"""Writes the seed inputs in fuzz/seeds/TARGET/ from the session transcripts.

Each transcript in smtp-proto/tests/transcripts/ gives these seeds:

- `reply`: its server writes;
- `client_session`: its configuration, queued work and server writes as harness actions;
- `capabilities`: its multi-line 250 replies;
- `sasl_challenge`: its 334 challenges;
- `data_encoder`: its message bodies.

The input layouts are those of fuzz/src/*.rs, described in fuzz/README.md. Run it after
changing the transcripts or a layout:

    python3 fuzz/make_seeds.py
"""

import re
import shutil
import struct
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
TRANSCRIPTS = FUZZ.parent / "smtp-proto" / "tests" / "transcripts"
SEEDS = FUZZ / "seeds"

# The two standard messages of smtp-proto/tests/transcripts/README.md.
M0 = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\r\nhello\r\n"
M1164 = (
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: size test\r\n\r\n"
    + b"A" * 1100
    + b"\r\n"
)
ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\", '"': b'"'}

# Opcodes and tables of fuzz/src/client_session.rs.
INPUT, SEND, COMMAND, DATA, QUIT, EOF, ADVANCE, TLS, TRANSMIT = range(9)
TLS_POLICIES = {"none": 0, "opportunistic": 1, "required": 2, "wrapper": 3}
MECHANISMS = {"PLAIN": 1, "LOGIN": 2, "CRAM-MD5": 3, "XOAUTH2": 4, "OAUTHBEARER": 5}
CHUNK_SIZES = [0, 1, 3, 16, 64, 512, 4096, 0]
COMMANDS = {"NOOP": 0, "RSET": 1, "HELP": 2, "VRFY": 4, "EXPN": 5, "DATA": 6, "QUIT": 7,
            "EHLO": 8, "HELO": 9, "LHLO": 10, "MAIL": 11, "RCPT": 12}


def unescape(text):
    """Expands the escapes and placeholders of the transcript format."""
    out = bytearray()
    text = text.replace("<M0>", M0.decode()).replace("<M1164>", M1164.decode())
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            out += char.encode()
            index += 1
            continue
        escape = text[index + 1]
        if escape == "x":
            out.append(int(text[index + 2:index + 4], 16))
            index += 4
        elif escape in ESCAPES:
            out += ESCAPES[escape]
            index += 2
        else:
            sys.exit(f"unknown escape \\{escape} in {text!r}")
    return bytes(out)


def body_of(value):
    """Returns the body a `body=` field names."""
    if value == "M0":
        return M0
    if value == "M1164":
        return M1164
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        return unescape(value[1:-1])
    sys.exit(f"unknown body {value}")


class Transcript:
    """The parts of one transcript the seeds are made of."""

    def __init__(self, path):
        self.name = path.stem
        self.writes = []
        self.bodies = []
        self.config = 0
        self.auth = 0
        self.actions = []
        one_transmit = False
        for line in path.read_text().splitlines():
            line = line.rstrip()
            if not line or line.startswith("#"):
                continue
            directive, _, rest = line.partition(" ")
            if directive == "config":
                one_transmit = self.read_config(rest) or one_transmit
                continue
            if directive in ("C:", "event", "no-event", "final", "never"):
                continue
            self.read_step(directive, rest)
            self.actions.append((TRANSMIT, 1 if one_transmit else 0))

    def read_config(self, settings):
        """Sets the configuration bytes and returns whether one transmit is taken per step."""
        one_transmit = False
        for setting in settings.split():
            key, _, value = setting.partition("=")
            if key == "tls":
                self.config = (self.config & ~3) | TLS_POLICIES[value]
            elif key == "pipelining" and value == "no":
                self.config |= 4
            elif key == "insecure_auth" and value == "yes":
                self.config |= 8
            elif key == "policy" and value == "all-or-nothing":
                self.config |= 16
            elif key == "auth":
                self.auth |= 1
            elif key == "mechanism":
                self.auth |= MECHANISMS.get(value.upper(), 6) << 2
            elif key == "chunk":
                sizes = [size for size in CHUNK_SIZES if 0 < size <= int(value)] or [1]
                self.auth |= CHUNK_SIZES.index(max(sizes)) << 5
                one_transmit = True
        return one_transmit

    def read_step(self, directive, rest):
        """Appends the harness action of one transcript step."""
        if directive == "S:":
            data = unescape(rest)
            self.writes.append(data)
            self.actions.append((INPUT, len(data)))
        elif directive == "send":
            fields, _, body = rest.partition(" body=")
            self.bodies.append(body_of(body))
            recipients, sender, utf8 = 1, 0, False
            for field in fields.split():
                key, _, value = field.partition("=")
                if key == "to":
                    addresses = value.split(",")
                    ascii = [address for address in addresses if address.isascii()]
                    recipients = min(max(len(ascii), 1), 3)
                    utf8 = len(ascii) < len(addresses)
                elif key == "from" and value in ("", "<>"):
                    sender = 1
                elif key == "from" and not value.isascii():
                    sender = 2
            self.actions.append((SEND, (recipients - 1) | sender << 6 | utf8 << 8))
        elif directive == "command":
            verb, _, argument = rest.partition(" ")
            code = COMMANDS[verb]
            if verb == "HELP" and argument:
                code = 3
            self.actions.append((COMMAND, code))
        elif directive == "data":
            self.bodies.append(body_of(rest.removeprefix("body=")))
            self.actions.append((DATA, 0))
        elif directive == "quit":
            self.actions.append((QUIT, 0))
        elif directive == "tls":
            self.actions.append((TLS, 0))
        elif directive == "eof":
            self.actions.append((EOF, 0))
        elif directive == "advance":
            self.actions.append((ADVANCE, round(float(rest))))
        else:
            sys.exit(f"{self.name}: unknown directive {directive}")

    def session_input(self):
        """Returns the client_session seed."""
        actions = self.actions[:255]
        out = bytearray([self.config, self.auth, len(actions)])
        for opcode, argument in actions:
            out.append(opcode)
            out += struct.pack("<H", min(argument, 0xFFFF))
        for data in self.writes:
            out += data
        return bytes(out)

    def ehlo_replies(self):
        """Returns the text of each multi-line 250 reply, lines joined by LF."""
        replies = []
        for data in self.writes:
            for reply in re.findall(rb"(?:250-[^\n]*\n)+250[^\n]*\n", data):
                lines = [line.rstrip(b"\r")[4:] for line in reply.splitlines()]
                replies.append(b"\n".join(lines))
        return replies

    def challenges(self):
        """Returns the text of every 334 reply line."""
        stream = b"".join(self.writes)
        return [line.rstrip(b"\r")[4:] for line in stream.split(b"\n") if line.startswith(b"334")]


def write(target, name, data, written):
    """Writes one seed, skipping an input that an earlier seed of the target already has."""
    if data in written.setdefault(target, set()):
        return
    written[target].add(data)
    (SEEDS / target / name).write_bytes(data)


def main():
    paths = sorted(TRANSCRIPTS.glob("*.txt"))
    if not paths:
        sys.exit(f"no transcripts in {TRANSCRIPTS}")
    for target in ("reply", "capabilities", "sasl_challenge", "data_encoder", "client_session"):
        shutil.rmtree(SEEDS / target, ignore_errors=True)
        (SEEDS / target).mkdir(parents=True)

    written = {}
    for number, path in enumerate(paths):
        transcript = Transcript(path)
        name = transcript.name
        # Limits byte 0 (defaults), then a split seed that differs between transcripts.
        write("reply", name, bytes([0, 1 + number % 16]) + b"".join(transcript.writes), written)
        write("client_session", name, transcript.session_input(), written)
        for index, reply in enumerate(transcript.ehlo_replies()):
            write("capabilities", f"{name}-{index}", reply, written)
        challenges = transcript.challenges()
        if challenges:
            write("sasl_challenge", name, b"\x00alice\n" + b"\n".join(challenges), written)
        for index, body in enumerate(transcript.bodies):
            write("data_encoder", f"{name}-{index}", bytes([3]) + body, written)

    for target in sorted(written):
        print(f"{target}: {len(written[target])} seeds")


if __name__ == "__main__":
    main()
