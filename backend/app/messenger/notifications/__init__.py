"""The notification center: server-to-server notifications to user ids, a topic or everyone,
materialised into per-recipient rows and in-app inbox entries by a background loop."""
