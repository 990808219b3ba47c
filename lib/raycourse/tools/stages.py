"""Run the test suite's stages in order and print each one's wall time at the end (``make test`` uses it).

    raycourse-stages unit solutions browser cluster after

Each stage is ``make <stage>``. A failing stage is reported and the stages after it still run (their
results are worth having), except ``after``, which only makes sense when the notebook stages ran.
The exit code is 1 if any stage failed. Times go to ``build/test/stages.json`` too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(stages: list[str], make: str = "make", out: Path = Path("build/test")) -> int:
    results: list[tuple[str, float, int]] = []
    started = time.monotonic()
    for stage in stages:
        if stage == "after" and any(code for _, _, code in results):
            results.append((stage, 0.0, -1))
            continue
        print(f"\n=== stage {stage} ===", flush=True)
        begin = time.monotonic()
        code = subprocess.call([make, "--no-print-directory", stage])
        results.append((stage, time.monotonic() - begin, code))
    total = time.monotonic() - started
    print("\n=== stage times ===")
    for stage, seconds, code in results:
        state = {0: "ok", -1: "not run"}.get(code, "FAILED")
        print(f"  {stage:<12} {seconds / 60:6.1f} min  {state}")
    print(f"  {'total':<12} {total / 60:6.1f} min")
    out.mkdir(parents=True, exist_ok=True)
    (out / "stages.json").write_text(json.dumps([{"stage": s, "seconds": round(t, 1), "exit": c} for s, t, c in results]
                                                + [{"stage": "total", "seconds": round(total, 1)}], indent=1))
    return 1 if any(code for _, _, code in results) else 0


def main(argv: list[str] | None = None) -> int:
    stages = list(sys.argv[1:] if argv is None else argv)
    if not stages:
        print("usage: raycourse-stages STAGE [STAGE ...]   (each is a make target)", file=sys.stderr)
        return 2
    return run(stages, os.environ.get("MAKE", "make"), Path(os.environ.get("RAYCOURSE_TEST_OUT", "build/test")))


if __name__ == "__main__":
    sys.exit(main())
