"""A short tour of mvc on generated model files: `python -m modelvc.walkthrough [DIR]`.

It makes three versions of a small transformer-like safetensors model and runs the commands
an ML engineer would, printing each command and its output as a shell session would show it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from modelvc.samples import ModelShape, init_weights, nudge, retrain, write_safetensors

SHAPE = ModelShape(vocab=2048, d_model=256, layers=4, d_ff=704)


def run(directory: Path, *args: str) -> str:
    print(f"$ mvc {shlex.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "modelvc", *args], cwd=directory,
                            capture_output=True, text=True)
    output = (result.stdout + result.stderr).rstrip()
    if output:
        print(output)
    print(flush=True)
    if result.returncode != 0:
        raise SystemExit(f"walkthrough failed: 'mvc {shlex.join(args)}' exited {result.returncode}")
    return result.stdout


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    directory = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="mvc-walkthrough-"))
    directory.mkdir(parents=True, exist_ok=True)
    print(f"# working in {directory}\n")
    model, config = directory / "model.safetensors", directory / "config.json"
    v1 = init_weights(SHAPE, seed=1)
    layer3 = [n for n in v1 if n.startswith("model.layers.3.")]
    versions = [("epoch 1", v1, {"val_loss": 2.41}),
                ("epoch 2: fine-tuned the last layer", nudge(v1, layer3, 1e-3, seed=2), {"val_loss": 2.07}),
                ("epoch 3: new lm_head", retrain(nudge(v1, layer3, 1e-3, seed=2), ["lm_head.weight"], seed=3),
                 {"val_loss": 1.92})]
    run(directory, "init")
    run(directory, "config", "user.name", "Walkthrough")  # who commits: else git's identity, else refused
    run(directory, "config", "user.email", "walkthrough@example.com")
    for number, (message, weights, metrics) in enumerate(versions, start=1):
        size = write_safetensors(model, weights, "bf16", {"epoch": str(number)})
        config.write_text(json.dumps({"d_model": SHAPE.d_model, "layers": SHAPE.layers, "epoch": number}) + "\n")
        print(f"# wrote model.safetensors ({size / 1e6:.1f} MB) and config.json for {message}\n")
        if number == 1:
            run(directory, "status")
        run(directory, "add", "model.safetensors", "config.json")
        run(directory, "commit", "-m", message, "--metric", f"val_loss={metrics['val_loss']}",
            "--param", "lr=3e-4")
        if number == 1:
            run(directory, "tag", "v1")
    run(directory, "log", "--oneline")
    run(directory, "diff", "v1", "HEAD", "--stats")
    run(directory, "checkout", "v1")
    run(directory, "checkout", "main")
    run(directory, "rollback")
    run(directory, "log", "--oneline", "--metric", "val_loss")
    run(directory, "stats")
    run(directory, "fsck")
    print(f"# done: the repository is in {directory}")


if __name__ == "__main__":
    main()
