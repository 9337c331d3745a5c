#!/usr/bin/env bash
# Build the campaign's targets once, off the paid machine, and store them as prebuilt tarballs under
# s3://$BUCKET/$PREFIX/prebuilt/<commit>/<arch>/ (issue 5). Run from the repository root, with AWS credentials
# in the environment (in GitHub Actions: .github/workflows/prebuild.yml, through OIDC).
#
# Environment:
#   BUCKET          required: the store's S3 bucket (the one `campaign run --target aws` uses)
#   PREFIX          the store's key prefix; default "campaign", the AWS target's default `prefix`
#   CAMPAIGN_FILE   the campaign file; default: campaign's own default (campaign.yaml)
#   PYTHON          the interpreter to install campaign into; default "python"
# Extra arguments are passed on to `campaign prebuild`.
set -euo pipefail

fail() {
    echo "prebuild: $*" >&2
    exit 2
}

if [[ -z "${BUCKET:-}" ]]; then
    fail "BUCKET is not set: export BUCKET=<the store's S3 bucket> (in GitHub Actions: the repository" \
        "variable CAMPAIGN_PREBUILD_BUCKET, see ci/README.md)"
fi
prefix="${PREFIX:-campaign}"
prefix="${prefix#/}"
prefix="${prefix%/}"
[[ -n "$prefix" ]] || fail "PREFIX is empty: set it to the store's key prefix, or unset it for \"campaign\""
[[ "$BUCKET" != */* ]] || fail "BUCKET must be a bucket name, not a path: $BUCKET (put the path in PREFIX)"

python="${PYTHON:-python}"
command -v "$python" >/dev/null || fail "$python is not on PATH: set PYTHON to a Python >= 3.11"

echo "prebuild: installing campaign with $python"
"$python" -m pip install --quiet --upgrade pip
"$python" -m pip install --quiet .

# --in-place: build in this checkout, where the workflow restored the cargo cache (target/), instead of a
# fresh clone that would compile from scratch; campaign refuses it unless git says the checkout is clean.
args=(prebuild --in-place --store "s3://$BUCKET/$prefix")
if [[ -n "${CAMPAIGN_FILE:-}" ]]; then
    args+=(-f "$CAMPAIGN_FILE")
fi
echo "prebuild: campaign ${args[*]} $*"
exec campaign "${args[@]}" "$@"
