#!/usr/bin/env bash
# Runs the aiosmtpd test server (aiosmtpd_server.py) on loopback for the interoperability tests.
#
# Usage: aiosmtpd.sh install|start|stop|status|env
#
#   install installs aiosmtpd from PyPI for python3.
#   start   runs `install` if python3 lacks aiosmtpd, starts the server unless it already runs,
#           then prints `env`.
#   stop    stops this server only.
#   status  exits 0 when the server runs.
#   env     prints the KEY=value lines that describe the running server.
#
# STATE is ${SMTP_TEST_STATE:-/tmp/smtp-proto-test}; the server's files are under
# $STATE/aiosmtpd, its messages in $STATE/aiosmtpd/messages/new and its log in
# $STATE/aiosmtpd/server.log. It listens on one port on 127.0.0.1 chosen by the kernel and offers
# STARTTLS, then AUTH PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER; MAIL needs AUTH. A running
# server started before this script or aiosmtpd_server.py last changed is restarted.
set -euo pipefail

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SERVER_SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/aiosmtpd_server.py
DIR=$STATE/aiosmtpd
FOLDER=$DIR/messages
PID_FILE=$DIR/server.pid
PORT_FILE=$DIR/port
LOG_FILE=$DIR/server.log
ENV_FILE=$DIR/env

AIOSMTPD_VERSION=1.4.6
USER_NAME=alice@example.test
PASSWORD=looking-glass-9
OAUTH_TOKEN=ya29.test-token-for-alice

start() {
    lock_state aiosmtpd
    if is_running && [[ -s $ENV_FILE && $ENV_FILE -nt $SERVER_SCRIPT &&
        $ENV_FILE -nt ${BASH_SOURCE[0]} ]]; then
        print_env "$ENV_FILE"
        return
    fi
    # Running without an env file, or started from older scripts: start afresh.
    stop_server

    if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
        install_dependencies
    fi
    ensure_certificates
    mkdir -p "$FOLDER"
    rm -f "$PORT_FILE" "$ENV_FILE"

    # The lock descriptors are closed so that the server does not hold the locks.
    python3 "$SERVER_SCRIPT" --folder "$FOLDER" --port-file "$PORT_FILE" \
        --cert "$SERVER_CERT" --key "$SERVER_KEY" \
        --user "$USER_NAME" --password "$PASSWORD" --token "$OAUTH_TOKEN" \
        </dev/null >>"$LOG_FILE" 2>&1 8>&- 9>&- &
    local pid=$!
    echo "$pid" >"$PID_FILE"

    # kill -0, not is_running: until exec, the child's command line is still the shell's.
    local deadline=$((SECONDS + 30))
    until [[ -s $PORT_FILE ]]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "aiosmtpd_server.py exited during start; see $LOG_FILE:" >&2
            tail -n 20 "$LOG_FILE" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "aiosmtpd_server.py did not report its port within 30 s; see $LOG_FILE" >&2
            exit 1
        fi
        sleep 0.1
    done
    local port
    port=$(cat "$PORT_FILE")
    wait_for_ports "$port"

    write_env "$ENV_FILE" \
        "SMTP_AIOSMTPD_PORT=$port" \
        "SMTP_AIOSMTPD_CA_FILE=$CA_FILE" \
        "SMTP_AIOSMTPD_USER=$USER_NAME" \
        "SMTP_AIOSMTPD_PASSWORD=$PASSWORD" \
        "SMTP_AIOSMTPD_OAUTH_TOKEN=$OAUTH_TOKEN" \
        "SMTP_AIOSMTPD_MAILDIR=$FOLDER" \
        "SMTP_AIOSMTPD_DOMAIN=example.test" \
        "SMTP_AIOSMTPD_LOG=$LOG_FILE"
    print_env "$ENV_FILE"
}

install_dependencies() {
    # As root, pip warns on every run that it may conflict with the system package manager. CI
    # runs as root and accepts that, so the warning is noise there.
    python3 -m pip install --quiet --root-user-action=ignore "aiosmtpd==$AIOSMTPD_VERSION" >&2
}

stop() {
    lock_state aiosmtpd
    stop_server
}

# Sends SIGTERM to the server and waits up to 10 s for it to exit.
stop_server() {
    if is_running; then
        local pid
        pid=$(cat "$PID_FILE")
        kill "$pid"
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                echo "aiosmtpd_server.py (pid $pid) still runs 10 s after SIGTERM" >&2
                exit 1
            fi
            sleep 0.1
        done
    fi
    rm -f "$PID_FILE" "$PORT_FILE" "$ENV_FILE"
}

# True when the process in the pid file is alive and still runs aiosmtpd_server.py, so a pid
# reused by another program is never signalled.
is_running() {
    [[ -s $PID_FILE ]] || return 1
    local pid
    pid=$(cat "$PID_FILE")
    [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q aiosmtpd_server.py
}

run_subcommand "$@"
