import pytest

from points.services.lifetimes import balance_types_ensure_defaults


@pytest.fixture(autouse=True)
def _balance_types(request):
    # Transactional tests flush the migration's rows; put the defaults back for every ledger test.
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("db" if not _transactional(request) else "transactional_db")
        balance_types_ensure_defaults()


def _transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
