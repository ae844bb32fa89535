"""Tables of the prepayment service (schema `prepayment`)."""

from sqlalchemy import MetaData

from shared.events import event_tables
from shared.readmodels import institution_copy

SCHEMA = "prepayment"
metadata = MetaData(schema=SCHEMA)
events = event_tables(metadata)
institutions = institution_copy(metadata)
