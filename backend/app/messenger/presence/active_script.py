"""The Lua script behind the hot "who of these is active?" read (why a script: the package
docstring), shared by the single-node and the cluster path."""

from __future__ import annotations

# KEYS: connection sets; ARGV[1]: now. Returns the 1-based positions of users with a live
# connection that is not idle (`state_of` in Lua). Only users with a live connection have
# their idle set (`<connection key>:idle`, same hash tag, so same slot) looked at: passing
# those keys too would double the arguments for every offline user (measured: +60 %).
ACTIVE_POSITIONS = """
local live_after = '(' .. ARGV[1]
local active = {}
for index, key in ipairs(KEYS) do
    local live = redis.call('ZRANGEBYSCORE', key, live_after, '+inf')
    if #live > 0 then
        local idle_key = key .. ':idle'
        for _, connection in ipairs(live) do
            if redis.call('SISMEMBER', idle_key, connection) == 0 then
                active[#active + 1] = index
                break
            end
        end
    end
end
return active
"""
