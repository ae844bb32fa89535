"""Event consumers of the prepayment service."""

from services.prepayment.models import institutions
from shared.events.topics import INSTITUTION_CHANGED
from shared.readmodels import institution_changed_handler

handlers = {
    INSTITUTION_CHANGED: institution_changed_handler(institutions),
}
