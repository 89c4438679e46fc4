"""push, fetch, pull, clone through a directory remote: byte-identical round trips, only what
changed sent, git's refusals and exit codes, remote-tracking refs, a flipped byte refused."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Mvc
from synchelp import TENSOR_VALUES, commit_file, new_repo, store_snapshot, write_model


def clone(tmp_path: Path, remote: Path, name: str, *args: str) -> Mvc:
    Mvc(tmp_path)("clone", str(remote), name, "-q", *args)
    return Mvc(tmp_path / name)


def ids(mvc: Mvc, rev: str = "HEAD") -> list[str]:
    return [entry["id"] for entry in mvc.json("log", rev)]


def subjects(mvc: Mvc, rev: str = "HEAD") -> list[str]:
    return [entry["subject"] for entry in mvc.json("log", rev)]


def remote_keys(remote: Path) -> list[str]:
    return sorted(str(path.relative_to(remote)) for path in remote.rglob("*") if path.is_file())


def test_push_then_clone_is_byte_identical_and_the_remote_is_the_local_layout(tmp_path, remote, alice):
    model = write_model(alice.cwd / "model.safetensors")
    commit_file(alice, "model.safetensors", model, "v1")
    pushed = alice.json("push", "-u", "origin", "main")
    assert pushed["refs"] == [{"source": "refs/heads/main", "destination": "refs/heads/main", "old_commit": None,
                               "new_commit": pushed["refs"][0]["new_commit"], "update": "new", "reason": None}]
    assert pushed["object_count"] == 3 and pushed["pack_count"] == 2 and pushed["sent_bytes"] > len(model) // 2
    keys = remote_keys(remote)
    assert [key.rsplit("-", 1)[0] for key in keys] == ["packs/meta", "packs/meta", "packs/pack", "packs/pack",
                                                       "refs/heads/main"]
    head = json.loads(Path(alice.cwd / ".mvc" / "config").read_text())["branch"]["main"]
    assert head == {"remote": "origin", "merge": "refs/heads/main"}
    bob = clone(tmp_path, remote, "bob")
    assert (bob.cwd / "model.safetensors").read_bytes() == model
    assert ids(bob) == ids(alice)
    assert bob("status").stdout.splitlines()[:2] == ["On branch main", "Your branch is up to date with 'origin/main'."]
    assert bob("fsck").exit_code == 0
    # a local store is readable as a remote: clone alice's own repository directly
    carol = clone(tmp_path, alice.cwd / ".mvc", "carol")
    assert (carol.cwd / "model.safetensors").read_bytes() == model


def test_a_second_version_sends_only_its_changed_chunks(tmp_path, remote, alice):
    commit_file(alice, "model.safetensors", write_model(alice.cwd / "model.safetensors"), "v1")
    alice("push", "-u", "origin", "main", "-q")
    v2 = write_model(alice.cwd / "model.safetensors", changed=3)
    commit_file(alice, "model.safetensors", v2, "v2: layer3 tuned")
    pushed = alice.json("push")
    assert pushed["refs"][0]["update"] == "fast-forward"
    assert pushed["sent_bytes"] < 0.2 * len(v2)  # one tensor of six, delta-coded against v1's
    assert pushed["sent_bytes"] < TENSOR_VALUES * 4
    again = alice.json("push")
    assert again["refs"][0]["update"] == "up to date" and again["sent_bytes"] == 0 and again["object_count"] == 0
    bob = clone(tmp_path, remote, "bob")
    assert (bob.cwd / "model.safetensors").read_bytes() == v2
    bob("checkout", "HEAD~1", "-q")
    assert (bob.cwd / "model.safetensors").read_bytes() == write_model(tmp_path / "v1.safetensors")


def test_fetch_into_a_repo_with_local_commits_then_pull_diverged_and_fast_forward(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 1000, "one")
    alice("push", "-u", "origin", "main", "-q")
    bob = clone(tmp_path, remote, "bob")
    commit_file(alice, "a.bin", b"two" * 1000, "two")
    alice("push", "-q")
    commit_file(bob, "b.bin", b"mine" * 1000, "bob's")
    fetched = bob.json("fetch")
    assert [(ref["destination"], ref["update"]) for ref in fetched["refs"]] == [("refs/remotes/origin/main",
                                                                                 "fast-forward")]
    assert bob("cat", "origin/main:a.bin").stdout_bytes == b"two" * 1000
    assert subjects(bob, "refs/remotes/origin/main") == ["two", "one"]
    status = bob.json("status")
    assert (status["upstream"], status["ahead_count"], status["behind_count"]) == ("origin/main", 1, 1)
    assert "have diverged" in bob("status").stdout
    before = (bob.cwd / ".mvc" / "refs" / "heads" / "main").read_bytes()
    pulled = bob("pull", ok=False)
    assert pulled.exit_code == 19
    assert pulled.stderr.startswith("error: Not possible to fast-forward, aborting.\nhint: Diverging branches")
    assert (bob.cwd / ".mvc" / "refs" / "heads" / "main").read_bytes() == before
    bob("rollback", "--hard", "origin/main", "-q")
    assert bob.json("status")["ahead_count"] == 0
    commit_file(alice, "a.bin", b"three" * 1000, "three")
    alice("push", "-q")
    assert "behind 'origin/main' by 1 commit," in bob("fetch", "-q") .stdout + bob("status").stdout
    pulled = bob.json("pull")
    assert pulled["fast_forward"] is True and pulled["commit"] == ids(alice)[0]
    assert (bob.cwd / "a.bin").read_bytes() == b"three" * 1000
    assert bob("pull").stdout == "Already up to date.\n"


def test_non_fast_forward_push_is_refused_and_force_accepted(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 1000, "one")
    alice("push", "-u", "origin", "main", "-q")
    bob = clone(tmp_path, remote, "bob")
    commit_file(bob, "a.bin", b"bob" * 1000, "bob's")
    bob("push", "-q")
    commit_file(alice, "a.bin", b"alice" * 1000, "alice's")
    refused = alice("push", ok=False)
    assert refused.exit_code == 18
    assert refused.stderr.startswith(f"error: failed to push some refs to '{remote}'\n"
                                     " ! [rejected]        main -> main (fetch first)\nhint: ")
    alice("fetch", "-q")
    refused = alice("push", ok=False)
    assert refused.exit_code == 18 and " ! [rejected]        main -> main (non-fast-forward)" in refused.stderr
    assert (remote / "refs" / "heads" / "main").read_text() == ids(bob)[0] + "\n"
    forced = alice.json("push", "--force")
    assert forced["refs"][0]["update"] == "forced"
    assert (remote / "refs" / "heads" / "main").read_text() == ids(alice)[0] + "\n"


def test_tags_all_branches_and_dry_run(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 1000, "one")
    alice("tag", "v1")
    alice("branch", "side")
    dry = alice.json("push", "--dry-run", "--all", "--tags")
    assert dry["dry_run"] is True and dry["object_count"] == 3 and dry["sent_bytes"] == 0
    assert remote_keys(remote) == []
    alice("push", "--all", "--tags", "-q")
    assert remote_keys(remote)[-3:] == ["refs/heads/main", "refs/heads/side", "refs/tags/v1"]
    bob = clone(tmp_path, remote, "bob", "-b", "side")
    assert bob.json("status")["branch"] == "side"
    assert subjects(bob, "v1") == ["one"]
    assert [name["name"] for name in bob.json("tag")] == ["v1"]


def test_remote_tracking_refs_follow_remote_rename_and_remove(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 1000, "one")
    alice("push", "-q", "origin", "main")
    assert (alice.cwd / ".mvc" / "refs" / "remotes" / "origin" / "main").is_file()
    assert (alice.cwd / ".mvc" / "remotes" / "origin" / "packs").is_dir()
    alice("branch", "side")
    assert [info["name"] for info in alice.json("branch", "-r")] == ["origin/main"]
    listed = alice("branch", "-a").stdout.splitlines()
    assert [line[2:].split()[0] for line in listed] == ["main", "side", "remotes/origin/main"]
    alice("remote", "rename", "origin", "shared")
    assert subjects(alice, "shared/main") == ["one"]
    assert not (alice.cwd / ".mvc" / "refs" / "remotes" / "origin" / "main").exists()
    alice("remote", "remove", "shared")
    assert alice("log", "shared/main", ok=False).exit_code == 4
    assert not (alice.cwd / ".mvc" / "remotes" / "shared").exists()


def test_a_flipped_byte_on_the_remote_is_refused_and_nothing_lands(tmp_path, remote, alice):
    commit_file(alice, "model.safetensors", write_model(alice.cwd / "model.safetensors"), "v1")
    alice("push", "-q", "origin", "main")
    bob = new_repo(tmp_path / "bob")
    bob("remote", "add", "origin", str(remote))
    pack = next(path for path in (remote / "packs").glob("pack-*.pack"))
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    before = store_snapshot(bob.cwd)
    fetched = bob("fetch", ok=False)
    assert fetched.exit_code == 7
    assert f"in packs/{pack.name} on the remote {remote}" in fetched.stderr and "is corrupt" in fetched.stderr
    assert store_snapshot(bob.cwd) == before
    assert not (tmp_path / "carol").exists() or True
    cloned = Mvc(tmp_path)("clone", str(remote), "carol", ok=False)
    assert cloned.exit_code == 7 and not (tmp_path / "carol").exists()


def test_clone_of_an_unreachable_remote_leaves_nothing(tmp_path):
    result = Mvc(tmp_path)("clone", str(tmp_path / "nowhere"), "copy", ok=False)
    assert result.exit_code == 16 and not (tmp_path / "copy").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_bytes(b"x")
    result = Mvc(tmp_path)("clone", str(tmp_path / "nowhere"), "full", ok=False)
    assert result.exit_code == 3 and (tmp_path / "full" / "x").read_bytes() == b"x"


def test_push_refuses_a_remote_without_conditional_writes_unless_allowed(alice):
    commit_file(alice, "a.bin", b"one" * 1000, "one")
    config = alice.cwd / ".mvc" / "config"
    data = json.loads(config.read_text())
    data["remote"]["origin"]["conditionalWrites"] = False
    config.write_text(json.dumps(data))
    refused = alice("push", "origin", "main", ok=False)
    assert refused.exit_code == 2 and "has no conditional writes" in refused.stderr
    alice("config", "remote.origin.allowUnconditionalPush", "true")
    alice("push", "-q", "origin", "main")


def test_gc_keeps_what_only_a_remote_tracking_ref_reaches(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 1000, "one")
    alice("push", "-q", "-u", "origin", "main")
    bob = clone(tmp_path, remote, "bob")
    commit_file(alice, "a.bin", b"two" * 1000, "two")
    alice("push", "-q")
    bob("fetch", "-q")
    bob("gc", "--prune=now")
    assert bob("cat", "origin/main:a.bin").stdout_bytes == b"two" * 1000
    assert bob("fsck").exit_code == 0


def test_fetch_brings_new_tags_and_never_moves_a_different_local_one(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 1000, "one")
    alice("push", "-q", "-u", "origin", "main")
    bob = clone(tmp_path, remote, "bob")
    commit_file(bob, "a.bin", b"bob" * 1000, "bob's")
    bob("tag", "v1")
    alice("tag", "v1")
    alice("tag", "v0", "HEAD")
    alice("push", "-q", "--tags")
    fetched = bob.json("fetch")
    assert [(ref["destination"], ref["update"], ref["reason"]) for ref in fetched["refs"]] == [
        ("refs/tags/v0", "new", None), ("refs/tags/v1", "rejected", "would clobber existing tag")]
    assert ids(bob, "v1") == ids(bob) and ids(bob, "v0") == ids(alice)


def test_records_read_one_span_each_and_decoded_in_parallel_clone_every_version_and_a_flip_stores_nothing(
        tmp_path, remote, alice, monkeypatch):
    """Records are decoded and verified on worker threads: with every record its own span, the
    clone is still byte-identical (deltas after their bases), and a flipped byte in the last
    record read stores nothing."""
    from modelvc.transfer import ranges

    monkeypatch.setattr(ranges, "SPAN_BYTES", 1)
    monkeypatch.setattr(ranges, "GAP_BYTES", 0)
    v1 = write_model(alice.cwd / "model.safetensors")
    commit_file(alice, "model.safetensors", v1, "v1")
    v2 = write_model(alice.cwd / "model.safetensors", changed=3)
    commit_file(alice, "model.safetensors", v2, "v2")
    alice("push", "-u", "origin", "main", "-q")
    fetched = clone(tmp_path, remote, "bob").json("fsck", "--read-data")
    assert fetched["ok"] is True
    bob = Mvc(tmp_path / "bob")
    assert (bob.cwd / "model.safetensors").read_bytes() == v2
    bob("checkout", "HEAD~1", "-q")
    assert (bob.cwd / "model.safetensors").read_bytes() == v1
    packs = sorted((remote / "packs").glob("pack-*.pack"), key=lambda path: path.stat().st_size)
    data = bytearray(packs[-1].read_bytes())
    data[-1] ^= 0x01  # the last record of the biggest pack: read late
    packs[-1].write_bytes(bytes(data))
    carol = new_repo(tmp_path / "carol")
    carol("remote", "add", "origin", str(remote))
    before = store_snapshot(carol.cwd)
    refused = carol("fetch", ok=False)
    assert refused.exit_code == 7 and f"in packs/{packs[-1].name} on the remote {remote}" in refused.stderr
    assert store_snapshot(carol.cwd) == before
