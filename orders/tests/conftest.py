# The demo programmes and balance types the migrations create, put back after transactional tests flush them.
from programmes.tests.conftest import _demo_programmes  # noqa: F401
