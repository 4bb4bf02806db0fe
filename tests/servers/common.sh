# shellcheck shell=bash
# Shared helpers for the test server scripts, which source this file.
#
# Every server keeps its files under one state folder,
# ${SMTP_TEST_STATE:-/tmp/smtp-proto-test}, and both servers present a certificate for
# `localhost` and 127.0.0.1 signed by one test CA kept in $STATE/tls.

STATE=${SMTP_TEST_STATE:-/tmp/smtp-proto-test}

# The env files and the Rust helpers split `KEY=value` lines without shell unquoting.
case $STATE in
    /*) ;;
    *) echo "SMTP_TEST_STATE=$STATE is not an absolute path: set it to one" >&2; exit 2 ;;
esac
if [[ $STATE =~ [^A-Za-z0-9/._-] ]]; then
    echo "SMTP_TEST_STATE=$STATE contains characters other than letters, digits and /._-:" \
        "choose a plainer path" >&2
    exit 2
fi

TLS_DIR=$STATE/tls
CA_FILE=$TLS_DIR/ca.pem
SERVER_CERT=$TLS_DIR/server.pem
SERVER_KEY=$TLS_DIR/server.key

# Takes an exclusive lock on $STATE/NAME.lock on file descriptor 9 for the rest of the script,
# so concurrent starts and stops of one server run one after another.
lock_state() {
    local name=$1
    mkdir -p "$STATE"
    exec 9>"$STATE/$name.lock"
    if ! flock -w 300 9; then
        echo "timed out after 300 s waiting for $STATE/$name.lock" >&2
        exit 1
    fi
}

# Prints N free TCP ports on 127.0.0.1, chosen by the kernel. Another process may take a port
# before the server binds it, and then the start fails with the port named in the server's log.
free_ports() {
    python3 - "$1" <<'PY'
import socket
import sys

sockets = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print(" ".join(str(s.getsockname()[1]) for s in sockets))
PY
}

# Creates the test CA and a server certificate for localhost and 127.0.0.1 signed by it, unless
# both exist already. The lock on $STATE/tls.lock keeps two servers' starts from racing here.
ensure_certificates() {
    mkdir -p "$TLS_DIR"
    exec 8>"$STATE/tls.lock"
    flock -w 300 8
    if [[ -s $CA_FILE && -s $SERVER_CERT && -s $SERVER_KEY ]]; then
        exec 8>&-
        return
    fi

    local work
    work=$(mktemp -d "$TLS_DIR/new.XXXXXX")
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
        -subj "/CN=smtp-proto test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$work/ca.key" -out "$work/ca.pem" 2>"$work/openssl.log"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$work/server.key" -out "$work/server.csr" 2>>"$work/openssl.log"
    cat >"$work/server.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -days 3650 -sha256 -extfile "$work/server.ext" \
        -out "$work/server.pem" 2>>"$work/openssl.log"
    chmod 600 "$work/ca.key" "$work/server.key"
    mv "$work/ca.key" "$TLS_DIR/ca.key"
    mv "$work/server.key" "$SERVER_KEY"
    mv "$work/server.pem" "$SERVER_CERT"
    mv "$work/ca.pem" "$CA_FILE"
    rm -rf "$work"
    exec 8>&-
}

# Waits until every given port on 127.0.0.1 accepts a TCP connection, for at most 30 s.
wait_for_ports() {
    local port deadline=$((SECONDS + 30))
    for port in "$@"; do
        until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                echo "port 127.0.0.1:$port accepts no connection after 30 s" >&2
                return 1
            fi
            sleep 0.1
        done
    done
}

# Writes the given KEY=value lines to FILE atomically.
write_env() {
    local file=$1
    shift
    printf '%s\n' "$@" >"$file.tmp"
    mv "$file.tmp" "$file"
}

# Prints the KEY=value lines of a running server from its env FILE.
print_env() {
    local file=$1
    if [[ ! -s $file ]]; then
        echo "$file not found: the server does not run, so run '$0 start'" >&2
        exit 1
    fi
    cat "$file"
}

# Runs the subcommand $1 of the sourcing script, which defines install_dependencies, start, stop,
# is_running and ENV_FILE.
run_subcommand() {
    case ${1:-} in
        install) install_dependencies ;;
        start) start ;;
        stop) stop ;;
        status) is_running ;;
        env) print_env "$ENV_FILE" ;;
        *)
            echo "usage: $0 install|start|stop|status|env" >&2
            exit 2
            ;;
    esac
}
