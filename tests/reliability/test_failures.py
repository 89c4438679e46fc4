"""Every failure has its message and exit code (issue 11, items 7, 8, 10-13).

A full disk is a real 2 MiB tmpfs filled to the last page; permission denied is the real
`mvc` run as the unprivileged user `nobody` (root bypasses permissions) or on a read-only
bind mount. After each failure the repository checks clean and every committed version
comes back byte-identical.
"""

from __future__ import annotations

import atexit
import errno
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import Mvc, random_bytes, write

NOBODY = 65534
NO_SPACE_HINT = "hint: no file was left half-written; free some space and run the command again\n"
DENIED_HINT = "hint: check the owner and permissions of that path\n"


# ------------------------------------------------------------------------------ helpers


def committed(mvc: Mvc, work: Path, versions: dict[str, dict[str, bytes]]) -> None:
    """The invariants after a failure: fsck clean, and every version restored byte for byte."""
    mvc("fsck")
    for rev, files in versions.items():
        mvc("checkout", "--force", rev)
        for name, data in files.items():
            assert (work / name).read_bytes() == data, (rev, name)


def leftovers(root: Path) -> list[str]:
    """Temporary files a failed write could have left behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith("tmp-pack-") or ".mvc-tmp-" in p.name)


def fill(directory: Path) -> Path:
    """Fill the file system holding `directory` up to its last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        size = 1 << 20
        while size:
            try:
                os.write(fd, bytes(size))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                size //= 2
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs mounted for the test (CI runs as root, as here)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def disk_repo(small_disk: Path):
    """A repository on the small disk with one commit, v1, of a 200 KB file."""
    work = small_disk / "work"
    work.mkdir()
    mvc = Mvc(work)
    mvc("init")
    write(work / "model.bin", random_bytes(200_000, seed=1))
    mvc("add", "model.bin")
    mvc("commit", "-m", "v1")
    mvc("tag", "v1")
    return mvc, work, small_disk


def expect(result, code: int, stderr: str) -> None:
    assert (result.exit_code, result.stderr) == (code, stderr), result.stdout


# ------------------------------------------------------------------- item 7: disk full


def test_add_on_a_full_disk_exits_11_and_stages_nothing(disk_repo):
    mvc, work, disk = disk_repo
    write(work / "model.bin", random_bytes(300_000, seed=2))
    index_before = (work / ".mvc" / "index").read_bytes()
    filler = fill(disk)
    result = mvc("add", "model.bin", ok=False)
    expect(result, 11, f"error: no space left on device while writing {work / '.mvc' / 'packs'}\n"
                       + NO_SPACE_HINT)
    assert leftovers(work) == []
    assert (work / ".mvc" / "index").read_bytes() == index_before
    filler.unlink()
    assert mvc("status", "--porcelain").stdout == " M model.bin\n"
    committed(mvc, work, {"v1": {"model.bin": random_bytes(200_000, seed=1)}})


def test_commit_on_a_full_disk_exits_11_and_moves_no_ref(disk_repo):
    mvc, work, disk = disk_repo
    write(work / "model.bin", random_bytes(100_000, seed=2))
    mvc("add", "model.bin")
    head_before = (work / ".mvc" / "refs" / "heads" / "main").read_bytes()
    filler = fill(disk)
    result = mvc("commit", "-m", "v2", ok=False)
    objects = re.escape(str(work / ".mvc" / "objects"))
    assert result.exit_code == 11
    assert re.fullmatch(f"error: no space left on device while writing {objects}/[0-9a-f]{{2}}/[0-9a-f]{{62}}\n"
                        + re.escape(NO_SPACE_HINT), result.stderr), result.stderr
    assert leftovers(work) == []
    assert (work / ".mvc" / "refs" / "heads" / "main").read_bytes() == head_before
    filler.unlink()
    mvc("commit", "-m", "v2")
    committed(mvc, work, {"v1": {"model.bin": random_bytes(200_000, seed=1)},
                          "main": {"model.bin": random_bytes(100_000, seed=2)}})


def test_tag_on_a_full_disk_exits_11_and_leaves_no_ref(disk_repo):
    mvc, work, disk = disk_repo
    filler = fill(disk)
    result = mvc("tag", "v2", ok=False)
    # the reflog line is written before the ref moves
    log = work / ".mvc" / "logs" / "refs" / "tags" / "v2"
    expect(result, 11, f"error: no space left on device while writing {log}\n" + NO_SPACE_HINT)
    assert leftovers(work) == []
    assert not (work / ".mvc" / "refs" / "tags" / "v2").exists()
    assert not log.exists() or log.read_bytes() == b""
    filler.unlink()
    assert mvc("tag").stdout.split()[0] == "v1"
    committed(mvc, work, {"v1": {"model.bin": random_bytes(200_000, seed=1)}})


def test_checkout_on_a_full_disk_exits_11_and_keeps_the_working_file_whole(disk_repo):
    mvc, work, disk = disk_repo
    write(work / "model.bin", random_bytes(300_000, seed=2))
    mvc("commit", "-a", "-m", "v2")
    filler = fill(disk)
    result = mvc("checkout", "v1", ok=False)
    expect(result, 11, f"error: no space left on device while writing {work / 'model.bin'}\n" + NO_SPACE_HINT)
    assert leftovers(work) == []
    assert (work / "model.bin").read_bytes() == random_bytes(300_000, seed=2)
    assert (work / ".mvc" / "HEAD").read_text() == "ref: refs/heads/main\n"
    filler.unlink()
    assert mvc("status", "--porcelain").stdout == ""
    committed(mvc, work, {"v1": {"model.bin": random_bytes(200_000, seed=1)},
                          "main": {"model.bin": random_bytes(300_000, seed=2)}})


def test_a_reflog_append_cut_short_by_a_full_disk_is_taken_back(small_disk):
    """A nearly full disk takes the start of a line and refuses the rest: the start would
    otherwise join the next line appended and lose both."""
    from modelvc.errors import NoSpaceError, from_os_error
    from modelvc.fsutil import append_line

    log = small_disk / "log"
    log.write_bytes(b"x" * 4090 + b"\n")  # 5 bytes left in its last page
    fill(small_disk)
    with pytest.raises(OSError) as caught:
        append_line(log, "a line longer than the five bytes left")
    assert isinstance(from_os_error(caught.value), NoSpaceError)
    assert str(caught.value.filename) == str(log)
    assert log.read_bytes() == b"x" * 4090 + b"\n"


def test_gc_still_runs_on_a_full_disk(disk_repo):
    """The lock is taken without recording its holder when even that page is missing."""
    mvc, work, disk = disk_repo
    fill(disk)
    mvc("gc")
    assert mvc("status", "--porcelain").stdout == ""


# ----------------------------------------------------------- item 8: permission denied


@pytest.fixture
def shared_dir():
    """A directory every user can reach (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="mvc-failures-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@functools.cache
def _public_copy_of_modelvc() -> str:
    """The modelvc package copied where every user can read it; removed when the tests end."""
    import modelvc

    directory = Path(tempfile.mkdtemp(prefix="mvc-source-"))
    directory.chmod(0o755)
    shutil.copytree(Path(modelvc.__file__).parent, directory / "modelvc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    atexit.register(shutil.rmtree, directory, True)
    return str(directory)


def run_mvc(cwd: Path, *args: str, user: int | None = None, umask: int = 0o022) -> subprocess.CompletedProcess:
    """The real `mvc`, in its own process, optionally as another user."""
    env = {**os.environ, "MVC_AUTHOR_NAME": "Test Author", "MVC_AUTHOR_EMAIL": "test@example.com",
           "HOME": str(cwd)}
    env.pop("MVC_DEBUG", None)
    # setpriv rather than Popen(user=): it keeps root's rights until the exec, so a Python
    # installed under /root (mode 0700) still starts, and then runs with none of them.
    become = [] if user is None else ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    if user is not None:  # this checkout may lie in a directory only root can read (a CI clone)
        env["PYTHONPATH"] = _public_copy_of_modelvc()
    return subprocess.run([*become, sys.executable, "-m", "modelvc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, umask=umask)


@pytest.fixture
def as_nobody(shared_dir: Path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run mvc as another user")
    probe = run_mvc(shared_dir, "--version", user=NOBODY)
    if probe.returncode != 0:
        message = f"user nobody cannot run this Python: {probe.stderr.strip()}"
        if os.environ.get("CI"):  # CI runs as root with setpriv: these tests must run there
            pytest.fail(message)
        pytest.skip(message)
    return shared_dir


def nobody_repo(directory: Path) -> Path:
    """A repository owned by nobody, with one commit of model.bin."""
    work = directory / "work"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    write(work / "model.bin", random_bytes(50_000, seed=1))
    os.chown(work / "model.bin", NOBODY, NOBODY)
    for args in (("init",), ("add", "model.bin"), ("commit", "-m", "v1")):
        assert run_mvc(work, *args, user=NOBODY).returncode == 0, args
    return work


def test_read_only_mvc_dir_gives_exit_12_naming_the_path(as_nobody):
    work = nobody_repo(as_nobody)
    write(work / "model.bin", random_bytes(50_000, seed=2))
    subprocess.run(["chmod", "-R", "a-w", str(work / ".mvc")], check=True)
    try:
        for args in (("add", "model.bin"), ("commit", "-a", "-m", "v2"), ("tag", "v2")):
            done = run_mvc(work, *args, user=NOBODY)
            assert (done.returncode, done.stderr) == (
                12, f"error: permission denied: {work / '.mvc' / 'lock'}\n" + DENIED_HINT), args
        done = run_mvc(work, "status", "--porcelain", user=NOBODY)  # reading needs no write access
        assert (done.returncode, done.stdout) == (0, " M model.bin\n")
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work / ".mvc")], check=True)
    assert leftovers(work) == []
    mvc = Mvc(work)
    committed(mvc, work, {"main": {"model.bin": random_bytes(50_000, seed=1)}})


def test_repository_of_another_user_gives_exit_12_and_stays_readable(as_nobody):
    work = as_nobody / "work"
    work.mkdir()
    mvc = Mvc(work)
    mvc("init")
    write(work / "model.bin", random_bytes(50_000, seed=1))
    mvc("add", "model.bin")
    mvc("commit", "-m", "v1")
    write(work / "model.bin", random_bytes(50_000, seed=2))
    mvc("add", "model.bin")
    before = {p: p.read_bytes() for p in (work / ".mvc").rglob("*") if p.is_file()}
    done = run_mvc(work, "commit", "-m", "v2", user=NOBODY)
    assert (done.returncode, done.stderr) == (
        12, f"error: permission denied: {work / '.mvc' / 'lock'}\n" + DENIED_HINT)
    os.utime(work / "model.bin", ns=(1, 1))  # status re-hashes it, and cannot cache the result
    for args in (("status", "--porcelain"), ("log", "--oneline"), ("fsck",)):
        assert run_mvc(work, *args, user=NOBODY).returncode == 0, args
    assert {p: p.read_bytes() for p in (work / ".mvc").rglob("*") if p.is_file()} == before
    committed(mvc, work, {"main": {"model.bin": random_bytes(50_000, seed=1)}})


def test_unreadable_working_file_gives_exit_12_naming_it(as_nobody):
    work = nobody_repo(as_nobody)
    secret = write(work / "secret.bin", b"not for nobody")
    secret.chmod(0o600)  # owned by root
    index_before = (work / ".mvc" / "index").read_bytes()
    done = run_mvc(work, "add", "secret.bin", user=NOBODY)
    assert (done.returncode, done.stderr) == (12, f"error: permission denied: {secret}\n" + DENIED_HINT)
    assert (work / ".mvc" / "index").read_bytes() == index_before
    assert leftovers(work) == []
    committed(Mvc(work), work, {"main": {"model.bin": random_bytes(50_000, seed=1)}})


def test_read_only_file_system_gives_exit_12(mvc, work):
    write(work / "model.bin", random_bytes(50_000, seed=1))
    mvc("add", "model.bin")
    mvc("commit", "-m", "v1")
    mvc_dir = str(work / ".mvc")
    if subprocess.run(["mount", "--bind", mvc_dir, mvc_dir], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", mvc_dir], check=True)
        write(work / "model.bin", random_bytes(50_000, seed=2))
        result = mvc("add", "model.bin", ok=False)
        expect(result, 12, f"error: read-only file system: {work / '.mvc' / 'lock'}\n" + DENIED_HINT)
    finally:
        subprocess.run(["umount", mvc_dir], check=True)
    committed(mvc, work, {"main": {"model.bin": random_bytes(50_000, seed=1)}})


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_repository_files_are_created_under_the_umask(shared_dir, umask):
    """As git's are: a group-shared repository (umask 002) gets group-writable files."""
    work = shared_dir / "work"
    work.mkdir()
    write(work / "model.bin", random_bytes(50_000, seed=1))
    for args in (("init",), ("add", "model.bin"), ("commit", "-m", "v1"), ("tag", "v1"), ("branch", "b"),
                 ("config", "user.name", "Shared")):
        assert run_mvc(work, *args, umask=umask).returncode == 0, args
    modes = {str(p.relative_to(work)): p.stat().st_mode & 0o777 for p in (work / ".mvc").rglob("*")}
    expected = {path: (0o777 if (work / path).is_dir() else 0o666) & ~umask for path in modes}
    assert modes == expected
    assert {".mvc/lock", ".mvc/index", ".mvc/refs/tags/v1", ".mvc/logs/HEAD"} <= set(modes)
    assert any(path.endswith(".pack") for path in modes) and any(path.endswith(".idx") for path in modes)


# -------------------------------------------------------- item 10: non-UTF-8 file names

BAD = os.fsdecode(b"bad\xff.bin")  # what the command line and os.listdir give for such a name


def test_adding_a_non_utf8_name_explicitly_is_refused_with_exit_2(mvc, work):
    write(work / BAD, b"x")
    index_before = (work / ".mvc" / "index").read_bytes() if (work / ".mvc" / "index").exists() else None
    result = mvc("add", BAD, ok=False)
    expect(result, 2, "error: cannot add 'bad\\xff.bin': its name is not valid UTF-8\n"
                      "hint: rename the file: modelvc stores file names as UTF-8\n")
    assert ((work / ".mvc" / "index").read_bytes() if (work / ".mvc" / "index").exists() else None) == index_before


def test_non_utf8_names_met_while_walking_are_skipped_with_a_warning(mvc, work):
    write(work / BAD, b"x")
    write(work / os.fsdecode(b"d\xfe") / "w.bin", b"y")
    write(work / "good.bin", b"good")
    warning = ("warning: skipping 'bad\\xff.bin': its name is not valid UTF-8 (rename it to track it)\n"
               "warning: skipping 'd\\xfe/w.bin': its name is not valid UTF-8 (rename it to track it)\n")
    status = mvc("status", "--porcelain")
    assert (status.stdout, status.stderr) == ("?? good.bin\n", warning)
    added = mvc("add", ".")
    assert added.stderr == warning
    assert added.stdout.splitlines()[0] == "add 'good.bin'"
    assert json.loads(mvc("status", "--json").stdout)["skipped"] == ["bad\\xff.bin", "d\\xfe/w.bin"]
    mvc("commit", "-m", "good only")  # never blocked by the name it could not store
    write(work / "good.bin", b"better")
    mvc("commit", "-a", "-m", "later")
    assert mvc("status", "--porcelain").stdout == ""
    committed(mvc, work, {"HEAD~1": {"good.bin": b"good"}, "main": {"good.bin": b"better"}})


# ------------------------------------------------------- item 11: damaged refs and config


@pytest.fixture
def repo_v1(mvc, work):
    write(work / "model.bin", random_bytes(50_000, seed=1))
    mvc("add", "model.bin")
    mvc("commit", "-m", "v1")
    mvc("tag", "v1")
    return mvc, work


@pytest.mark.parametrize("content", [b"ref: refs/heads/ma\xffin\n", b"\xff\xfe\n", b"garbage\n", b""])
def test_a_damaged_head_is_a_corrupt_ref_exit_7_found_by_fsck(repo_v1, content):
    mvc, work = repo_v1
    head = work / ".mvc" / "HEAD"
    head.write_bytes(content)
    message = f"{head} is missing or corrupt"
    hint = "hint: it should hold 'ref: refs/heads/<branch>' or a commit id\n"
    expect(mvc("status", ok=False), 7, f"error: {message}\n{hint}")
    fsck = mvc("fsck", ok=False)
    expect(fsck, 7, f"corrupt HEAD: {message}\nerror: 1 problem found\n")
    head.write_bytes(b"ref: refs/heads/main\n")
    committed(mvc, work, {"v1": {"model.bin": random_bytes(50_000, seed=1)}})


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/tags/v1"])
def test_a_non_utf8_ref_is_a_corrupt_ref_exit_7_found_by_fsck_and_gc_refuses(repo_v1, ref):
    mvc, work = repo_v1
    path = work / ".mvc" / ref
    good = path.read_bytes()
    path.write_bytes(good[:10] + b"\xff" + good[11:])
    shown = good[:10].decode() + chr(0xfffd) + good[11:-1].decode()
    message = f"ref {ref} is corrupt: it holds {shown!r} instead of a commit id"
    hint = "hint: run 'mvc fsck', then point it at a good commit from 'mvc reflog'\n"
    expect(mvc("branch" if "heads" in ref else "tag", ok=False), 7, f"error: {message}\n{hint}")
    expect(mvc("fsck", ok=False), 7, f"corrupt {ref}: {message}\nerror: 1 problem found\n")
    gc = mvc("gc", ok=False)
    assert gc.exit_code == 7 and gc.stderr.startswith("error: gc refused:"), gc.stderr
    path.write_bytes(good)
    committed(mvc, work, {"v1": {"model.bin": random_bytes(50_000, seed=1)}})


def edit_config(work: Path, change) -> bytes:
    path = work / ".mvc" / "config"
    original = path.read_bytes()
    config = json.loads(original)
    change(config)
    path.write_text(json.dumps(config))
    return original


@pytest.mark.parametrize("change, problem", [
    (lambda c: c["chunking"].pop("cdc_avg"), "chunking: missing keys ['cdc_avg']"),
    (lambda c: c["chunking"].update(block_size="1048576"), "chunking: block_size must be int, not '1048576'"),
    (lambda c: c.update(chunking=[1, 2]), "chunking must be an object, not [1, 2]"),
    (lambda c: c.pop("chunking"), "it has no chunking section"),
    (lambda c: c.update(delta_max_depth=-1), "delta_max_depth must be an integer >= 0, not -1"),
])
def test_a_damaged_config_key_is_a_config_error_exit_14_found_by_fsck(repo_v1, change, problem):
    mvc, work = repo_v1
    original = edit_config(work, change)
    message = f"the repository config {work / '.mvc' / 'config'} is damaged: {problem}"
    hint = "hint: repair it by hand (docs/format.md describes every key), or restore it from a backup\n"
    write(work / "model.bin", random_bytes(50_000, seed=2))
    expect(mvc("add", "model.bin", ok=False), 14, f"error: {message}\n{hint}")
    mvc("log")  # reading history needs none of these keys
    expect(mvc("fsck", ok=False), 7, f"corrupt config: {message}\nerror: 1 problem found\n")
    (work / ".mvc" / "config").write_bytes(original)
    committed(mvc, work, {"v1": {"model.bin": random_bytes(50_000, seed=1)}})


@pytest.mark.parametrize("content, problem", [
    (b"\xff\xfe{", "it is not UTF-8 text"),
    (b'{"format_version": 2', "it is not valid JSON (Expecting ',' delimiter: line 1 column 21 (char 20))"),
    (b"[]", "it has no format_version"),
    (b'{"format_version": "2"}', "format_version must be an integer, not '2'"),
])
def test_an_unreadable_config_stops_every_command_with_exit_14(repo_v1, content, problem):
    mvc, work = repo_v1
    path = work / ".mvc" / "config"
    original = path.read_bytes()
    path.write_bytes(content)
    message = f"the repository config {path} is damaged: {problem}"
    hint = "hint: repair it by hand (docs/format.md describes every key), or restore it from a backup\n"
    for args in (("status",), ("fsck",)):
        expect(mvc(*args, ok=False), 14, f"error: {message}\n{hint}")
    path.write_bytes(original)
    committed(mvc, work, {"v1": {"model.bin": random_bytes(50_000, seed=1)}})


# -------------------------------------------------- item 12: MVC_LOCK_TIMEOUT; item 13: ''


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "", "soon", "1e400"])
def test_a_bad_lock_timeout_is_a_usage_error(repo_v1, monkeypatch, value):
    mvc, work = repo_v1
    monkeypatch.setenv("MVC_LOCK_TIMEOUT", value)
    write(work / "model.bin", random_bytes(50_000, seed=2))
    expect(mvc("add", "model.bin", ok=False), 2,
           f"error: MVC_LOCK_TIMEOUT must be a finite number of seconds >= 0, not '{value}'\n"
           "hint: unset it to wait the default 30 s\n")
    monkeypatch.setenv("MVC_LOCK_TIMEOUT", "0")
    mvc("add", "model.bin")


@pytest.mark.parametrize("args, what", [
    (("branch", ""), "branch"), (("tag", ""), "tag"), (("checkout", "-b", ""), "branch"),
    (("branch", "-d", ""), "branch"), (("tag", "-d", ""), "tag"),
])
def test_an_empty_branch_or_tag_name_is_invalid_exit_10(repo_v1, args, what):
    mvc, work = repo_v1
    refs_before = sorted(p.name for p in (work / ".mvc" / "refs").rglob("*"))
    expect(mvc(*args, ok=False), 10, f"error: invalid {what} name '': is empty\n")
    assert sorted(p.name for p in (work / ".mvc" / "refs").rglob("*")) == refs_before
    committed(mvc, work, {"v1": {"model.bin": random_bytes(50_000, seed=1)}})


def test_chunking_parameters_other_than_the_formats_own_are_damage(mvc, work):
    """A flipped digit can leave a valid-looking value: dedup would silently cut elsewhere."""
    write(work / "m.bin", b"m" * 1000)
    mvc("add", "m.bin")
    config_path = work / ".mvc" / "config"
    config = json.loads(config_path.read_text())
    config["chunking"]["cdc_avg"] = 272144
    config_path.write_text(json.dumps(config))
    write(work / "n.bin", b"n" * 1000)
    result = mvc("add", "n.bin", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        14, f"error: the repository config {config_path} is damaged: "
            "chunking: cdc_avg is 272144, format version 3 fixes 262144")
    assert mvc("fsck", ok=False).exit_code == 7
