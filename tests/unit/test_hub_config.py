"""`HubConfig` refuses a setting of the wrong type with an error naming the
field, at construction (not a `TypeError` from deep inside a comparison)."""

from __future__ import annotations

from typing import Any

import pytest

from ssehub.hub import HubConfig


@pytest.mark.parametrize("name", ["heartbeat", "presence_interval"])
@pytest.mark.parametrize("value", ["5", None, b"5", [5], True])
def test_seconds_that_are_not_a_number_are_refused_naming_the_field(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^HubConfig\.{name} must be a number of seconds"):
        HubConfig(**{name: value})
