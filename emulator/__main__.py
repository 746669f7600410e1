"""``python -m emulator [--port 9100] [--latency 30 --sigma 0.5 --time-scale 10 ...]``."""

from __future__ import annotations

import argparse

from emulator.app import serve
from emulator.core import Knobs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency", type=float, default=2.0, help="median seconds per job")
    parser.add_argument("--sigma", type=float, default=0.0, help="log-normal spread")
    parser.add_argument("--queue", type=float, default=0.0, help="seconds queued first")
    parser.add_argument("--time-scale", type=float, default=1.0, help="vendor s per real s")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    knobs = Knobs(
        latency_s=args.latency,
        latency_sigma=args.sigma,
        queue_s=args.queue,
        time_scale=args.time_scale,
        fail_rate=args.fail_rate,
        seed=args.seed,
    )
    print(f"vendor emulator on http://{args.host}:{args.port}/{{vendor}}", flush=True)
    serve(args.host, args.port, knobs)


if __name__ == "__main__":
    main()
