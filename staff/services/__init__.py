"""Staff workplaces' services: the audit trail, store scoping."""

from staff.services.audit import audit_record
from staff.services.stores import staff_store_ids

__all__ = ["audit_record", "staff_store_ids"]
