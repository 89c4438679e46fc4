import pytest

from modelvc.errors import UnknownRevisionError
from modelvc.refs import Refs
from modelvc.revparse import resolve, split_rev_path


def oid(prefix: str) -> str:
    return prefix + "0" * (64 - len(prefix))


ROOT = oid("1111")
SECOND = oid("2222")
THIRD = oid("3333")
SIDE = oid("5151")
MERGE = oid("4444")
TIP = oid("5555")
TAG_OBJECT = oid("7a90")
UNBORN_HINT = "make the first commit with 'mvc commit'"
UNKNOWN_HINT = "list commits with 'mvc log', names with 'mvc branch' and 'mvc tag'"


class FakeGraph:
    """root <- second <- third <- merge(third, side) <- tip ; root <- side"""

    def __init__(self, parents=None, tags=None):
        self.parent_map = parents or {
            ROOT: [],
            SECOND: [ROOT],
            THIRD: [SECOND],
            SIDE: [ROOT],
            MERGE: [THIRD, SIDE],
            TIP: [MERGE],
        }
        self.tag_objects = tags or {TAG_OBJECT: THIRD}

    def parents(self, commit_id):
        return list(self.parent_map[commit_id])

    def peel(self, object_id):
        if object_id in self.tag_objects:
            return self.tag_objects[object_id]
        if object_id in self.parent_map:
            return object_id
        raise UnknownRevisionError(f"object {object_id[:10]} is not a commit")

    def commits_with_prefix(self, prefix):
        return [c for c in self.parent_map if c.startswith(prefix)]


@pytest.fixture
def refs(tmp_path):
    r = Refs(tmp_path / ".mvc", lambda: ("T", "t@example.com"))
    r.set_head_branch("main", "init")
    return r


@pytest.fixture
def repo(refs):
    refs.update("refs/heads/main", TIP, None, "x")
    refs.update("refs/heads/side", SIDE, None, "x")
    refs.update("refs/tags/v1", SECOND, None, "lightweight tag")
    refs.update("refs/tags/v2", TAG_OBJECT, None, "annotated tag")
    return refs


@pytest.mark.parametrize(
    ("rev", "expected"),
    [
        ("HEAD", TIP),
        ("@", TIP),
        ("main", TIP),
        ("side", SIDE),
        ("v1", SECOND),
        ("v2", THIRD),  # an annotated tag peels to its commit
        ("refs/heads/side", SIDE),
        ("heads/side", SIDE),  # refs/<rev>
        ("tags/v1", SECOND),
        (THIRD, THIRD),
        (THIRD.upper(), THIRD),
        ("3333", THIRD),
        ("33330000", THIRD),
        ("5151", SIDE),
        ("HEAD~", MERGE),
        ("HEAD^", MERGE),
        ("HEAD~1", MERGE),
        ("HEAD~2", THIRD),
        ("HEAD^^", THIRD),
        ("HEAD~4", ROOT),
        ("HEAD^0", TIP),
        ("HEAD~0", TIP),
        ("HEAD~1^2", SIDE),
        ("main~1^1~1", SECOND),
        ("HEAD~1^2~1", ROOT),
        ("@~2^", SECOND),
        ("v2~2", ROOT),
        ("side^0~1", ROOT),
    ],
)
def test_resolves(repo, rev, expected):
    assert resolve(rev, repo, FakeGraph()) == expected


def test_documented_example_head_2_caret_2_tilde_1(refs):
    names = ["base", "side1", "merge1", "side2", "side3", "merge2", "tip"]
    ids = {name: oid(f"{i:04x}") for i, name in enumerate(names, 0xA000)}
    parents = {
        ids["base"]: [],
        ids["side1"]: [ids["base"]],
        ids["merge1"]: [ids["base"], ids["side1"]],
        ids["side2"]: [ids["base"]],
        ids["side3"]: [ids["side2"]],
        ids["merge2"]: [ids["merge1"], ids["side3"]],
        ids["tip"]: [ids["merge2"]],
    }
    refs.update("refs/heads/main", ids["tip"], None, "x")
    graph = FakeGraph(parents, {})
    assert resolve("HEAD~2", refs, graph) == ids["merge1"]
    assert resolve("HEAD~2^2", refs, graph) == ids["side1"]
    assert resolve("HEAD~2^2~1", refs, graph) == ids["base"]
    assert resolve("HEAD~1^2~1", refs, graph) == ids["side2"]


def test_name_lookup_order_follows_git(repo):
    graph = FakeGraph()
    repo.update("refs/heads/v1", TIP, None, "branch named like a tag")
    assert resolve("v1", repo, graph) == SECOND  # refs/tags before refs/heads
    assert resolve("heads/v1", repo, graph) == TIP
    repo.update("refs/heads/3333", SIDE, None, "branch named like an id prefix")
    assert resolve("3333", repo, graph) == SIDE  # names before id prefixes
    repo.update("refs/v1", ROOT, None, "top-level ref")
    assert resolve("v1", repo, graph) == ROOT  # refs/<rev> first of all


def expect_error(rev, refs, graph=None):
    with pytest.raises(UnknownRevisionError) as caught:
        resolve(rev, refs, graph or FakeGraph())
    return caught.value


@pytest.mark.parametrize(
    "rev",
    ["nope", "nope~1", "HEAD~x", "~1", "^", "main@{x}", "../config", "abc", "9999", "HEAD:x", ""],
)
def test_unknown_revisions(repo, rev):
    error = expect_error(rev, repo)
    assert str(error) == f"unknown revision '{rev}'"
    assert error.hint == UNKNOWN_HINT
    assert error.exit_code == 4


def test_ambiguous_prefix_lists_sorted_short_ids(refs):
    first, second = oid("abcd12"), oid("abcd01")
    graph = FakeGraph({first: [], second: []}, {})
    error = expect_error("abcd", refs, graph)
    assert str(error) == "short id 'abcd' is ambiguous: it matches abcd010000, abcd120000"
    assert resolve("abcd1", refs, graph) == first


def test_ambiguous_prefix_lists_at_most_five(refs):
    graph = FakeGraph({oid(f"beef{i}"): [] for i in range(7)}, {})
    error = expect_error("beef", refs, graph)
    assert str(error) == (
        "short id 'beef' is ambiguous: it matches beef000000, beef100000, beef200000, "
        "beef300000, beef400000 and 2 more"
    )


@pytest.mark.parametrize("rev", ["HEAD~5", "HEAD~99", "main~4^", "v1~2", "side~1^1", "1111^"])
def test_going_past_the_root(repo, rev):
    error = expect_error(rev, repo)
    assert str(error) == f"revision '{rev}' goes past the first commit"


def test_missing_second_parent(repo):
    error = expect_error("HEAD^2", repo)
    assert str(error) == "commit 5555000000 has no parent 2"
    error = expect_error("HEAD~1^3", repo)
    assert str(error) == "commit 4444000000 has no parent 3"


def test_unborn_branch(refs):
    for rev in ("HEAD", "@~1"):
        error = expect_error(rev, refs)
        assert str(error) == "HEAD does not point to a commit yet (branch 'main' has no commits)"
        assert error.hint == UNBORN_HINT


def test_detached_head_resolves(repo):
    repo.set_head_detached(SIDE, "checkout")
    assert resolve("HEAD~1", repo, FakeGraph()) == ROOT


def test_full_id_that_is_not_a_commit_is_reported_by_the_graph(repo):
    error = expect_error(oid("dead"), repo)
    assert str(error) == "object dead000000 is not a commit"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("v1:model.safetensors", ("v1", "model.safetensors")),
        ("HEAD~2:dir/sub/w.bin", ("HEAD~2", "dir/sub/w.bin")),
        ("main", ("main", None)),
        ("v1:", ("v1", "")),
        ("v1:a:b", ("v1", "a:b")),
    ],
)
def test_split_rev_path(spec, expected):
    assert split_rev_path(spec) == expected


def test_split_rev_path_needs_a_revision():
    with pytest.raises(UnknownRevisionError) as caught:
        split_rev_path(":model.safetensors")
    assert str(caught.value) == "missing revision before ':' in ':model.safetensors'"


def test_reflog_selectors_name_where_a_ref_was(refs):
    graph = FakeGraph()
    refs.update("refs/heads/main", ROOT, None, "commit (initial)")
    refs.update("refs/heads/main", SECOND, ROOT, "commit")
    refs.update("refs/heads/side", SIDE, None, "branch")
    refs.set_head_branch("side", "checkout: moving from main to side")
    assert resolve("main@{0}", refs, graph) == SECOND
    assert resolve("main@{1}", refs, graph) == ROOT
    assert resolve("HEAD@{0}", refs, graph) == SIDE  # the checkout
    assert resolve("HEAD@{1}", refs, graph) == SECOND
    assert resolve("HEAD@{2}", refs, graph) == ROOT
    assert resolve("@{0}", refs, graph) == SIDE  # the current branch's reflog
    assert resolve("main@{0}~1", refs, graph) == ROOT
    error = expect_error("main@{2}", refs, graph)
    assert (str(error), error.exit_code) == ("log for 'main' only has 2 entries", 4)
    error = expect_error("ghost@{0}", refs, graph)
    assert str(error) == "no reflog for 'ghost'"
