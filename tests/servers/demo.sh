#!/usr/bin/env bash
# Sends real messages the way a mail admin tests a server. It starts the project's private
# Postfix on loopback, installing it first when run as root on a machine without it. Then it runs
# smtp-send over STARTTLS with AUTH and a transcript, and prints the delivered file. Postfix
# offers CHUNKING, so that message goes with BDAT. A second one goes with DATA (--chunking off)
# to show that its dot-stuffed line arrives unchanged.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

tests/servers/postfix.sh start >/dev/null
eval "$(tests/servers/postfix.sh env)"
cargo build --quiet -p smtp-blocking --bin smtp-send

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run_id="demo-$(date +%s)-$$"

# Writes the message with the given token to a file under $work and prints its path.
write_message() {
    local token=$1
    cat >"$work/$token.eml" <<MESSAGE
From: Demo Sender <demo@example.test>
To: Alice <alice@example.test>
Subject: smtp-send demo $token
Message-ID: <$token@client.example.test>

This message went through the sans-IO core and the blocking adapter,
over STARTTLS with AUTH, into a private Postfix on 127.0.0.1.
.A line that starts with a dot arrives unchanged.
MESSAGE
    echo "$work/$token.eml"
}

# Runs smtp-send against the submission port with AUTH and the given extra flags.
send() {
    SMTP_DEMO_PASSWORD=$SMTP_POSTFIX_PASSWORD target/debug/smtp-send \
        --server "127.0.0.1:$SMTP_POSTFIX_SUBMISSION_PORT" \
        --tls required \
        --ca-file "$SMTP_POSTFIX_CA_FILE" \
        --helo client.example.test \
        --from demo@example.test \
        --to alice@example.test \
        --auth-user "$SMTP_POSTFIX_USER" \
        --auth-password-env SMTP_DEMO_PASSWORD \
        "$@"
}

# Prints the path of the delivered file that contains the token. Postfix delivers in the
# background, so this waits up to ten seconds.
delivered_file() {
    local token=$1 delivered=
    for _ in $(seq 50); do
        delivered=$(grep -rl --fixed-strings "$token" "$SMTP_POSTFIX_MAILDIR/new" 2>/dev/null |
            head -n 1 || true)
        [ -n "$delivered" ] && break
        sleep 0.2
    done
    if [ -z "$delivered" ]; then
        echo "demo: message $token did not arrive in $SMTP_POSTFIX_MAILDIR; see $SMTP_POSTFIX_LOG" >&2
        exit 1
    fi
    echo "$delivered"
}

bdat_token="$run_id-bdat"
echo "first message, with BDAT because Postfix offers CHUNKING:"
send --data "$(write_message "$bdat_token")" --transcript
delivered=$(delivered_file "$bdat_token")
echo
echo "delivered to $delivered:"
cat "$delivered"

data_token="$run_id-data"
echo
echo "second message, with DATA (--chunking off), dot-stuffed on the wire:"
send --data "$(write_message "$data_token")" --chunking off --transcript >"$work/data.log"
if ! grep -qx 'C: DATA' "$work/data.log" || grep -q '^C: BDAT' "$work/data.log"; then
    echo "demo: the second message did not go with DATA; its transcript:" >&2
    cat "$work/data.log" >&2
    exit 1
fi
grep -E '^(C: DATA|S: 354 |C: <|S: 250 2\.0\.0 )' "$work/data.log"
delivered=$(delivered_file "$data_token")
dot_line='.A line that starts with a dot arrives unchanged.'
if ! grep -qxF "$dot_line" "$delivered"; then
    echo "demo: the dot line changed on the way into $delivered" >&2
    exit 1
fi
echo "delivered to $delivered, with its dot line unchanged:"
echo "$dot_line"
