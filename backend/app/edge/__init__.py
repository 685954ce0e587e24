"""What every request passes before any route sees it: size limits, text safety, log redaction."""
