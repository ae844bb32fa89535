"""Tables of the settlement service (schema `settlement`)."""

from sqlalchemy import MetaData

from shared.events import event_tables
from shared.readmodels import institution_copy

SCHEMA = "settlement"
metadata = MetaData(schema=SCHEMA)
events = event_tables(metadata)
institutions = institution_copy(metadata)
