#!/usr/bin/env bash
# Set-up shared by scripts/run.sh and scripts/test.sh: checks the Rust toolchain, installs the
# system packages llama-cpp-2 needs (apt, when root and missing), builds parlor and fetches the
# default model and the sentence-embedding model through `parlor model pull`.
#
# Sourced by the other scripts (functions only). Run directly, it does the whole set-up for a
# debug build: `bash scripts/setup.sh`.
#
# Exit codes follow parlor's: 2 when something is missing that this script cannot install.

PARLOR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PARLOR_DEFAULT_MODEL="smollm2-135m"
PARLOR_DEFAULT_MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
# Sentence embeddings for semantic FAQ search (grounded support); from PyPI, verified by parlor.
PARLOR_EMBEDDING_MODEL="mpnet-base"
PARLOR_EMBEDDING_MODEL_FILE="all-mpnet-base-v2.zip"
# The smaller one, which the tests also run (its similarities are published to check against).
PARLOR_SMALL_EMBEDDING_MODEL="minilm-l6"
PARLOR_SMALL_EMBEDDING_MODEL_FILE="all-MiniLM-L6-v2.zip"

# Prefixed so the output of the set-up stands apart from cargo's.
say() { printf '[setup] %s\n' "$*"; }
die() {
    printf '[setup] error: %s\n' "$*" >&2
    exit 2
}

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Debian packages llama-cpp-2's build needs: cmake, libclang for bindgen and clang's builtin
# headers (without them: `'stdbool.h' file not found`), a C++ compiler; tmux for the TUI tests.
# Debian 12 ships clang 14; elsewhere the unversioned libclang-dev carries the same.
missing_packages() {
    local missing=()
    local pkg
    for pkg in cmake g++ make tmux; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if ! { is_installed libclang1-14 && is_installed libclang-common-14-dev; } &&
        ! is_installed libclang-dev; then
        missing+=(libclang1-14 libclang-common-14-dev)
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        # `parlor model pull` fetches the default model from PyPI through pip.
        missing+=(python3-pip)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        printf '%s\n' "${missing[@]}"
    fi
}

install_system_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian-like system: make sure cmake, a C++ compiler, libclang (with clang's"
        say "builtin headers), tmux and python3 with pip are installed"
        return 0
    fi
    local missing
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        say "system packages: all present"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        printf '[setup] missing system packages: %s\n' "${missing[*]}" >&2
        printf '[setup] install them, then run this again:\n' >&2
        printf '    sudo apt-get update && sudo apt-get install -y %s\n' "${missing[*]}" >&2
        exit 2
    fi
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    # Debian releases other than 12 have another clang version: fall back to libclang-dev.
    if printf '%s\n' "${missing[@]}" | grep -qx libclang1-14 &&
        ! apt-cache show libclang1-14 >/dev/null 2>&1; then
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -v '^libclang')
        missing+=(libclang-dev)
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        die "apt-get install ${missing[*]} failed"
}

check_rust() {
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found: install Rust 1.95 or newer (https://rustup.rs), then run this again"
    local comp
    for comp in rustfmt clippy; do
        if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
            if command -v rustup >/dev/null 2>&1; then
                say "adding the rust component $comp"
                rustup component add "$comp" || die "could not add the rust component $comp"
            else
                die "cargo $comp is missing: install the $comp component of your Rust toolchain"
            fi
        fi
    done
}

# check_disk PROFILE: refuse to start a build that cannot fit. A first debug build with the
# test binaries takes about 4.2 GiB in target/ (mostly debug info of the Rust crates), a release
# build about 2; a full disk otherwise shows up minutes later as a linker or test failure that does
# not say why.
check_disk() {
    local profile="$1" need_gib have_kib
    if [ -x "$PARLOR_ROOT/target/$profile/parlor" ]; then
        need_gib=2 # rebuilds and test binaries only
    elif [ "$profile" = release ]; then
        need_gib=3
    else
        need_gib=5
    fi
    have_kib=$(df -Pk "$PARLOR_ROOT" 2>/dev/null | awk 'NR == 2 { print $4 }')
    [ -n "$have_kib" ] || return 0
    if [ "$have_kib" -lt $((need_gib * 1024 * 1024)) ]; then
        die "only $((have_kib / 1024)) MiB free on the disk of $PARLOR_ROOT; the $profile build needs about $need_gib GiB (free some space, e.g. old target/ directories, and run again)"
    fi
}

# build PROFILE [CARGO_ARGS...]: `debug` or `release`, with extra arguments for cargo build.
build() {
    local profile="$1"
    shift
    check_disk "$profile"
    say "building parlor ($profile${*:+ $*})"
    if [ "$profile" = release ]; then
        (cd "$PARLOR_ROOT" && cargo build --release "$@") || die "cargo build --release failed"
    else
        (cd "$PARLOR_ROOT" && cargo build "$@") || die "cargo build failed"
    fi
}

# fetch_default_model BINARY HOME: the default model into HOME/storage/models/, through parlor
# itself (it verifies size and sha256). A present file is left alone here; `parlor model verify`
# re-hashes it on demand.
fetch_default_model() {
    local bin="$1" home="$2"
    if [ -f "$home/storage/models/$PARLOR_DEFAULT_MODEL_FILE" ]; then
        say "model $PARLOR_DEFAULT_MODEL: present in $home/storage/models/"
    else
        say "fetching the default model ($PARLOR_DEFAULT_MODEL, about 98 MB)"
        "$bin" --home "$home" model pull "$PARLOR_DEFAULT_MODEL" ||
            die "could not fetch the default model; see the messages above"
    fi
    fetch_embedding_model "$bin" "$home"
}

# fetch_embedding_model BINARY HOME [NAME FILE SIZE]: the sentence-embedding model of semantic
# FAQ search (without it parlor falls back to word matching, with a notice).
fetch_embedding_model() {
    local bin="$1" home="$2"
    local name="${3:-$PARLOR_EMBEDDING_MODEL}" file="${4:-$PARLOR_EMBEDDING_MODEL_FILE}"
    local size="${5:-about 404 MB in five PyPI packages}"
    if [ -f "$home/storage/models/$file" ]; then
        say "model $name: present in $home/storage/models/"
        return 0
    fi
    say "fetching the embedding model ($name, $size)"
    "$bin" --home "$home" model pull "$name" ||
        die "could not fetch the embedding model; see the messages above"
}

setup_main() {
    set -euo pipefail
    check_rust
    install_system_packages
    build debug
    fetch_default_model "$PARLOR_ROOT/target/debug/parlor" "$PARLOR_ROOT"
    say "done"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    setup_main "$@"
fi
