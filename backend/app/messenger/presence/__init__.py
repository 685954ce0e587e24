"""Presence in Redis: a user is online while at least one of their connections is alive,
and `active` (at the keyboard) while at least one live connection has not reported `idle`.

States: `active` = some live connection is active; `idle` = connected, every live connection
idle; `offline` = no live connection. A connection starts active; only the client's
`presence` frame changes that. The push fan-out skips only `active` users, so an unattended
desktop tab (idle) does not swallow mobile pushes; a lid closed mid-conversation (no clean
close) is caught by the heartbeat TTL below and the user reads offline.

Keys, per user (the `{user_id}` hash tag keeps them on one Redis Cluster slot):
- `presence:{user_id}`: sorted set of live connection ids, scored by the epoch second at
  which each entry expires unless its instance refreshes it. An instance that dies stops
  refreshing, so its connections drop out after at most the TTL without anyone cleaning up.
- `presence:{user_id}:idle`: set of the user's connection ids that reported `idle`. Only
  consulted for ids live in the sorted set, so entries of dead connections are harmless; the
  heartbeat keeps the key alive while the user has any connection, and it expires with them.
- `presence:{user_id}:last_seen`: epoch seconds of the last moment a connection of the user
  was known alive (connect, refresh, clean disconnect). Kept after the user goes offline.

Every batch function is one round trip whatever the number of users: pipelines
(transaction=False) for writes, and for the hot "who of these is online?" read a Lua script
that returns only the online users' positions, because parsing one reply per user in
redis-py costs ~20 µs each (200 ms for 10,000 users; the script takes ~30 ms). On Redis
Cluster the ids are grouped by the node owning their slot and each node gets one script call
(flag `allow-cross-slot-keys`), the nodes in parallel; see cluster_reads.py.

Modules: states.py (what a state is), keys.py (the key names), writes.py (connect, heartbeat,
disconnect, idle/active), reads.py (the batch reads), active_script.py (the Lua script) and
cluster_reads.py (its Redis Cluster routing). Callers import from this package.
"""

from backend.app.messenger.presence.keys import connections_key, idle_key, last_seen_key
from backend.app.messenger.presence.reads import active_user_ids, online_user_ids, presence_of
from backend.app.messenger.presence.states import (
    OFFLINE,
    ConnectionState,
    PresenceInfo,
    PresenceState,
    state_of,
)
from backend.app.messenger.presence.writes import (
    KEY_EXPIRY_MARGIN_SECONDS,
    connect,
    disconnect,
    refresh,
    set_connection_state,
)

__all__ = [
    "KEY_EXPIRY_MARGIN_SECONDS",
    "OFFLINE",
    "ConnectionState",
    "PresenceInfo",
    "PresenceState",
    "active_user_ids",
    "connect",
    "connections_key",
    "disconnect",
    "idle_key",
    "last_seen_key",
    "online_user_ids",
    "presence_of",
    "refresh",
    "set_connection_state",
    "state_of",
]
