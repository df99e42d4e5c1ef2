"""Attack queries/s against the victim's raw jitted forward throughput, in one run.

  python scripts/bench_attack.py --model resnet20 --images 4 --max-gens 4 --out docs/results/bench_attack_cpu.jsonl

Same as `deattack bench`; prints one JSON object and appends it to --out.
"""

from __future__ import annotations

import sys

from deattack.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:], "--json"]))
