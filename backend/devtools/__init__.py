"""Development and test support shipped with the package (never imported by the service).

- :mod:`.emulators`: wire-protocol emulators of FCM HTTP v1, APNs and Web Push, and the
  SMTP sink (:mod:`.emulators.smtp`) the tests and `messenger dev` share.
- :mod:`.providers`: how the service is pointed at running emulators, and fault replies.
- :mod:`.infra`: real PostgreSQL and Redis for a test or benchmark session.
- :mod:`.servers`: the real app under uvicorn on a free port, and bearer headers.
- :mod:`.subscriptions`: browser-side Web Push subscription material for clients.
- :mod:`.dev`: the `messenger dev` mode (emulators + SMTP sink + embedded servers).

The tests (`backend/tests`), the benchmarks (`bench/`) and `messenger dev` all use this
one copy.
"""
