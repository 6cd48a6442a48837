from integrations.models import ApiKey
from integrations.services.channels import api_key_hash


def api_key_get_by_raw(raw_key: str) -> ApiKey | None:
    """The key (with its channel) whose hash matches, revoked or not; None if unknown."""
    return ApiKey.objects.select_related("channel").filter(key_hash=api_key_hash(raw_key)).first()
