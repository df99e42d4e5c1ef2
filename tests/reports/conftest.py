"""Report tests run with the sweep tests' strict numerics (they read the toy sweep)."""

import pytest

from tests import support


@pytest.fixture(autouse=True)
def strict_numerics():
    with support.strict_numerics("allow"):
        yield
