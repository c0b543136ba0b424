"""Loading policy files: the bundled default, and every malformed file refused with its line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.core.config import BUNDLED_POLICY
from app.orders.models import Instrument
from app.policy.models import (
    LoadedPolicy,
    Policy,
    PolicyError,
    key_lines,
    line_of,
    load_policy,
    parse_policy,
)
from app.records.categories import Category

#: A valid policy with every section written out; faults are spliced into it by line.
VALID = """\
version = "test-1"
accepted_instruments = ["court_order", "search_warrant"]
require_good_cause = true
max_order_lifetime_days = 90
clock_skew_seconds = 60

[categories.circulation]
forbidden_fields = ["due_date"]

[purposes.legal_process]
requires_order = true

[transparency]
public = false
banded_instruments = ["national_security_letter", "fisa_order"]
band_width = 250

[counsel]
require_approval = false

[legal_holds]
margin_days = 365
"""


def _replace_line(number: int, text: str) -> str:
    lines = VALID.splitlines()
    lines[number - 1] = text
    return "\n".join(lines) + "\n"


def _insert_after(number: int, text: str) -> str:
    lines = VALID.splitlines()
    lines.insert(number, text)
    return "\n".join(lines) + "\n"


def _load(tmp_path: Path, text: str) -> LoadedPolicy:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path)


def test_valid_fixture_loads(tmp_path: Path) -> None:
    loaded = _load(tmp_path, VALID)
    assert loaded.policy.version == "test-1"
    assert loaded.forbidden_fields == {Category.CIRCULATION: frozenset({"due_date"})}


MALFORMED = [
    # (id, text, line, words the message must hold)
    ("unknown-top-level-key", _insert_after(5, "colour = 1"), 6, ["colour", "Extra inputs"]),
    (
        "unknown-table",
        _insert_after(22, "[emergency_access]\nenabled = true"),
        23,
        ["emergency_access"],
    ),
    (
        "unknown-key-in-table",
        _replace_line(19, "require_aproval = false"),
        19,
        ["counsel.require_aproval"],
    ),
    (
        "wrong-type-quoted-number",
        _replace_line(4, 'max_order_lifetime_days = "90"'),
        4,
        ["max_order_lifetime_days", "integer"],
    ),
    (
        "wrong-type-float",
        _replace_line(5, "clock_skew_seconds = 60.0"),
        5,
        ["clock_skew_seconds", "integer"],
    ),
    (
        "wrong-type-bool-as-int",
        _replace_line(22, "margin_days = true"),
        22,
        ["legal_holds.margin_days"],
    ),
    (
        "wrong-type-string-bool",
        _replace_line(14, 'public = "no"'),
        14,
        ["transparency.public", "boolean"],
    ),
    (
        "wrong-type-fields-not-list",
        _replace_line(8, 'forbidden_fields = "due_date"'),
        8,
        ["categories.circulation.forbidden_fields"],
    ),
    ("wrong-type-version", _replace_line(1, "version = 1"), 1, ["version", "string"]),
    (
        "unknown-category",
        _replace_line(7, "[categories.emails]"),
        7,
        ["categories.emails", "not a known name"],
    ),
    (
        "unknown-instrument",
        _replace_line(2, 'accepted_instruments = ["court_order", "writ"]'),
        2,
        ["accepted_instruments[1]", "court_order"],
    ),
    (
        "unknown-banded-instrument",
        _replace_line(15, 'banded_instruments = ["letter"]'),
        15,
        ["transparency.banded_instruments[0]"],
    ),
    (
        "lifetime-zero",
        _replace_line(4, "max_order_lifetime_days = 0"),
        4,
        ["max_order_lifetime_days", "greater than or equal to 1"],
    ),
    (
        "lifetime-too-long",
        _replace_line(4, "max_order_lifetime_days = 367"),
        4,
        ["max_order_lifetime_days", "less than or equal to 366"],
    ),
    ("skew-negative", _replace_line(5, "clock_skew_seconds = -1"), 5, ["clock_skew_seconds"]),
    (
        "skew-too-large",
        _replace_line(5, "clock_skew_seconds = 601"),
        5,
        ["clock_skew_seconds", "600"],
    ),
    ("band-width-zero", _replace_line(16, "band_width = 0"), 16, ["transparency.band_width"]),
    (
        "no-good-cause",
        _replace_line(3, "require_good_cause = false"),
        3,
        ["require_good_cause must be true", "good cause based on specific facts"],
    ),
    (
        "purpose-bad-name",
        _replace_line(10, '[purposes."Legal Process"]'),
        10,
        ["purposes.Legal Process", "not a known name"],
    ),
    ("version-missing", _replace_line(1, "# no version"), 1, ["version", "Field required"]),
    (
        "forbidden-field-bad-name",
        _replace_line(8, 'forbidden_fields = ["due date"]'),
        8,
        ["categories.circulation.forbidden_fields[0]"],
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "words"), [pytest.param(*c[1:], id=c[0]) for c in MALFORMED]
)
def test_malformed_policy_refused_with_its_line(
    tmp_path: Path, text: str, line: int, words: list[str]
) -> None:
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, text)
    error = caught.value
    assert error.line == line
    assert str(error).startswith(f"{tmp_path / 'policy.toml'}:{line}: ")
    for word in words:
        assert word in str(error)


@pytest.mark.parametrize("instrument", ["subpoena", "national_security_letter", "informal_request"])
def test_non_court_instrument_can_never_be_accepted(tmp_path: Path, instrument: str) -> None:
    text = _replace_line(2, f'accepted_instruments = ["court_order", "{instrument}"]')
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, text)
    assert caught.value.line == 2
    message = str(caught.value)
    assert f"{instrument} can never be accepted" in message
    assert "no court issues it" in message
    assert "court of competent jurisdiction" in message


def test_multi_line_list_fault_points_at_its_key(tmp_path: Path) -> None:
    text = _replace_line(2, 'accepted_instruments = [\n  "court_order",\n  "subpoena",\n]')
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, text)
    assert caught.value.line == 2


@pytest.mark.parametrize("purpose", ["national_security", "emergency", "law_enforcement", "other"])
def test_no_purpose_may_skip_the_court_order(tmp_path: Path, purpose: str) -> None:
    text = _insert_after(11, f"\n[purposes.{purpose}]\nrequires_order = false")
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, text)
    assert caught.value.line == 14
    message = str(caught.value)
    assert f"purposes.{purpose}.requires_order: requires_order must be true" in message
    assert "national_security, emergency and law_enforcement requests no other path" in message


def test_side_door_purpose_declared_with_an_order_loads(tmp_path: Path) -> None:
    # Declared and requiring an order, it is just another name for the court path.
    loaded = _load(
        tmp_path, _insert_after(11, "\n[purposes.national_security]\nrequires_order = true")
    )
    assert loaded.purposes == {"legal_process": True, "national_security": True}


def test_every_fault_is_reported(tmp_path: Path) -> None:
    text = _replace_line(4, "max_order_lifetime_days = 0").replace(
        "margin_days = 365", "margin_days = -1"
    )
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, text)
    assert [line for line, _ in caught.value.faults] == [4, 22]
    assert caught.value.line == 4


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, _replace_line(13, "[transparency"))
    assert caught.value.line == 13
    assert "TOML syntax error" in str(caught.value)
    assert ":13: " in str(caught.value)
    assert "(column " in str(caught.value)


def test_toml_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, VALID + "extra = [1,\n2,")
    assert caught.value.line == len(VALID.splitlines()) + 2
    assert "end of file" in str(caught.value)


def test_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, _insert_after(5, "clock_skew_seconds = 30"))
    assert caught.value.line == 6


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(VALID.encode().replace(b"# ", b"") + b"# caf\xe9\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.line == len(VALID.splitlines()) + 1
    assert "not valid UTF-8" in str(caught.value)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.line is None
    assert str(caught.value) == f"{path}: cannot read the policy file: No such file or directory"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: cannot read the policy file")


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


# ----------------------------------------------------------------------------- the default


def test_bundled_default_loads_and_hashes_its_exact_bytes() -> None:
    loaded = load_policy(BUNDLED_POLICY)
    data = BUNDLED_POLICY.read_bytes()
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    assert loaded.text == data.decode("utf-8")


def test_bundled_default_follows_the_seed() -> None:
    loaded = load_policy(BUNDLED_POLICY)
    policy = loaded.policy
    assert loaded.accepted_instruments == {Instrument.COURT_ORDER, Instrument.SEARCH_WARRANT}
    assert Instrument.FISA_ORDER not in loaded.accepted_instruments
    assert policy.require_good_cause is True
    assert loaded.max_order_lifetime_days == policy.max_order_lifetime_days == 90
    assert loaded.clock_skew_seconds == policy.clock_skew_seconds == 60
    assert loaded.purposes == {"legal_process": True}
    assert loaded.forbidden_fields == {}
    assert policy.transparency.public is False
    assert policy.transparency.banded_instruments == (
        Instrument.NATIONAL_SECURITY_LETTER,
        Instrument.FISA_ORDER,
    )
    assert policy.transparency.band_width == 250
    assert policy.counsel.require_approval is False
    assert policy.legal_holds.margin_days == 365


def test_minimal_policy_takes_the_seed_defaults() -> None:
    loaded = parse_policy(b'version = "min"\n', source="min.toml")
    default = load_policy(BUNDLED_POLICY).policy
    assert loaded.policy == default.model_copy(update={"version": "min"})


def test_any_byte_change_is_a_new_policy() -> None:
    data = BUNDLED_POLICY.read_bytes()
    changed = parse_policy(data + b"# a comment\n", source="changed.toml")
    assert changed.sha256 != load_policy(BUNDLED_POLICY).sha256
    assert changed.policy == load_policy(BUNDLED_POLICY).policy


def test_policy_model_is_frozen() -> None:
    policy = load_policy(BUNDLED_POLICY).policy
    with pytest.raises(ValueError, match="frozen"):
        policy.max_order_lifetime_days = 366  # type: ignore[misc]
    assert isinstance(policy, Policy)


# ----------------------------------------------------------------------------- line finder


def test_key_lines_reads_headers_dotted_and_quoted_keys() -> None:
    text = (
        'version = "x"\n'  # 1
        "counsel.require_approval = true\n"  # 2
        "[categories.'search_history']\n"  # 3
        "  forbidden_fields = []\n"  # 4
        '[ purposes . "legal_process" ]\n'  # 5
        "requires_order = true # why\n"  # 6
    )
    assert key_lines(text) == {
        ("version",): 1,
        ("counsel", "require_approval"): 2,
        ("categories", "search_history"): 3,
        ("categories", "search_history", "forbidden_fields"): 4,
        ("purposes", "legal_process"): 5,
        ("purposes", "legal_process", "requires_order"): 6,
    }


def test_line_of_falls_back_to_the_nearest_written_key() -> None:
    index = {("transparency",): 7, ("transparency", "band_width"): 9}
    assert line_of(index, ("transparency", "band_width")) == 9
    assert line_of(index, ("transparency", "public")) == 7
    assert line_of(index, ("transparency", "band_width", 3)) == 9
    assert line_of(index, ("categories", "x", "[key]")) == 1
    assert line_of(index, ()) == 1


def test_fault_inside_an_inline_table_points_at_its_outer_key() -> None:
    text = 'version = "x"\n\ncategories = { emails = { forbidden_fields = [] } }\n'
    with pytest.raises(PolicyError) as caught:
        parse_policy(text.encode(), source="inline.toml")
    assert str(caught.value).startswith("inline.toml:3: categories.emails: not a known name")
