"""Event consumers of the settlement service."""

from services.settlement.models import institutions
from shared.events.topics import INSTITUTION_CHANGED
from shared.readmodels import institution_changed_handler

handlers = {
    INSTITUTION_CHANGED: institution_changed_handler(institutions),
}
