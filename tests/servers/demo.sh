#!/usr/bin/env bash
# Sends one real message the way a mail admin tests a server: starts the project's private
# Postfix on loopback (installing it first when run as root on a machine without it), then runs
# smtp-send over STARTTLS with AUTH and a transcript, and prints the delivered file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

tests/servers/postfix.sh start >/dev/null
eval "$(tests/servers/postfix.sh env)"
cargo build --quiet -p smtp-blocking --bin smtp-send

token="demo-$(date +%s)-$$"
message=$(mktemp)
trap 'rm -f "$message"' EXIT
cat > "$message" <<MESSAGE
From: Demo Sender <demo@example.test>
To: Alice <alice@example.test>
Subject: smtp-send demo $token
Message-ID: <$token@client.example.test>

This message went through the sans-IO core and the blocking adapter,
over STARTTLS with AUTH, into a private Postfix on 127.0.0.1.
.A line that starts with a dot arrives unchanged.
MESSAGE

SMTP_DEMO_PASSWORD=$SMTP_POSTFIX_PASSWORD target/debug/smtp-send \
    --server "127.0.0.1:$SMTP_POSTFIX_SUBMISSION_PORT" \
    --tls required \
    --ca-file "$SMTP_POSTFIX_CA_FILE" \
    --helo client.example.test \
    --from demo@example.test \
    --to alice@example.test \
    --auth-user "$SMTP_POSTFIX_USER" \
    --auth-password-env SMTP_DEMO_PASSWORD \
    --data "$message" \
    --transcript

# Postfix delivers in the background: wait up to ten seconds for the file.
for _ in $(seq 50); do
    delivered=$(grep -rl --fixed-strings "$token" "$SMTP_POSTFIX_MAILDIR/new" 2>/dev/null | head -n 1 || true)
    [ -n "$delivered" ] && break
    sleep 0.2
done
if [ -z "$delivered" ]; then
    echo "demo: the message did not arrive in $SMTP_POSTFIX_MAILDIR; see $SMTP_POSTFIX_LOG" >&2
    exit 1
fi
echo
echo "delivered to $delivered:"
cat "$delivered"
