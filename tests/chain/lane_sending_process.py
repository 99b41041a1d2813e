"""One sending process for the shared-lane tests: `count` simple transactions (zero-value
transfers to itself, 21 000 gas) from one key, on `threads` threads, through the shared
nonce lane in NATS KV and the executor's `LaneSender` — the path the executor sends by.

Prints `accepted <nonce> <hash>` per transaction the node accepted, flushed at once.
Run: python -m tests.chain.lane_sending_process RPC NATS KEY_FILE COUNT THREADS LEASE_S
"""

from __future__ import annotations

import sys
import threading

from executor.chain import ChainClient
from executor.keys import load_key_file
from executor.lane_sender import LaneSender, SendStatus
from executor.lane_setup import lane_owner
from executor.nats_link import NatsLink
from executor.shared_lane import SharedLane, lane_key
from executor.transaction import UnsignedTransaction

BUCKET = "arena-nonce-lanes"
GWEI = 10**9


def main(argv: list[str]) -> int:
    rpc, nats_url, key_file, count, threads, lease_s = argv
    key = load_key_file(key_file)
    chain = ChainClient(rpc)
    chain_id = chain.chain_id()
    lane = SharedLane.open(
        NatsLink.connect(nats_url),
        BUCKET,
        lane_key(chain_id, key.address),
        lambda: chain.nonce(key.address, "pending"),
        owner=lane_owner(),
        lease_s=float(lease_s),
    )
    template = UnsignedTransaction(
        chain_id=chain_id,
        nonce=0,
        max_priority_fee_per_gas=GWEI,
        max_fee_per_gas=100 * GWEI,
        gas=21_000,
        to=key.address,
    )
    left = [int(count)]
    lock = threading.Lock()
    print_lock = threading.Lock()

    def work() -> None:
        sender = LaneSender(ChainClient(rpc), key, lane)
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            result = sender.send(template)
            if result.status is SendStatus.ACCEPTED and result.signed is not None:
                with print_lock:
                    print(
                        f"accepted {result.signed.transaction.nonce} {result.tx_hash}", flush=True
                    )
            else:
                with print_lock:
                    print(f"failed {result.kind} {result.reason}", flush=True)

    workers = [threading.Thread(target=work) for _ in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    lane.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
