import pytest

from programmes.demo import programmes_ensure_demo
from programmes.models import Programme, Tier


@pytest.fixture(autouse=True)
def _demo_programmes(request):
    # The migration creates them; transactional tests flush the database, so put them back.
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        marker = request.node.get_closest_marker("django_db")
        transactional = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
        request.getfixturevalue("transactional_db" if transactional else "db")
        programmes_ensure_demo()


@pytest.fixture
def retail(db) -> Programme:
    return Programme.objects.get(code="retail")


@pytest.fixture
def tiers(retail) -> dict[str, Tier]:
    return {tier.code: tier for tier in retail.tiers.all()}
