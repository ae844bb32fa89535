"""Tables of the reporting service (schema `reporting`)."""

from sqlalchemy import MetaData

from shared.events import event_tables
from shared.readmodels import institution_copy

SCHEMA = "reporting"
metadata = MetaData(schema=SCHEMA)
events = event_tables(metadata)
institutions = institution_copy(metadata)
