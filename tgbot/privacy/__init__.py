"""Privacy: the user's data export, erasure at their request, and retention purges."""

from tgbot.privacy.export import export_document
from tgbot.privacy.service import PrivacyService, topic_name

__all__ = ["PrivacyService", "export_document", "topic_name"]
