"""mvc remote: git's names, messages and exit codes; the probe for conditional writes against
real servers (SeaweedFS, Azurite, a directory); no secret ever reaches .mvc/config."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import Mvc


def config_of(work) -> dict:
    return json.loads((work / ".mvc" / "config").read_text())


@pytest.fixture
def directory_remote(tmp_path):
    path = tmp_path / "remote-dir"
    path.mkdir()
    return path


def test_add_list_verbose_and_json(mvc, work, directory_remote):
    assert mvc("remote").stdout == ""
    assert mvc("remote", "add", "origin", str(directory_remote)).stdout == ""
    mvc("remote", "add", "backup", f"file://{directory_remote}", "--no-check")
    assert mvc("remote").stdout == "backup\norigin\n"
    assert mvc("remote", "-v").stdout == (f"backup\tfile://{directory_remote} (fetch)\n"
                                          f"backup\tfile://{directory_remote} (push)\n"
                                          f"origin\t{directory_remote} (fetch)\n"
                                          f"origin\t{directory_remote} (push)\n")
    listed = mvc.json("remote")
    assert listed == [
        {"name": "backup", "url": f"file://{directory_remote}", "endpoint": None, "region": None,
         "path_style": None, "conditional_writes": None, "allow_unconditional_push": False, "partial": False},
        {"name": "origin", "url": str(directory_remote), "endpoint": None, "region": None,
         "path_style": None, "conditional_writes": True, "allow_unconditional_push": False, "partial": False},
    ]
    assert config_of(work)["remote"] == {"backup": {"url": f"file://{directory_remote}"},
                                         "origin": {"url": str(directory_remote), "conditionalWrites": True}}
    assert list(directory_remote.iterdir()) == []  # the probe key was deleted, no folder left


def test_a_relative_directory_is_stored_absolute(mvc, work):
    (work.parent / "shared").mkdir()
    mvc("remote", "add", "origin", "../shared")
    assert config_of(work)["remote"]["origin"]["url"] == str(work.parent / "shared")


def test_duplicate_and_unknown_names_as_git(mvc, work, directory_remote):
    mvc("remote", "add", "origin", str(directory_remote))
    before = (work / ".mvc" / "config").read_bytes()
    cases = [(("remote", "add", "origin", "/elsewhere", "--no-check"), 3, "error: remote origin already exists.\n"),
             (("remote", "remove", "upstream"), 2, "error: No such remote: 'upstream'\n"),
             (("remote", "rm", "upstream"), 2, "error: No such remote: 'upstream'\n"),
             (("remote", "rename", "upstream", "x"), 2, "error: No such remote: 'upstream'\n"),
             (("remote", "set-url", "upstream", "/x"), 2, "error: No such remote 'upstream'\n"),
             (("remote", "get-url", "upstream"), 2,
              "error: No such remote: 'upstream'\nhint: the remotes are: origin\n")]
    for args, code, message in cases:
        result = mvc(*args, ok=False)
        assert (result.exit_code, result.stderr) == (code, message), args
    mvc("remote", "add", "second", "/x", "--no-check")
    result = mvc("remote", "rename", "second", "origin", ok=False)
    assert (result.exit_code, result.stderr) == (3, "error: remote origin already exists.\n")
    assert config_of(work)["remote"]["origin"] == json.loads(before)["remote"]["origin"]


@pytest.mark.parametrize("name, problem", [("a b", "contains a space"), ("my.server", "contains '.'"),
                                           ("team/a", "contains '/'"), ("-x", None)])
def test_invalid_remote_names(mvc, work, name, problem):
    result = mvc("remote", "add", "--no-check", "--", name, "/x", ok=False)
    assert result.exit_code == 10 and result.stderr.startswith(f"error: invalid remote name '{name}'")
    if problem:
        assert problem in result.stderr
    assert "remote" not in config_of(work)


def test_rename_remove_and_set_url(mvc, work, directory_remote):
    mvc("remote", "add", "origin", "s3://bucket/models", "--endpoint", "http://127.0.0.1:9/", "--region",
        "eu-west-1", "--path-style", "--no-check")
    mvc("remote", "rename", "origin", "upstream")
    assert config_of(work)["remote"] == {"upstream": {"url": "s3://bucket/models", "endpoint": "http://127.0.0.1:9",
                                                      "region": "eu-west-1", "pathStyle": True}}
    mvc("remote", "set-url", "upstream", "s3://other/prefix", "--no-check")
    assert mvc("remote", "get-url", "upstream").stdout == "s3://other/prefix\n"
    assert config_of(work)["remote"]["upstream"] == {"url": "s3://other/prefix", "endpoint": "http://127.0.0.1:9",
                                                     "region": "eu-west-1", "pathStyle": True}
    mvc("remote", "add", "local", "/nowhere", "--no-check")
    mvc("remote", "set-url", "local", str(directory_remote))  # checked: now it has conditional writes
    assert config_of(work)["remote"]["local"] == {"url": str(directory_remote), "conditionalWrites": True}
    mvc("remote", "remove", "upstream")
    mvc("remote", "remove", "local")
    assert "remote" not in config_of(work) and mvc("remote").stdout == ""


@pytest.mark.parametrize("url", ["s3://AKIAKEY:secret@bucket/p", "az://container/p?sv=2020&sig=abc",
                                 "s3://bucket/p#frag"])
def test_urls_with_credentials_are_refused(mvc, work, url):
    result = mvc("remote", "add", "--no-check", "origin", url, ok=False)
    assert result.exit_code == 2
    assert "carries a user, password or query" in result.stderr and "secret" not in result.stderr
    assert "remote" not in config_of(work)
    assert mvc("config", "remote.x.url", url, ok=False).exit_code == 14


@pytest.mark.parametrize("url, message", [
    ("ftp://host/x", "error: unsupported remote URL scheme 'ftp://'"),
    ("s3://", "error: the remote URL 's3://' names no bucket"),
    ("az:///p", "error: the remote URL 'az:///p' names no container"),
    ("s3://b/a/../c", "error: the remote URL 's3://b/a/../c' has an unusable prefix 'a/../c'"),
    ("file://host/x", "error: a file:// URL names a local directory, not the host 'host'"),
])
def test_bad_urls(mvc, url, message):
    result = mvc("remote", "add", "--no-check", "origin", url, ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (2, message)


def test_settings_that_do_not_apply_are_refused(mvc):
    result = mvc("remote", "add", "--no-check", "origin", "/x", "--endpoint", "http://h", ok=False)
    assert result.exit_code == 2 and "for s3:// and az:// remotes" in result.stderr
    result = mvc("remote", "add", "--no-check", "origin", "az://c/p", "--path-style", ok=False)
    assert result.exit_code == 2 and "for s3:// remotes" in result.stderr
    result = mvc("remote", "add", "--no-check", "origin", "s3://c/p", "--endpoint", "ftp://h", ok=False)
    assert result.exit_code == 2 and "is not an http:// or https:// URL" in result.stderr


def test_an_unreachable_remote_is_exit_16_unless_no_check(mvc, work, monkeypatch, tmp_path):
    result = mvc("remote", "add", "origin", str(tmp_path / "absent"), ok=False)
    assert (result.exit_code, result.stderr) == (
        16, f"error: cannot reach remote 'origin': no such directory {tmp_path / 'absent'}\n"
            "hint: create it, or add the remote with --no-check\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")  # credentials present: only the endpoint is wrong
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-used")
    from servers import free_ports

    (closed,) = free_ports(1)  # nothing listens there
    result = mvc("remote", "add", "origin", "s3://bucket/p", "--endpoint", f"http://127.0.0.1:{closed}", ok=False)
    assert result.exit_code == 16
    assert result.stderr.startswith("error: cannot reach remote 'origin': s3://bucket/p: ")
    assert "remote" not in config_of(work)
    mvc("remote", "add", "origin", "s3://bucket/p", "--endpoint", f"http://127.0.0.1:{closed}", "--no-check")
    assert config_of(work)["remote"]["origin"] == {"url": "s3://bucket/p", "endpoint": f"http://127.0.0.1:{closed}"}


def test_azure_without_an_account_in_the_environment_is_unreachable(mvc, work, monkeypatch):
    for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = mvc("remote", "add", "origin", "az://container/p", "--endpoint", "http://127.0.0.1:9/a", ok=False)
    assert result.exit_code == 16
    assert result.stderr.startswith("error: cannot reach remote 'origin': az://container/p: ")
    assert "Account must be specified" in result.stderr  # obstore's words for the missing account
    assert "remote" not in config_of(work)


def test_a_read_only_directory_is_unreachable(mvc, directory_remote):
    import os

    if os.geteuid() == 0:  # root writes anyway: use a file where the directory should be
        (directory_remote / "file").write_bytes(b"x")
        target = directory_remote / "file"
        result = mvc("remote", "add", "origin", str(target), ok=False)
        assert result.exit_code == 16 and "no such directory" in result.stderr
        return
    directory_remote.chmod(0o555)
    result = mvc("remote", "add", "origin", str(directory_remote), ok=False)
    assert result.exit_code == 16 and result.stderr.startswith("error: cannot write to remote 'origin'")


def test_s3_remote_probed_and_no_secret_reaches_the_config(mvc, work, seaweedfs, monkeypatch):
    for name, value in seaweedfs.env.items():
        monkeypatch.setenv(name, value)
    url = f"s3://{seaweedfs.extra['bucket']}/remote-add/{work.parent.name}"
    mvc("remote", "add", "origin", url, "--endpoint", seaweedfs.endpoint, "--region", "us-east-1", "--path-style")
    assert config_of(work)["remote"]["origin"] == {"url": url, "endpoint": seaweedfs.endpoint,
                                                   "region": "us-east-1", "pathStyle": True,
                                                   "conditionalWrites": True}
    text = (work / ".mvc" / "config").read_text()
    for value in seaweedfs.env.values():
        assert value not in text
    from modelvc.ops.remote import get_remote
    from modelvc.remotes import open_backend
    from modelvc.repo import Repo

    with Repo.discover(work) as repo:
        assert open_backend(get_remote(repo, "origin")).list("") == []  # the probe key is gone
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    result = mvc("remote", "set-url", "origin", url + "-2", ok=False)
    assert result.exit_code == 16 and "wrong" not in result.stderr
    assert config_of(work)["remote"]["origin"]["url"] == url


def test_azure_remote_probed_and_no_secret_reaches_the_config(mvc, work, azurite, monkeypatch):
    for name, value in azurite.env.items():
        monkeypatch.setenv(name, value)
    url = f"az://{azurite.extra['container']}/remote-add"
    mvc("remote", "add", "origin", url, "--endpoint", azurite.endpoint)
    assert config_of(work)["remote"]["origin"] == {"url": url, "endpoint": azurite.endpoint,
                                                   "conditionalWrites": True}
    text = (work / ".mvc" / "config").read_text()
    assert azurite.env["AZURE_STORAGE_ACCOUNT_KEY"] not in text


class _UnconditionalS3(BaseHTTPRequestHandler):
    """An S3-like server that ignores If-None-Match, as servers without conditional writes do."""

    objects: dict[str, bytes] = {}

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), "ETag": '"e"',
                            "Last-Modified": formatdate(usegmt=True), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self) -> None:  # noqa: N802 - http.server's names
        self.objects[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(200)

    def do_HEAD(self) -> None:  # noqa: N802
        found = self.objects.get(self.path)
        self._answer(404) if found is None else self._answer(200, headers={"Content-Length": str(len(found))})

    def do_DELETE(self) -> None:  # noqa: N802
        self.objects.pop(self.path, None)
        self._answer(204)

    def do_POST(self) -> None:  # noqa: N802 - a bulk delete (POST /bucket?delete), as obstore sends one
        import re

        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        bucket = self.path.partition("?")[0]
        keys = re.findall(r"<Key>(.*?)</Key>", body)
        for key in keys:
            self.objects.pop(f"{bucket}/{key}", None)
        deleted = "".join(f"<Deleted><Key>{key}</Key></Deleted>" for key in keys)
        self._answer(200, f'<?xml version="1.0" encoding="UTF-8"?><DeleteResult '
                          f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{deleted}</DeleteResult>'.encode())

    def log_message(self, *args) -> None:
        pass


def test_a_remote_without_conditional_writes_is_marked(mvc, work, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-used")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _UnconditionalS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        result = mvc("remote", "add", "old", "s3://bucket/p", "--endpoint", endpoint, "--path-style")
    finally:
        server.shutdown()
        server.server_close()
    assert result.stderr == ("warning: remote 'old' does not refuse a second create-only write (no conditional "
                             "writes): pushes to it will be refused unless "
                             "'mvc config remote.old.allowUnconditionalPush true'\n")
    assert config_of(work)["remote"]["old"]["conditionalWrites"] is False
    assert _UnconditionalS3.objects == {}  # the probe key was deleted
    mvc("config", "remote.old.allowUnconditionalPush", "true")
    assert mvc.json("remote")[0]["allow_unconditional_push"] is True
    assert mvc("config", "remote.old.allowUnconditionalPush", "maybe", ok=False).exit_code == 14
    assert mvc("config", "remote.old.conditionalWrites", "true", ok=False).exit_code == 14


def test_a_damaged_remote_section_is_a_config_error_and_kept(mvc, work):
    config = config_of(work)
    config["remote"] = ["not", "an", "object"]
    (work / ".mvc" / "config").write_text(json.dumps(config))
    result = mvc("remote", "add", "origin", "/x", "--no-check", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        14, "error: corrupt config: 'remote' in .mvc/config is not an object")
    assert config_of(work)["remote"] == ["not", "an", "object"]
    assert mvc("remote").stdout == ""


def test_remote_options_go_with_the_list(mvc):
    result = mvc("remote", "-v", "remove", "x", ok=False)
    assert result.exit_code == 2


def test_no_command_outside_remotes_imports_obstore(mvc, work, directory_remote):
    mvc("remote", "add", "origin", str(directory_remote))
    script = ("import sys\nfrom modelvc.cli.main import main\ntry:\n    main()\nexcept SystemExit as exit:\n"
              "    print('obstore' in sys.modules, exit.code or 0)\n")
    for args in (["status"], ["remote", "-v"], ["log"]):
        result = subprocess.run([sys.executable, "-c", script, *args], cwd=work, capture_output=True, text=True)
        assert result.stdout.split()[-2] == "False", (args, result.stdout, result.stderr)


def test_help_lists_remote(mvc_runner: Mvc):
    assert "remote" in mvc_runner("--help").stdout
