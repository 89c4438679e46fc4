import pytest

from modelvc.errors import RefError
from modelvc.refname import check_ref_name, is_valid_ref_name


@pytest.mark.parametrize(
    "name",
    [
        "main", "feature/x", "v1.0", "a-b_c", "release/2024/q1",
        "x@y", "@home", "a.lock-free", "Héllo",
    ],
)
def test_valid_names_pass(name):
    check_ref_name(name)
    assert is_valid_ref_name(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "is empty"),
        ("HEAD", "'HEAD' is reserved"),
        ("@", "'@' alone is reserved"),
        ("a..b", "contains '..'"),
        ("my branch", "contains a space"),
        ("a\tb", "contains a control character"),
        ("a\x00b", "contains a control character"),
        ("a\x7fb", "contains a control character"),
        ("a~1", "contains '~'"),
        ("a^", "contains '^'"),
        ("a:b", "contains ':'"),
        ("a?", "contains '?'"),
        ("a*", "contains '*'"),
        ("a[0]", "contains '['"),
        ("a\\b", "contains '\\'"),
        ("a@{1}", "contains '@{'"),
        ("a//b", "contains '//'"),
        ("-x", "starts with '-'"),
        (".x", "starts with '.'"),
        ("/x", "starts with '/'"),
        ("x/", "ends with '/'"),
        ("x.", "ends with '.'"),
        ("x.lock", "ends with '.lock'"),
        ("a/.b", "component '.b' starts with '.'"),
        ("a.lock/b", "component 'a.lock' ends with '.lock'"),
    ],
)
def test_each_rule_has_its_exact_message(name, reason):
    with pytest.raises(RefError) as caught:
        check_ref_name(name)
    assert str(caught.value) == f"invalid branch name '{name}': {reason}"
    assert caught.value.message == str(caught.value)
    assert not is_valid_ref_name(name)


def test_message_names_the_kind_of_ref():
    with pytest.raises(RefError) as caught:
        check_ref_name("v1..2", "tag")
    assert str(caught.value) == "invalid tag name 'v1..2': contains '..'"


def test_head_is_only_reserved_as_a_whole_name():
    check_ref_name("HEADS")
    check_ref_name("team/HEAD")
