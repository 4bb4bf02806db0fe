#!/usr/bin/env bash
# Runs a private Postfix instance on loopback for the interoperability tests.
#
# Usage: postfix.sh install|start|stop|status|env
#
#   install installs Debian's Postfix, Cyrus SASL and OpenSSL packages (as root), unless the
#           programs and the CRAM-MD5 module that packages_installed checks are all present.
#   start   runs `install` if a program is missing, writes the instance's files under
#           $STATE/postfix and starts it, unless it already runs; then prints `env`.
#   stop    stops this instance only.
#   status  exits 0 when this instance runs.
#   env     prints the KEY=value lines that describe the running instance.
#
# STATE is ${SMTP_TEST_STATE:-/tmp/smtp-proto-test}. The instance has its own config, queue and
# data directories and listens only on four ports on 127.0.0.1 picked at start (a fifth free port,
# the relay port, is picked for the server that relayed mail goes to):
#
#   submission     STARTTLS offered; AUTH (PLAIN, LOGIN, CRAM-MD5, ...) offered only after TLS
#   plain          neither STARTTLS nor AUTH
#   smtps          implicit TLS, AUTH
#   short-timeout  STARTTLS offered, no AUTH; smtpd_timeout of SHORT_TIMEOUT seconds, so a
#                  connection idle for longer gets 421 and is closed
#
# A running instance started before this script last changed is restarted with the new
# configuration.
#
# Each recipient in example.test goes to the Maildir $STATE/postfix/Maildir, except
# reject@example.test (550 at RCPT), tempfail@example.test (450 at RCPT) and closing@example.test
# (421 at RCPT, then Postfix closes the connection). Mail for relay.example.test is relayed over
# SMTP, with STARTTLS when offered, to 127.0.0.1 on the relay port, where a test runs the server
# that receives it; Postfix retries a deferred message within a few seconds. Nothing else is
# relayed and nothing is looked up in DNS. Postfix prepends Return-Path, X-Original-To, Delivered-To and
# Received and leaves the rest of the message as received, with lines ending in LF on disk.
# The log is $STATE/postfix/log/maillog.
set -euo pipefail
# The postfix and nobody users read and write files created here.
umask 022

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DIR=$STATE/postfix
CONFIG_DIR=$DIR/etc
QUEUE_DIR=$DIR/queue
DATA_DIR=$DIR/data
MAILDIR=$DIR/Maildir
LOG_FILE=$DIR/log/maillog
ENV_FILE=$DIR/env

DOMAIN=example.test
RELAY_DOMAIN=relay.example.test
SASL_USER=alice
SASL_LOGIN=$SASL_USER@$DOMAIN
SASL_PASSWORD=wonderland-7
MESSAGE_SIZE_LIMIT=10485760
SHORT_TIMEOUT=2
SCRIPT=${BASH_SOURCE[0]}

start() {
    lock_state postfix
    if is_running && [[ -s $ENV_FILE && $ENV_FILE -nt $SCRIPT ]]; then
        print_env "$ENV_FILE"
        return
    fi
    if [[ $EUID -ne 0 ]]; then
        echo "postfix.sh start needs root: Postfix's master runs as root and drops privileges" >&2
        exit 1
    fi

    if ! packages_installed; then
        install_dependencies
    fi
    ensure_certificates
    if is_running; then
        # Running without an env file, or configured by an older script: start afresh.
        postfix -c "$CONFIG_DIR" stop >&2
    fi

    local ports
    read -r -a ports <<<"$(free_ports 5)"
    write_config "${ports[@]}"
    write_sasl
    prepare_directories

    if ! postfix -c "$CONFIG_DIR" start >&2; then
        echo "postfix failed to start; see $LOG_FILE" >&2
        exit 1
    fi
    if ! wait_for_ports "${ports[@]:0:4}"; then
        echo "postfix started but does not listen; see $LOG_FILE" >&2
        exit 1
    fi

    write_env "$ENV_FILE" \
        "SMTP_POSTFIX_SUBMISSION_PORT=${ports[0]}" \
        "SMTP_POSTFIX_PLAIN_PORT=${ports[1]}" \
        "SMTP_POSTFIX_SMTPS_PORT=${ports[2]}" \
        "SMTP_POSTFIX_SHORT_TIMEOUT_PORT=${ports[3]}" \
        "SMTP_POSTFIX_SHORT_TIMEOUT_SECONDS=$SHORT_TIMEOUT" \
        "SMTP_POSTFIX_RELAY_PORT=${ports[4]}" \
        "SMTP_POSTFIX_RELAY_DOMAIN=$RELAY_DOMAIN" \
        "SMTP_POSTFIX_CA_FILE=$CA_FILE" \
        "SMTP_POSTFIX_USER=$SASL_LOGIN" \
        "SMTP_POSTFIX_PASSWORD=$SASL_PASSWORD" \
        "SMTP_POSTFIX_MAILDIR=$MAILDIR" \
        "SMTP_POSTFIX_DOMAIN=$DOMAIN" \
        "SMTP_POSTFIX_LOG=$LOG_FILE"
    print_env "$ENV_FILE"
}

stop() {
    lock_state postfix
    if is_running; then
        postfix -c "$CONFIG_DIR" stop >&2
    fi
    rm -f "$ENV_FILE"
}

is_running() {
    [[ -s $CONFIG_DIR/main.cf ]] && command -v postfix >/dev/null &&
        postfix -c "$CONFIG_DIR" status 2>/dev/null
}

packages_installed() {
    command -v postfix >/dev/null && command -v saslpasswd2 >/dev/null &&
        command -v openssl >/dev/null && compgen -G '/usr/lib/*/sasl2/libcrammd5.so' >/dev/null
}

# Installs Debian's packages. Installing Postfix with the "No configuration" choice leaves
# /etc/postfix without main.cf, so no system instance starts. A system instance found running
# afterwards was started by this install and is stopped.
install_dependencies() {
    # When every program is present, apt-get does not run at all, not even `apt-get update`.
    if packages_installed; then
        return
    fi
    if [[ $EUID -ne 0 ]]; then
        echo "installing Postfix needs root: run '$0 install' as root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update >&2
    apt-get install -y --no-install-recommends postfix sasl2-bin libsasl2-modules openssl >&2
    if [[ -s /etc/postfix/main.cf ]] && postfix -c /etc/postfix status 2>/dev/null; then
        postfix -c /etc/postfix stop >&2
    fi
}

write_config() {
    local submission_port=$1 plain_port=$2 smtps_port=$3 short_timeout_port=$4 relay_port=$5
    local nobody_uid nobody_gid
    nobody_uid=$(id -u nobody)
    nobody_gid=$(id -g nobody)

    mkdir -p "$CONFIG_DIR/sasl"
    cat >"$CONFIG_DIR/main.cf" <<EOF
# Private test instance written by postfix.sh, which rewrites it on each start.
compatibility_level = 3.6
config_directory = $CONFIG_DIR
queue_directory = $QUEUE_DIR
data_directory = $DATA_DIR
maillog_file = $LOG_FILE
maillog_file_prefixes = $DIR/log
syslog_name = postfix-test

myhostname = mx.$DOMAIN
mydomain = $DOMAIN
myorigin = \$myhostname
mydestination =
mynetworks = 127.0.0.1/32
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =

# No DNS: the client's name is not looked up and nothing is sent anywhere.
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
default_transport = error:this test instance relays nothing
relay_transport = error:this test instance relays nothing
local_transport = error:this test instance delivers nothing locally

# Only $RELAY_DOMAIN is relayed, to the test's server on the relay port. A message deferred
# because that server was not up yet is retried within about a second.
relay_domains = $RELAY_DOMAIN
transport_maps = texthash:$CONFIG_DIR/transport
smtp_tls_security_level = may
smtp_tls_loglevel = 1
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s

# Every recipient in $DOMAIN goes to one Maildir, delivered as nobody.
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $DIR
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:$nobody_uid
virtual_gid_maps = static:$nobody_gid
virtual_mailbox_limit = 0
message_size_limit = $MESSAGE_SIZE_LIMIT

# Messages stay as the client sent them: no header added or rewritten, no address mapping.
local_header_rewrite_clients =
remote_header_rewrite_domain =
always_add_missing_headers = no
receive_override_options = no_address_mappings, no_header_body_checks, no_milters
smtputf8_enable = yes

smtpd_banner = \$myhostname ESMTP test instance
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:$CONFIG_DIR/recipient_access
smtpd_tls_cert_file = $SERVER_CERT
smtpd_tls_key_file = $SERVER_KEY
smtpd_tls_loglevel = 1
smtpd_sasl_path = smtpd
smtpd_sasl_local_domain = $DOMAIN
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_tls_auth_only = yes
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = no
EOF

    cat >"$CONFIG_DIR/transport" <<EOF
$RELAY_DOMAIN smtp:[127.0.0.1]:$relay_port
EOF

    cat >"$CONFIG_DIR/recipient_access" <<EOF
reject@$DOMAIN 550 5.1.1 <reject@$DOMAIN>: recipient rejected by the test instance
tempfail@$DOMAIN 450 4.2.0 <tempfail@$DOMAIN>: recipient deferred by the test instance
closing@$DOMAIN 421 4.3.2 <closing@$DOMAIN>: the test instance closes the connection
EOF

    # The four listeners, then Postfix's own services, none of them chrooted.
    cat >"$CONFIG_DIR/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$submission_port inet n - n - - smtpd
  -o syslog_name=postfix-test/submission
  -o smtpd_tls_security_level=may
  -o smtpd_sasl_auth_enable=yes
127.0.0.1:$plain_port inet n - n - - smtpd
  -o syslog_name=postfix-test/plain
127.0.0.1:$smtps_port inet n - n - - smtpd
  -o syslog_name=postfix-test/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
127.0.0.1:$short_timeout_port inet n - n - - smtpd
  -o syslog_name=postfix-test/short-timeout
  -o smtpd_tls_security_level=may
  -o smtpd_timeout=${SHORT_TIMEOUT}s
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
smtp unix - - n - - smtp
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
EOF
}

# Writes the Cyrus SASL application config and a sasldb with the test user. Debian's Postfix
# reads the config from \$config_directory/sasl/smtpd.conf.
write_sasl() {
    local sasldb=$CONFIG_DIR/sasl/sasldb2
    cat >"$CONFIG_DIR/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $sasldb
mech_list: PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256
EOF
    rm -f "$sasldb"
    printf '%s' "$SASL_PASSWORD" | saslpasswd2 -p -c -f "$sasldb" -u "$DOMAIN" "$SASL_USER"
    chown root:postfix "$sasldb"
    chmod 640 "$sasldb"
}

prepare_directories() {
    # The postfix and nobody users must reach their folders below $STATE, which mktemp -d
    # creates with mode 700.
    chmod 755 "$STATE" "$DIR"
    mkdir -p "$QUEUE_DIR" "$DATA_DIR" "$MAILDIR" "$(dirname "$LOG_FILE")"
    chown root:root "$QUEUE_DIR"
    chown postfix:postfix "$DATA_DIR"
    chown nobody:"$(id -gn nobody)" "$MAILDIR"
    chmod 700 "$MAILDIR"
}

run_subcommand "$@"
