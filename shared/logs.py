"""JSON logs, one object per line, with personal data masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_CERTNO = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_SECRET = re.compile(r"(?i)(x-api-key|api[_-]?key|password|token)([\"']?\s*[:=]\s*[\"']?)([^\s\"',}]{4})[^\s\"',}]*")


def mask_certno(certno: str) -> str:
    """An ID number as logs may show it: 110101********123X → birth date hidden."""
    if len(certno) != 18:
        return "*" * len(certno)
    return certno[:6] + "********" + certno[14:]


def mask_name(name: str) -> str:
    """A name as logs may show it: 张三丰 → 张**."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def scrub(text: str) -> str:
    """Mask any ID number or secret that slipped into a message."""
    text = _CERTNO.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    return _SECRET.sub(lambda m: m.group(1) + m.group(2) + m.group(3) + "…", text)


class JsonFormatter(logging.Formatter):
    """Render records as JSON with masked personal data."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key in ("event_id", "topic", "setl_id", "mdtrt_id", "request_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))[-4000:]
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route all logging (ours, uvicorn's, aiokafka's) through the JSON formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("aiokafka").setLevel("WARNING")
