#!/usr/bin/env bash
# Installs the SMTP clients that tests/tests/real_clients.rs runs against the embedded server.
#
# Usage: clients.sh install|versions
#
#   install   installs Debian's swaks (with Net::SSLeay for its TLS), curl and msmtp as root,
#             unless every one of them is there already; python3's smtplib needs nothing.
#   versions  prints the version line of each client.
set -euo pipefail

PACKAGES=(swaks libnet-ssleay-perl curl msmtp)

installed() {
    command -v swaks >/dev/null && command -v curl >/dev/null && command -v msmtp >/dev/null &&
        perl -MNet::SSLeay -e 1 2>/dev/null
}

install() {
    if installed; then
        return
    fi
    if [[ $EUID -ne 0 ]]; then
        echo "installing ${PACKAGES[*]} needs root: run '$0 install' as root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends "${PACKAGES[@]}" >&2
}

versions() {
    swaks --version | head -n 1
    curl --version | head -n 1
    msmtp --version | head -n 1
    python3 --version
}

case ${1:-} in
    install) install ;;
    versions) versions ;;
    *)
        echo "usage: $0 install|versions" >&2
        exit 2
        ;;
esac
