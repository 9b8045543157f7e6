"""Run ``dictlab ARGS`` and SIGKILL the process at a chosen point (a real kill, at a deterministic place).

python kill_helper.py log STEP ARGS...      die right after the training log line of step >= STEP
python kill_helper.py manifest N ARGS...    die just before the N-th store manifest write (shards on disk)
"""

import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    point, at, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if point == "log":
        from dictlab.training import trainer

        original = trainer.Trainer._log

        def log_then_die(self: trainer.Trainer) -> None:
            original(self)
            if self.step >= at:
                _die()

        trainer.Trainer._log = log_then_die  # type: ignore[method-assign]
    elif point == "manifest":
        from dictlab.data.store import writer

        calls = {"n": 0}
        original_write = writer.write_manifest

        def write_or_die(*a: object, **k: object) -> None:
            calls["n"] += 1
            if calls["n"] >= at:
                _die()
            original_write(*a, **k)  # type: ignore[arg-type]

        writer.write_manifest = write_or_die  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown kill point {point!r}")
    from dictlab.cli.main import main as dictlab_main

    sys.argv = ["dictlab", *args]
    dictlab_main()


if __name__ == "__main__":
    main()
