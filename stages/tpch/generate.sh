#!/usr/bin/env bash
# Generate the eight TPC-H tables as Parquet (one file per table) for one scale factor.
#
#   bash stages/tpch/generate.sh SCALE_FACTOR OUTPUT_DIR
#
# tpchgen-cli writes into a temporary sibling directory; only when all eight tables exist and are
# non-empty is that directory renamed to OUTPUT_DIR, so OUTPUT_DIR is either complete or absent.
# An existing OUTPUT_DIR is refused: the runner never reuses a work directory, so one that exists
# is a leftover that must not be mistaken for fresh data.
#
# Exit codes: 0 done; 1 failure (tpchgen-cli missing or failed, a table missing, OUTPUT_DIR
# exists); 2 usage.
set -euo pipefail

readonly TABLES=(customer lineitem nation orders part partsupp region supplier)

usage() {
    echo "usage: bash stages/tpch/generate.sh SCALE_FACTOR OUTPUT_DIR   (e.g. 1 /data/tpch/sf1)" >&2
    exit 2
}

fail() {
    echo "generate.sh: error: $*" >&2
    exit 1
}

[[ $# -eq 2 ]] || usage
sf=$1
out=${2%/}
[[ $sf =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "generate.sh: SCALE_FACTOR must be a number, got '$sf'" >&2; usage; }
[[ -n $out ]] || usage

command -v tpchgen-cli >/dev/null 2>&1 \
    || fail "tpchgen-cli is not on PATH ($PATH). Install the project's tpch extra into the venv that runs the stages: pip install -e '.[tpch]'"

[[ ! -e $out ]] \
    || fail "output directory $out already exists; refusing to overwrite or reuse it. Delete it if it is a leftover, or pass a fresh OUTPUT_DIR."

parent=$(dirname -- "$out")
mkdir -p -- "$parent"
staging=$(mktemp -d "$parent/.$(basename -- "$out").partial.XXXXXX")
chmod "$(umask -S)" "$staging"  # mktemp makes it 0700; give the data dir the usual mode
cleanup() { rm -rf -- "$staging"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "generate.sh: $(tpchgen-cli --version), scale factor $sf, into $staging"
started=$SECONDS
tpchgen-cli parquet --scale-factor "$sf" --output-dir "$staging" \
    || fail "tpchgen-cli failed for scale factor $sf (output above); nothing was written to $out"

missing=()
for table in "${TABLES[@]}"; do
    [[ -s $staging/$table.parquet ]] || missing+=("$staging/$table.parquet")
done
((${#missing[@]} == 0)) \
    || fail "tpchgen-cli finished but these tables are missing or empty: ${missing[*]}; nothing was written to $out"

# rename(2) within one directory: OUTPUT_DIR appears complete or not at all.
mv -T -- "$staging" "$out"
du -h -- "$out"/*.parquet
echo "generate.sh: scale factor $sf written to $out in $((SECONDS - started)) s"
