"""Metrics and params from files (JSON, YAML, a Hugging Face Trainer's state), carry-over of
params from the parent, and the errors of each bad file: exact messages and exit codes, and
nothing committed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write

PARAMS_YAML = """\
# DVC's params.yaml
seed: 42
optimizer:
  name: adamw
  lr: 0.0003
  betas: [0.9, 0.999]
  schedule: {warmup: 500, kind: cosine}
layers: [64, 128, 256]
use_amp: true
resume_from: null
lr_text: 3e-4   # YAML 1.1 reads this as text: kept as written
tags: []
"""

PARAMS = {"layers.0": "64", "layers.1": "128", "layers.2": "256", "lr_text": "3e-4",
          "optimizer.betas.0": "0.9", "optimizer.betas.1": "0.999", "optimizer.lr": "0.0003",
          "optimizer.name": "adamw", "optimizer.schedule.kind": "cosine", "optimizer.schedule.warmup": "500",
          "resume_from": "null", "seed": "42", "tags": "[]", "use_amp": "true"}


def staged(mvc, work, name: str = "model.bin", data: bytes = b"weights v1") -> None:
    write(work / name, data)
    mvc("add", name)


def committed(mvc, *options: str) -> dict:
    """The commit made with these options, as `show --json` reads it back from the store."""
    mvc("commit", "-m", "a version", *options)
    return mvc.json("show")


def test_yaml_params_and_json_metrics_are_flattened_with_dots_and_list_indexes(mvc, work):
    write(work / "params.yaml", PARAMS_YAML.encode())
    write(work / "metrics.json", json.dumps({"val": {"loss": 1.92, "acc": 0.81}, "per_class": [0.5, 0.75],
                                             "steps": 1000, "empty": {}}).encode())
    staged(mvc, work)
    made = mvc.json("commit", "-m", "v1", "--params-file", "params.yaml", "--metrics-file", "metrics.json")
    assert made["params"] == PARAMS
    assert made["metrics"] == {"per_class.0": 0.5, "per_class.1": 0.75, "steps": 1000, "val.acc": 0.81,
                               "val.loss": 1.92}
    assert isinstance(made["metrics"]["steps"], int)
    shown = mvc.json("show")
    assert (shown["metrics"], shown["params"]) == (made["metrics"], made["params"])
    assert set(made) == {"id", "tree", "parents", "author", "subject", "message", "metrics", "params", "meta",
                         "git", "names", "branch", "change_count"}  # the commit_made shape, unchanged


def test_the_same_params_in_json_and_yaml_give_the_same_text(mvc, work):
    """Floats in Python's shortest form, booleans and null as JSON writes them, whatever the file."""
    document = {"lr": 0.0003, "wd": 1e-05, "epochs": 3, "amp": False, "ckpt": None, "name": "run-7",
                "grid": [[1, 2], [3]], "date": "2026-11-30"}
    write(work / "p.json", json.dumps(document).encode())
    write(work / "p.yaml", b"lr: 0.0003\nwd: 1.0e-05\nepochs: 3\namp: false\nckpt: ~\nname: run-7\n"
                           b"grid: [[1, 2], [3]]\ndate: 2026-11-30\n")
    staged(mvc, work)
    from_json = committed(mvc, "--params-file", "p.json")["params"]
    assert from_json == {"amp": "false", "ckpt": "null", "date": "2026-11-30", "epochs": "3", "grid.0.0": "1",
                         "grid.0.1": "2", "grid.1.0": "3", "lr": "0.0003", "name": "run-7", "wd": "1e-05"}
    staged(mvc, work, data=b"weights v2")
    assert committed(mvc, "--params-reset", "--params-file", "p.yaml")["params"] == from_json
    assert mvc.json("diff", "HEAD~1", "HEAD")["params"] == []  # no param changed


def test_later_sources_win_files_in_order_then_the_command_line(mvc, work):
    write(work / "trainer" / "trainer_state.json", json.dumps(
        {"global_step": 10, "log_history": [{"eval_loss": 3.0, "step": 10}]}).encode())
    write(work / "m1.json", b'{"loss": 1.0, "acc": 0.5, "eval_loss": 2.5}')
    write(work / "m2.yaml", b"loss: 0.9\nf1: 0.7\n")
    write(work / "p1.yaml", b"lr: 0.1\nbatch: 32\n")
    write(work / "p2.json", b'{"lr": 0.2, "seed": 1}')
    staged(mvc, work)
    shown = committed(mvc, "--metrics-from-trainer", "trainer", "--metrics-file", "m1.json",
                      "--metrics-file", "m2.yaml", "--metric", "f1=0.8", "--params-file", "p1.yaml",
                      "--params-file", "p2.json", "--param", "seed=7")
    assert shown["metrics"] == {"acc": 0.5, "eval_loss": 2.5, "f1": 0.8, "loss": 0.9, "step": 10}
    assert shown["params"] == {"batch": "32", "lr": "0.2", "seed": "7"}


def test_params_carry_over_from_the_parent_and_metrics_do_not(mvc, work):
    write(work / "params.yaml", PARAMS_YAML.encode())
    staged(mvc, work)
    committed(mvc, "--params-file", "params.yaml", "--param", "note=first", "--metric", "loss=2")
    staged(mvc, work, data=b"weights v2")
    second = committed(mvc, "--param", "optimizer.lr=1e-4", "--metric", "loss=1.5")
    assert second["params"] == PARAMS | {"optimizer.lr": "1e-4", "note": "first"}
    assert second["metrics"] == {"loss": 1.5}
    changes = mvc.json("diff", "HEAD~1", "HEAD")
    assert changes["params"] == [{"key": "optimizer.lr", "old": "0.0003", "new": "1e-4", "delta": None}]
    assert changes["metrics"] == [{"key": "loss", "old": 2, "new": 1.5, "delta": -0.5}]
    text = mvc("show").stdout
    assert "  optimizer.lr = 1e-4  (was 0.0003)\n" in text
    assert "  seed = 42\n" in text  # carried over, unchanged: no note


def test_a_params_file_replaces_the_groups_it_names_and_reset_drops_the_rest(mvc, work):
    """A shorter list leaves no stale item behind; groups the file does not name carry over."""
    write(work / "params.yaml", PARAMS_YAML.encode())
    staged(mvc, work)
    committed(mvc, "--params-file", "params.yaml")
    write(work / "params.yaml", b"layers: [64, 96]\noptimizer: {name: sgd}\n")
    staged(mvc, work, data=b"weights v2")
    kept = {key: value for key, value in PARAMS.items() if key.split(".")[0] not in ("layers", "optimizer")}
    assert committed(mvc, "--params-file", "params.yaml")["params"] == kept | {
        "layers.0": "64", "layers.1": "96", "optimizer.name": "sgd"}
    text = mvc("show").stdout
    assert "  layers.2 = -  (was 256)\n" in text
    assert "  optimizer.name = sgd  (was adamw)\n" in text
    staged(mvc, work, data=b"weights v3")
    assert committed(mvc, "--params-reset", "--param", "only=this")["params"] == {"only": "this"}
    staged(mvc, work, data=b"weights v4")
    assert committed(mvc, "--params-reset")["params"] == {}


BAD_FILES = [
    ("bad.json", b'{"loss": 1.0,\n "acc": }\n', "--metrics-file", 17,
     "error: metrics file 'bad.json' is not valid JSON: line 2, column 9: Expecting value\n"),
    ("bad.yaml", b"seed: 1\nlayers: [1, 2\nlr: 3\n", "--params-file", 17,
     "error: params file 'bad.yaml' is not valid YAML: line 3, column 3: expected ',' or ']', but got ':'\n"),
    ("tab.yaml", b"a:\n\tb: 1\n", "--params-file", 17,
     "error: params file 'tab.yaml' is not valid YAML: line 2, column 1: "
     "found character '\\t' that cannot start any token\n"),
    ("list.json", b"[1, 2]", "--params-file", 17,
     "error: params file 'list.json': expected a mapping of names to values at the top, found a list\n"),
    ("scalar.yaml", b"just text\n", "--metrics-file", 17, "error: metrics file 'scalar.yaml': expected a mapping "
                                                          "of names to values at the top, found a single value "
                                                          "(\"just text\")\n"),
    ("twice.yaml", b"a:\n  b: 1\na.b: 2\n", "--params-file", 17,
     "error: params file 'twice.yaml': the key 'a.b' appears twice once nested keys are joined with dots\n"),
    ("boolkey.yaml", b"on: 1\n", "--params-file", 17,
     "error: params file 'boolkey.yaml': the key True is not text (quote it)\n"),
    ("loop.yaml", b"a: &loop [*loop]\n", "--params-file", 17,
     "error: params file 'loop.yaml': '" + ("a" + ".0" * 65)[:80] + "...' is nested more than 64 levels deep\n"),
    ("latin1.json", '{"é": 1}'.encode("latin-1"), "--metrics-file", 17,
     "error: metrics file 'latin1.json' is not UTF-8 text (byte 2)\n"),
    ("text.json", b'{"val": {"acc": "high"}}', "--metrics-file", 2,
     "error: metric 'val.acc' in 'text.json' is not a number: \"high\"\n"),
    ("bool.yaml", b"converged: yes\n", "--metrics-file", 2,
     "error: metric 'converged' in 'bool.yaml' is a boolean (true), not a number\n"),
    ("null.json", b'{"loss": null}', "--metrics-file", 2,
     "error: metric 'loss' in 'null.json' is null, not a number\n"),
    ("nan.json", b'{"loss": NaN}', "--metrics-file", 2,
     "error: metric 'loss' in 'nan.json' is not a finite number: nan\n"),
    ("inf.yaml", b"loss: .inf\n", "--metrics-file", 2,
     "error: metric 'loss' in 'inf.yaml' is not a finite number: inf\n"),
    ("binary.yaml", b"blob: !!binary aGVsbG8=\n", "--params-file", 2,
     "error: param 'blob' in 'binary.yaml' is a bytes, which mvc cannot keep as text\n"),
    ("params.toml", b"lr = 1\n", "--params-file", 2,
     "error: params file 'params.toml' is neither JSON nor YAML\nhint: name it *.json, *.yaml or *.yml\n"),
]


@pytest.mark.parametrize(("name", "content", "option", "code", "message"), BAD_FILES,
                         ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_is_named_with_its_exit_code_and_nothing_is_committed(mvc, work, name, content, option, code,
                                                                        message):
    staged(mvc, work)
    mvc("commit", "-m", "first")
    head = mvc.json("show")["id"]
    write(work / name, content)
    staged(mvc, work, data=b"weights v2")
    refused = mvc("commit", "-m", "second", option, name, ok=False)
    assert (refused.exit_code, refused.stderr, refused.stdout) == (code, message, "")
    assert mvc.json("show")["id"] == head
    assert mvc("status", "--porcelain", "-uno").stdout == "M  model.bin\n"  # still staged, for the next try


def test_a_missing_file_or_a_directory_is_exit_17_and_relative_paths_are_from_the_working_directory(
        mvc, work, tmp_path, monkeypatch):
    staged(mvc, work)
    monkeypatch.chdir(tmp_path)  # not where mvc runs (-C work): the files are looked up in work
    write(tmp_path / "m.json", b'{"loss": 1}')
    for option, name, message in (
            ("--metrics-file", "m.json", "error: metrics file 'm.json' does not exist\n"),
            ("--params-file", "sub/p.yaml", "error: params file 'sub/p.yaml' does not exist\n"),
            ("--metrics-from-trainer", "checkpoint-9", "error: Trainer checkpoint 'checkpoint-9' does not exist\n")):
        refused = mvc("commit", "-m", "x", option, name, ok=False)
        assert (refused.exit_code, refused.stderr) == (17, message)
    (work / "dir.json").mkdir()
    refused = mvc("commit", "-m", "x", "--metrics-file", "dir.json", ok=False)
    assert (refused.exit_code, refused.stderr) == (17, "error: metrics file 'dir.json' is a directory\n")
    assert mvc("log", "--json").stdout.strip() == "[]"
    assert mvc.json("commit", "-m", "x", "--metrics-file", str(tmp_path / "m.json"))["metrics"] == {"loss": 1}


def trainer_state(global_step: int, evaluations: list[dict], best_metric: float | None = None) -> dict:
    """A trainer_state.json as transformers' TrainerState.save_to_json writes it: training logs
    every 50 steps, an evaluation every 250, the training summary last when training ended."""
    history: list[dict] = []
    for index, eval_values in enumerate(evaluations, start=1):
        step = 250 * index
        for logged in range(step - 200, step + 1, 50):
            history.append({"epoch": round(logged / 400, 2), "grad_norm": 1.25 - logged / 4000,
                            "learning_rate": 5e-05 * (1 - logged / 2000), "loss": 2.5 - logged / 1000,
                            "step": logged})
        history.append({"epoch": round(step / 400, 2), "eval_runtime": 12.3456, "eval_samples_per_second": 81.0,
                        "eval_steps_per_second": 10.125, "step": step} | eval_values)
    history.append({"epoch": global_step / 400, "step": global_step, "total_flos": 1.2e15, "train_loss": 1.9,
                    "train_runtime": 345.6, "train_samples_per_second": 46.3, "train_steps_per_second": 1.45})
    state = {"best_global_step": 250 if best_metric is not None else None, "best_metric": best_metric,
             "best_model_checkpoint": "out/checkpoint-250" if best_metric is not None else None,
             "epoch": global_step / 400, "eval_steps": 250, "global_step": global_step,
             "is_hyper_param_search": False, "is_local_process_zero": True, "is_world_process_zero": True,
             "log_history": history, "logging_steps": 50, "max_steps": 2000, "num_input_tokens_seen": 0,
             "num_train_epochs": 5, "save_steps": 250,
             "stateful_callbacks": {"TrainerControl": {"args": {"should_epoch_stop": False, "should_evaluate": False,
                                                                "should_log": False, "should_save": True,
                                                                "should_training_stop": False},
                                                       "attributes": {}}},
             "total_flos": 1.2e15, "train_batch_size": 8, "trial_name": None, "trial_params": None}
    return state


def write_checkpoint(directory: Path, state: dict) -> None:
    write(directory / "trainer_state.json", (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())
    write(directory / "model.safetensors", b"weights of " + directory.name.encode())


def test_trainer_metrics_are_the_step_and_the_last_evaluation(mvc, work):
    write_checkpoint(work / "out" / "checkpoint-500", trainer_state(500, [
        {"eval_loss": 2.1, "eval_accuracy": 0.61}, {"eval_loss": 1.8, "eval_accuracy": 0.66}], best_metric=1.8))
    mvc("add", "out")
    made = mvc.json("commit", "-m", "step 500", "--metrics-from-trainer", "out/checkpoint-500/")
    assert made["metrics"] == {"best_metric": 1.8, "epoch": 1.25, "eval_accuracy": 0.66, "eval_loss": 1.8,
                               "eval_runtime": 12.3456, "eval_samples_per_second": 81.0,
                               "eval_steps_per_second": 10.125, "step": 500}
    assert isinstance(made["metrics"]["step"], int)
    # the file itself may be named too; a state without evaluations gives the step and epoch only
    write_checkpoint(work / "out" / "checkpoint-750", trainer_state(750, []))
    mvc("add", "out")
    made = mvc.json("commit", "-m", "step 750", "--metrics-from-trainer", "out/checkpoint-750/trainer_state.json",
                    "--metric", "epoch=2")
    assert made["metrics"] == {"epoch": 2, "step": 750}
    assert "  step: 500 -> 750  (+250)\n" in mvc("diff", "HEAD~1", "HEAD").stdout


def test_without_a_directory_the_trainer_state_the_commit_stages_is_read(mvc, work):
    """The staged bytes are read, not the working file: the metrics describe what is committed."""
    write_checkpoint(work / "out" / "checkpoint-250", trainer_state(250, [{"eval_loss": 2.0}]))
    write_checkpoint(work / "out" / "checkpoint-500", trainer_state(500, [{"eval_loss": 2.0}, {"eval_loss": 1.7}]))
    mvc("add", "out")
    write(work / "out" / "checkpoint-500" / "trainer_state.json", b"written after mvc add")
    made = mvc.json("commit", "--metrics-from-trainer", "-m", "two checkpoints")  # the newest step wins
    assert (made["metrics"]["step"], made["metrics"]["eval_loss"]) == (500, 1.7)
    write(work / "notes.txt", b"no checkpoint in this one")
    mvc("add", "notes.txt")
    refused = mvc("commit", "-m", "notes", "--metrics-from-trainer", ok=False)
    assert (refused.exit_code, refused.stderr) == (
        2, "error: this commit adds or changes no trainer_state.json\n"
           "hint: stage a checkpoint directory, or name one: --metrics-from-trainer DIR\n")
    assert mvc.json("show")["id"] == made["id"]


def test_a_trainer_state_that_is_not_one_is_refused(mvc, work):
    staged(mvc, work)
    write(work / "ckpt" / "trainer_state.json", b'{"epoch": 1.0}')
    refused = mvc("commit", "-m", "x", "--metrics-from-trainer", "ckpt", ok=False)
    assert (refused.exit_code, refused.stderr) == (
        17, "error: 'ckpt/trainer_state.json' is not a Hugging Face Trainer state (it needs a whole-number "
            "global_step and a log_history list)\n")
    write(work / "ckpt" / "trainer_state.json", json.dumps(trainer_state(250, [{"eval_loss": float("nan")}])).encode())
    refused = mvc("commit", "-m", "x", "--metrics-from-trainer", "ckpt", ok=False)
    assert (refused.exit_code, refused.stderr) == (
        2, "error: metric 'eval_loss' in 'ckpt/trainer_state.json' is not a finite number: nan\n")
    (work / "empty").mkdir()
    refused = mvc("commit", "-m", "x", "--metrics-from-trainer", "empty", ok=False)
    assert (refused.exit_code, refused.stderr) == (
        17, "error: Trainer state file 'empty/trainer_state.json' does not exist\n")


def test_the_library_reads_the_same_files_and_flattens_dicts_given_by_code(mvc, work):
    from modelvc.errors import UsageError
    from modelvc.ops.commit import commit
    from modelvc.repo import Repo

    write(work / "params.yaml", PARAMS_YAML.encode())
    write(work / "metrics.json", b'{"val": {"loss": 1.5}}')
    staged(mvc, work)
    with Repo.discover(work) as repo:
        result = commit(repo, "from code", metrics={"train": {"loss": 2}}, params={"optimizer": {"lr": 1e-4}},
                        metrics_files=["metrics.json"], params_files=[work / "params.yaml"], cwd=work)
        with pytest.raises(UsageError) as refused:
            commit(repo, "again", metrics={"ok": True}, allow_empty=True)
    assert refused.value.message == "metric 'ok' is a boolean (true), not a number"
    assert result.commit.metrics == {"train.loss": 2, "val.loss": 1.5}
    assert result.commit.params == PARAMS | {"optimizer.lr": "0.0001"}
    assert mvc.json("show")["params"] == result.commit.params


def test_a_plain_commit_does_not_import_yaml(mvc, work):
    """PyYAML loads only when a YAML file is given: mvc's start-up does not grow."""
    staged(mvc, work)
    write(work / "m.json", b'{"loss": 1}')
    script = ("import sys\nfrom modelvc.cli.main import main\ntry:\n    main()\nexcept SystemExit as exit:\n"
              "    print('yaml' in sys.modules, exit.code or 0)\n")
    done = subprocess.run([sys.executable, "-c", script, "commit", "-m", "x", "--metrics-file", "m.json",
                           "--param", "a=1"], cwd=work, capture_output=True, text=True)
    assert done.stdout.split()[-2:] == ["False", "0"], done.stderr
