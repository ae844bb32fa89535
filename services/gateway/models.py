"""Tables of the national-platform gateway (schema `gateway`): what it must remember between an HIS's messages.

- `messages`: every answered transaction under (fixmedins_code, msgid), with the hash of what it asked and the
  exact bytes answered (replayed byte for byte), and what it did (the settlement or admission a 2601 undoes);
  kept 30 days (app.MESSAGE_DAYS).
- `nonces`: the TIF scheme's nonces seen within the timestamp window (a nonce twice is refused).
- `sign_ins`: 9001 sign-ins.
- `persons`: who an institution has asked about (1101) or registered: the names and numbers the platform's
  answers carry (setlinfo's psn_name, certno …), which the services answer only to a credential.
- `fee_lines`: the lines an HIS uploaded through the gateway, with their charge batch (2205 cancels a batch) and,
  for a refund line (negative cnt), the line it refunds (settlement holds the line netted).
"""

from sqlalchemy import Column, DateTime, Index, MetaData, Numeric, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)

messages = Table(
    "messages",
    metadata,
    Column("fixmedins_code", String(32), primary_key=True),
    Column("msgid", String(40), primary_key=True),
    Column("infno", String(8), nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("response", Text),  # the answer's exact UTF-8 text; NULL while the first request runs
    Column("psn_no", String(40)),
    Column("mdtrt_id", String(40)),
    Column("setl_id", String(40)),
    Column("reversed_by", String(40)),  # the 2601 msgid that undid it
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_messages_setl_id", "setl_id", postgresql_where=text("setl_id IS NOT NULL")),
    Index("ix_messages_mdtrt_id", "mdtrt_id", postgresql_where=text("mdtrt_id IS NOT NULL")),
    Index("ix_messages_created_at", "created_at"),
)

nonces = Table(
    "nonces",
    metadata,
    Column("access_key", String(100), primary_key=True),
    Column("nonce", String(100), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_nonces_seen_at", "seen_at"),
)

sign_ins = Table(
    "sign_ins",
    metadata,
    Column("sign_no", String(30), primary_key=True),
    Column("fixmedins_code", String(32), nullable=False),
    Column("opter_no", String(30), nullable=False),
    Column("mac", String(40), nullable=False),
    Column("ip", String(40), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

persons = Table(
    "persons",
    metadata,
    Column("fixmedins_code", String(32), primary_key=True),
    Column("psn_no", String(40), primary_key=True),
    Column("basics", JSONB, nullable=False),  # psn_name, certno, psn_cert_type, gend, brdy, insutype, psn_type …
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

fee_lines = Table(
    "fee_lines",
    metadata,
    Column("mdtrt_id", String(40), primary_key=True),
    Column("feedetl_sn", String(64), primary_key=True),
    Column("fixmedins_code", String(32), nullable=False),
    Column("chrg_bchno", String(40)),
    Column("init_feedetl_sn", String(64)),  # a refund line: the line it refunds
    Column("cnt", Numeric(16, 4), nullable=False),  # negative for a refund
    Column("item", JSONB, nullable=False),  # the line as settlement took it (a refund: its own values)
    Column("status", String(10), nullable=False, server_default="active"),  # active | cancelled
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

__all__ = ["SCHEMA", "metadata", "messages", "nonces", "sign_ins", "persons", "fee_lines"]
