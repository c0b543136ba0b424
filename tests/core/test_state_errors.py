"""app.core.database.state_errors: the one way a driver fault becomes a problem."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from app.core.database import state_errors
from app.core.problems import AuthError, StateUnavailable
from app.core.reasons import Reason


def test_a_driver_fault_becomes_state_unavailable_without_its_message() -> None:
    with pytest.raises(StateUnavailable) as caught, state_errors():
        raise OperationalError("SELECT 1", {}, Exception("host db.internal refused"))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "db.internal" not in str(caught.value)
    assert Reason.STATE_UNAVAILABLE in caught.value.reasons


def test_a_problem_raised_inside_passes_unchanged() -> None:
    with pytest.raises(AuthError), state_errors():
        raise AuthError()


def test_keep_nothing_turns_every_error_into_state_unavailable() -> None:
    with pytest.raises(StateUnavailable), state_errors(keep=()):
        raise AuthError()
