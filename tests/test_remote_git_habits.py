"""What a git user tries with remotes: log decorated with origin/main, the upstream of a branch
with dots in its name set through `mvc config`, and git's refusals (no upstream, no such
remote, no such branch, a clone into a full directory) with their messages and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Mvc
from synchelp import commit_file, new_repo, store_snapshot

import modelvc


def oneline(mvc: Mvc, *args: str) -> list[str]:
    return mvc("log", "--oneline", *args).stdout.splitlines()


def remote_ref(remote: Path, name: str) -> str | None:
    path = remote / "refs" / "heads" / name
    return path.read_text().strip() if path.is_file() else None


def remote_branches(mvc: Mvc) -> list[str]:
    return [line.split()[0] for line in mvc("branch", "-r").stdout.splitlines()]


def config_of(mvc: Mvc) -> dict:
    return json.loads((mvc.cwd / ".mvc" / "config").read_text())


def test_log_decorates_commits_with_remote_tracking_refs(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("push", "-q", "-u", "origin", "main")
    one = alice.json("log")[0]["id"]
    assert oneline(alice) == [f"{one[:10]} (HEAD -> main, origin/main) one"]
    commit_file(alice, "a.bin", b"two" * 100, "two")
    two = alice.json("log")[0]["id"]
    alice("tag", "v1", "HEAD~1")
    assert oneline(alice) == [f"{two[:10]} (HEAD -> main) two", f"{one[:10]} (origin/main, tag: v1) one"]
    full = [line for line in alice("log").stdout.splitlines() if line.startswith("commit ")]
    assert full == [f"commit {two} (HEAD -> main)", f"commit {one} (origin/main, tag: v1)"]
    assert [entry["names"] for entry in alice.json("log")] == [["HEAD -> main"], ["origin/main", "tag: v1"]]
    assert alice.json("show", "HEAD~1")["names"] == ["origin/main", "tag: v1"]
    # --all walks the remote-tracking refs: a commit only origin/main reaches is listed
    Mvc(tmp_path)("clone", "-q", str(remote), "bob")
    bob = Mvc(tmp_path / "bob")
    alice("push", "-q")
    bob("fetch", "-q")
    assert oneline(bob) == [f"{one[:10]} (HEAD -> main) one"]
    assert sorted(oneline(bob, "--all")) == sorted([f"{two[:10]} (origin/main) two", f"{one[:10]} (HEAD -> main) one"])


def test_the_upstream_of_a_branch_with_dots_is_set_read_and_unset_by_config_and_used(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("checkout", "-q", "-b", "release/v1.2")
    alice("config", "branch.release/v1.2.remote", "origin")
    alice("config", "branch.release/v1.2.merge", "release/v1.2")  # kept in full, as git keeps it
    assert config_of(alice)["branch"] == {"release/v1.2": {"remote": "origin", "merge": "refs/heads/release/v1.2"}}
    assert alice("config", "branch.release/v1.2.remote").stdout == "origin\n"
    assert alice("config", "branch.release/v1.2.merge").stdout == "refs/heads/release/v1.2\n"
    assert {"branch.release/v1.2.remote=origin", "branch.release/v1.2.merge=refs/heads/release/v1.2"} <= set(
        alice("config", "--list").stdout.splitlines())
    pushed = alice.json("push")  # to the upstream the config names
    assert [(ref["source"], ref["destination"]) for ref in pushed["refs"]] == [
        ("refs/heads/release/v1.2", "refs/heads/release/v1.2")]
    assert remote_ref(remote, "release/v1.2") == alice.json("log")[0]["id"]
    alice("config", "--unset", "branch.release/v1.2.remote")
    alice("config", "--unset", "branch.release/v1.2.merge")
    assert "branch" not in config_of(alice)
    assert alice("config", "branch.release/v1.2.remote", ok=False).exit_code == 1
    assert alice("push", ok=False).exit_code == 2  # no upstream any more
    alice("push", "-q", "-u", "origin", "release/v1.2")
    assert alice("config", "branch.release/v1.2.remote").stdout == "origin\n"
    assert alice("config", "branch.release/v1.2.merge").stdout == "refs/heads/release/v1.2\n"
    Mvc(tmp_path)("clone", "-q", "-b", "release/v1.2", str(remote), "bob")
    bob = Mvc(tmp_path / "bob")
    assert bob("config", "branch.release/v1.2.merge").stdout == "refs/heads/release/v1.2\n"
    commit_file(alice, "a.bin", b"two" * 100, "two")
    alice("push", "-q")
    pulled = bob.json("pull")
    assert pulled["fast_forward"] is True and pulled["commit"] == alice.json("log")[0]["id"]
    assert (bob.cwd / "a.bin").read_bytes() == b"two" * 100


@pytest.mark.parametrize(("key", "value", "message"), [
    ("branch.x..y.remote", "origin", "error: invalid branch name 'x..y' in config key 'branch.x..y.remote'\n"),
    ("branch.x.remote", "a.b", "error: bad value 'a.b' for config key 'branch.x.remote': "
                               "invalid remote name 'a.b': it contains '.'\n"),
    ("branch.x.merge", "a b", "error: bad value 'a b' for config key 'branch.x.merge': not a branch name\n"),
])
def test_bad_branch_keys_and_values_are_config_errors(mvc, key, value, message):
    refused = mvc("config", key, value, ok=False)
    assert (refused.exit_code, refused.stderr) == (14, message)
    assert "branch" not in config_of(mvc)


def test_push_without_an_upstream_is_refused_as_git_refuses_it(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    for args in ((), ("origin",), ("-u",)):
        refused = alice("push", *args, ok=False)
        assert (refused.exit_code, refused.stderr) == (2, (
            "error: The current branch main has no upstream branch.\n"
            "hint: To push the current branch and set the remote as upstream, use "
            "'mvc push --set-upstream origin main'\n"))
    assert list(remote.iterdir()) == [] and "branch" not in config_of(alice)
    # to a remote that is not the branch's, the branch goes under its own name (git's "simple")
    backup = tmp_path / "backup"
    backup.mkdir()
    alice("remote", "add", "backup", str(backup))
    alice("push", "-q", "backup")
    assert remote_ref(backup, "main") == alice.json("log")[0]["id"] and "branch" not in config_of(alice)


def test_pull_without_an_upstream_is_refused_and_pull_remote_branch_works(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("push", "-q", "origin", "main")
    bob = new_repo(tmp_path / "bob")
    bob("remote", "add", "origin", str(remote))
    bob("checkout", "-q", "-b", "mine")
    refused = bob("pull", ok=False)
    assert (refused.exit_code, refused.stderr) == (2, (
        "error: There is no tracking information for the current branch.\n"
        "hint: name what to pull ('mvc pull origin mine'), or make the branch track one "
        "('mvc branch -u origin/mine')\n"))
    assert not (bob.cwd / ".mvc" / "refs" / "remotes").exists()  # nothing was fetched
    pulled = bob.json("pull", "origin", "main")
    assert pulled["fast_forward"] is True and (bob.cwd / "a.bin").read_bytes() == b"one" * 100
    assert bob.json("status")["branch"] == "mine"
    refused = bob("pull", "origin", "nosuch", ok=False)
    assert (refused.exit_code, refused.stderr) == (4, "error: couldn't find remote ref nosuch\n")
    bob("config", "branch.mine.remote", "origin")
    bob("config", "branch.mine.merge", "mine")
    refused = bob("pull", ok=False)
    assert (refused.exit_code, refused.stderr) == (4, (
        "error: Your configuration specifies to merge with the ref 'refs/heads/mine' from the remote 'origin', "
        "but no such ref was fetched.\nhint: push it first ('mvc push -u origin mine')\n"))


def test_unknown_remotes_and_branches(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    for args in (("fetch", "nosuch"), ("push", "nosuch", "main"), ("pull", "nosuch")):
        refused = alice(*args, ok=False)
        assert (refused.exit_code, refused.stderr) == (2, "error: No such remote: 'nosuch'\n"
                                                          "hint: the remotes are: origin\n")
    lonely = new_repo(tmp_path / "lonely")
    refused = lonely("fetch", ok=False)
    assert (refused.exit_code, refused.stderr) == (2, "error: No such remote: 'origin'\nhint: no remote is "
                                                      "configured: 'mvc remote add origin URL'\n")
    refused = alice("push", "origin", "nosuchbranch", ok=False)
    assert refused.exit_code == 4
    assert refused.stderr.startswith("error: src refspec nosuchbranch does not match any\n")
    assert list(remote.iterdir()) == []


def test_clone_into_a_directory_that_is_not_empty_names_it_and_changes_nothing(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("push", "-q", "origin", "main")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_bytes(b"x")
    refused = Mvc(tmp_path)("clone", str(remote), "full", ok=False)
    assert (refused.exit_code, refused.stderr) == (
        3, "error: destination path 'full' already exists and is not an empty directory.\n")
    assert [path.name for path in (tmp_path / "full").iterdir()] == ["x"]


def test_remote_rename_and_remove_carry_the_upstreams_of_branches(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("push", "-q", "-u", "origin", "main")
    alice("checkout", "-q", "-b", "side")
    alice("push", "-q", "-u", "origin", "side")
    alice("config", "branch.local.merge", "local")  # a branch setting of no remote: kept
    alice("remote", "rename", "origin", "shared")
    assert config_of(alice)["branch"] == {"local": {"merge": "refs/heads/local"},
                                          "main": {"remote": "shared", "merge": "refs/heads/main"},
                                          "side": {"remote": "shared", "merge": "refs/heads/side"}}
    assert alice.json("status")["upstream"] == "shared/side"
    assert oneline(alice) == [f"{alice.json('log')[0]['id'][:10]} (HEAD -> side, main, shared/main, shared/side) one"]
    alice("remote", "remove", "shared")
    assert config_of(alice)["branch"] == {"local": {"merge": "refs/heads/local"}}
    assert not (alice.cwd / ".mvc" / "refs" / "remotes").exists()
    assert alice.json("status")["upstream"] is None


def test_push_head_push_u_of_other_branches_and_a_detached_head(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    one = alice.json("log")[0]["id"]
    alice("branch", "side")
    pushed = alice("push", "-u", "origin", "HEAD")  # HEAD: the current branch, under its own name
    assert " * [new branch]      main -> main\n" in pushed.stderr
    assert pushed.stderr.endswith(" requests\nbranch 'main' set up to track 'origin/main'.\n")
    pushed = alice("push", "-u", "origin", "side")  # -u sets the upstream of what it pushed, as git
    assert pushed.stderr.endswith("branch 'side' set up to track 'origin/side'.\n")
    assert config_of(alice)["branch"] == {"main": {"remote": "origin", "merge": "refs/heads/main"},
                                          "side": {"remote": "origin", "merge": "refs/heads/side"}}
    refused = alice("push", "origin", ":side", ok=False)
    assert (refused.exit_code, refused.stderr) == (
        2, "error: cannot delete the remote ref 'side': nothing on a remote is deleted yet\n")
    alice("checkout", "-q", one)
    detached = ("error: You are not currently on a branch.\nhint: To push the history leading to the current "
                "(detached HEAD) state now, use 'mvc push origin HEAD:<name-of-remote-branch>'\n")
    for args in ((), ("origin", "HEAD")):
        refused = alice("push", *args, ok=False)
        assert (refused.exit_code, refused.stderr) == (2, detached)
    alice("push", "-q", "origin", "HEAD:saved")
    assert remote_ref(remote, "saved") == one and alice.json("log", "origin/saved")[0]["id"] == one


def test_branches_made_from_a_remote_branch_track_it_and_checkout_guesses_one(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("branch", "feature")
    alice("push", "-q", "-u", "origin", "main", "feature")
    Mvc(tmp_path)("clone", "-q", str(remote), "bob")
    bob = Mvc(tmp_path / "bob")
    # no local 'feature': the one remote branch of that name becomes a local branch tracking it
    assert bob("checkout", "feature").stdout == ("branch 'feature' set up to track 'origin/feature'.\n"
                                                 "Switched to a new branch 'feature'\n")
    assert bob.json("status")["upstream"] == "origin/feature"
    assert bob("checkout", "-b", "f2", "origin/feature").stdout.startswith(
        "branch 'f2' set up to track 'origin/feature'.\nSwitched to a new branch 'f2'\n")
    assert bob("branch", "f3", "refs/remotes/origin/feature").stdout.startswith(
        "branch 'f3' set up to track 'origin/feature'.\nCreated branch f3 at ")
    assert bob("branch", "local", "main").stdout.startswith("Created branch local at ")  # a local start: no upstream
    assert set(config_of(bob)["branch"]) == {"main", "feature", "f2", "f3"}
    refused = bob("checkout", "nosuch", ok=False)
    assert refused.exit_code == 4 and refused.stderr.startswith("error: unknown revision 'nosuch'\n")
    # the upstream follows a renamed branch and goes with a deleted one, as in git
    bob("branch", "-m", "f3", "f5")
    bob("checkout", "-q", "main")
    bob("branch", "-D", "f2")
    assert config_of(bob)["branch"]["f5"] == {"remote": "origin", "merge": "refs/heads/feature"}
    assert set(config_of(bob)["branch"]) == {"main", "feature", "f5"}


def test_branch_set_upstream_to_and_unset_upstream(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("push", "-q", "origin", "main")
    alice("branch", "side")
    assert alice("branch", "-u", "origin/main").stdout == "branch 'main' set up to track 'origin/main'.\n"
    assert alice("branch", "--set-upstream-to", "origin/main", "side").stdout == (
        "branch 'side' set up to track 'origin/main'.\n")
    assert config_of(alice)["branch"]["side"] == {"remote": "origin", "merge": "refs/heads/main"}
    assert alice.json("status")["upstream"] == "origin/main"
    for args, code, message in [
            (("-u", "nosuch"), 4, "error: the requested upstream branch 'nosuch' does not exist\nhint: 'mvc fetch' "
                                  "brings the remote's branches, 'mvc branch -r' lists them\n"),
            (("-u", "side"), 2, "error: the requested upstream 'side' is not a remote-tracking branch\n"
                                "hint: name one: 'mvc branch -r' lists them (origin/main)\n"),
            (("-u", "origin/main", "nosuch"), 4, "error: branch 'nosuch' does not exist\n")]:
        refused = alice("branch", *args, ok=False)
        assert (refused.exit_code, refused.stderr) == (code, message)
    assert alice("branch", "--unset-upstream", "side").stdout == ""
    assert set(config_of(alice)["branch"]) == {"main"}
    refused = alice("branch", "--unset-upstream", "side", ok=False)
    assert (refused.exit_code, refused.stderr) == (2, "error: branch 'side' has no upstream information\n")
    alice("branch", "--unset-upstream")
    assert "branch" not in config_of(alice) and alice.json("status")["upstream"] is None


def test_branch_vv_shows_each_upstream_with_ahead_and_behind(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("push", "-q", "-u", "origin", "main")
    one = alice.json("log")[0]["id"]
    alice("branch", "side")
    alice("config", "branch.side.remote", "origin")
    alice("config", "branch.side.merge", "never-pushed")
    commit_file(alice, "a.bin", b"two" * 100, "two")
    two = alice.json("log")[0]["id"]
    assert alice("branch", "-vv").stdout.splitlines() == [
        f"* {'main':<20} {two[:10]} [origin/main: ahead 1] two",
        f"  {'side':<20} {one[:10]} [origin/never-pushed: gone] one"]
    alice("push", "-q")
    alice("rollback", "-q", "--hard", "HEAD~1")
    assert alice("branch", "-vv").stdout.splitlines()[0] == f"* {'main':<20} {one[:10]} [origin/main: behind 1] one"
    assert alice("branch", "-v").stdout.splitlines()[0] == f"* {'main':<20} {one[:10]} one"  # as without -v
    commit_file(alice, "a.bin", b"three" * 100, "three")
    assert "[origin/main: ahead 1, behind 1] three" in alice("branch", "-vv").stdout


def test_fetch_of_named_branches_and_tags_brings_only_those(tmp_path, remote, alice):
    commit_file(alice, "a.bin", b"one" * 100, "one")
    alice("tag", "v1")
    alice("checkout", "-q", "-b", "dev")
    commit_file(alice, "b.bin", b"dev" * 100, "dev")
    alice("push", "-q", "origin", "main", "dev", "--tags")
    bob = new_repo(tmp_path / "bob")
    bob("remote", "add", "origin", str(remote))
    before = store_snapshot(bob.cwd)
    refused = bob("fetch", "origin", "main", "nosuch", ok=False)
    assert (refused.exit_code, refused.stderr) == (4, "error: couldn't find remote ref nosuch\n")
    assert store_snapshot(bob.cwd) == before
    fetched = bob.json("fetch", "origin", "main")
    assert [(ref["source"], ref["destination"]) for ref in fetched["refs"]] == [
        ("refs/heads/main", "refs/remotes/origin/main")]
    assert remote_branches(bob) == ["origin/main"] and bob("tag").stdout == ""
    with modelvc.Repo.open(bob.cwd) as repo:  # the library's fetch takes the names alike
        assert [ref.destination for ref in repo.fetch("origin", "v1", "dev").refs] == [
            "refs/remotes/origin/dev", "refs/tags/v1"]
    assert remote_branches(bob) == ["origin/dev", "origin/main"] and bob("tag").stdout.split()[0] == "v1"
    bob("checkout", "-q", "origin/dev")
    assert (bob.cwd / "b.bin").read_bytes() == b"dev" * 100
