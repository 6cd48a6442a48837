"""One hierarchy for every error the application raises on purpose.

Each class carries a stable machine ``code`` (what channels branch on), the HTTP status the API
answers with and a human message. Subclasses register themselves in ``ERROR_CATALOGUE`` so that
the OpenAPI schema documents exactly the errors the code raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    status: int
    message: str


ERROR_CATALOGUE: dict[str, ErrorSpec] = {}


def register_error(code: str, status: int, message: Any) -> None:
    ERROR_CATALOGUE[code] = ErrorSpec(code=code, status=status, message=str(message))


class ApplicationError(Exception):
    code: ClassVar[str] = "application_error"
    status_code: ClassVar[int] = 400
    default_message: ClassVar[Any] = _("The request could not be processed.")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register_error(cls.code, cls.status_code, cls.default_message)

    def __init__(
        self,
        message: Any = None,
        *,
        fields: dict[str, list[dict[str, str]]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = str(message if message is not None else self.default_message)
        self.fields = fields or {}
        self.extra = extra or {}
        super().__init__(self.message)


class NotFoundError(ApplicationError):
    code = "not_found"
    status_code = 404
    default_message = _("Not found.")


class ConflictError(ApplicationError):
    code = "conflict"
    status_code = 409
    default_message = _("The request conflicts with the current state.")
