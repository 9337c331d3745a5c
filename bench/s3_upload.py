"""Verified S3 upload throughput: S3Store.put_file against plain boto3 `upload_file`, side by side.

Both upload the same file (multipart) to the same moto S3 server on 127.0.0.1 (started here, in a
process of its own), alternating, several times; prints the best and median throughput of each and
the ratio S3Store throughput / boto3 throughput (goal ≥ 0.9). The S3Store's figure includes everything a
verified upload does: hashing, the multipart upload with SHA-256 part checksums, and the read-back.
Usage: python bench/s3_upload.py [--mib 128] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from campaign.store.s3 import S3Store

GOAL = 0.9
BUCKET = "bench-upload"
MOTO = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("%s:%d" % server.get_host_and_port(), flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
"""


def start_moto() -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-c", MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    address = server.stdout.readline().strip()
    if not address.startswith("127.0.0.1:"):
        sys.exit(f"moto did not start (it printed {address!r})")
    return server, f"http://{address}"


def sandbox_environment(endpoint: str) -> None:
    """Fake credentials and the local endpoint only: nothing here may reach AWS."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )


def write_random_file(path: Path, mib: int) -> None:
    with open(path, "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1024 * 1024))


def seconds(upload, cpu: list[float]) -> float:
    """Wall seconds of upload(); appends to cpu the CPU seconds this process (every thread) spent on it."""
    began, began_cpu = time.perf_counter(), time.process_time()
    upload()
    cpu.append(time.process_time() - began_cpu)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server, endpoint = start_moto()
    try:
        sandbox_environment(endpoint)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        store = S3Store(BUCKET, "verified")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "payload.bin"
            write_random_file(path, args.mib)
            store_s, boto_s, store_cpu, boto_cpu = [], [], [], []
            for index in range(args.repeat):
                key = f"r{index}.bin"
                pair = [
                    (store_s, store_cpu, lambda key=key: store.put_file(path, key)),
                    (boto_s, boto_cpu, lambda key=key: client.upload_file(str(path), BUCKET, f"plain/{key}")),
                ]
                for samples, cpu, upload in pair if index % 2 == 0 else reversed(pair):  # alternate who goes first
                    samples.append(seconds(upload, cpu))
                client.delete_object(Bucket=BUCKET, Key=f"verified/{key}")
                client.delete_object(Bucket=BUCKET, Key=f"plain/{key}")
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    print(f"{args.mib} MiB file, {args.repeat} uploads each, interleaved, on moto at {endpoint}:")
    for label, samples in (("S3Store.put_file (verified)", store_s), ("boto3 upload_file (plain)  ", boto_s)):
        print(
            f"  {label}: best {args.mib / min(samples):6.1f} MiB/s, median {args.mib / statistics.median(samples):6.1f}"
            f" MiB/s  ({', '.join(f'{s:.2f}' for s in samples)} s)"
        )
    # The best of several interleaved runs is the one least disturbed by whatever else uses the machine.
    print(
        f"  ratio verified / plain: {min(boto_s) / min(store_s):.2f} on the best runs, "
        f"{statistics.median(boto_s) / statistics.median(store_s):.2f} on the medians  (goal ≥ {GOAL})"
    )
    # On a busy machine wall times swing; the client's own CPU per upload is what the two ways differ in.
    print(
        f"  client CPU per upload (median): verified {statistics.median(store_cpu):.2f} s, plain "
        f"{statistics.median(boto_cpu):.2f} s; ratio plain / verified {statistics.median(boto_cpu) / statistics.median(store_cpu):.2f}"
    )


if __name__ == "__main__":
    main()
