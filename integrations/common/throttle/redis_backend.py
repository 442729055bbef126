"""The shared backend: Redis state, every decision one atomic Lua script on Redis' own clock."""

from __future__ import annotations

from integrations.common.throttle.limits import (
    _WAITER_TTL_S,
    Decision,
    _Bitrix24Limits,
    _lease_s,
    _room_wait_ms,
    _XeroLimits,
)

# ------------------------------------------------------------------------------------------------
# Redis implementation
# ------------------------------------------------------------------------------------------------

# KEYS: conc, minute, day, dayleft, penalty, waiters, app_minute
# ARGV: token, interactive, conc_limit, minute_limit, window_ms, day_limit, reserve, bucket_ms,
#       lease_ms, app_limit, waiter_ttl_ms, reserve_share
_XERO_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = ARGV[1]
local interactive = ARGV[2] == '1'
local conc_limit, minute_limit, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local day_limit, reserve, bucket_ms = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local lease, app_limit, waiter_ttl = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local reserve_share = tonumber(ARGV[12])

local function deny(wait, why)
  if interactive then
    redis.call('ZADD', KEYS[6], now + waiter_ttl, token)
    redis.call('PEXPIRE', KEYS[6], waiter_ttl * 2)
  end
  return {0, math.max(0, math.ceil(wait)), why}
end

local penalty = redis.call('PTTL', KEYS[5])
if penalty > 0 then return deny(penalty, redis.call('GET', KEYS[5]) or 'penalty') end

redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
if not interactive and redis.call('ZCARD', KEYS[6]) > 0 then return deny(0, 'priority') end

-- Daily budget in hourly buckets; 25 of them cover any rolling 24 h (an over-count, never under).
local bucket = math.floor(now / bucket_ms)
local day = redis.call('HGETALL', KEYS[3])
local used, oldest = 0, bucket
for i = 1, #day, 2 do
  local b = tonumber(day[i])
  if b < bucket - 24 then
    redis.call('HDEL', KEYS[3], day[i])
  else
    used = used + tonumber(day[i + 1])
    if b < oldest then oldest = b end
  end
end
local left = tonumber(redis.call('GET', KEYS[4]) or '-1')
-- The reserve is a share of the organisation's limit as Xero's count reveals it (limits.py
-- _org_limit and _reserve_for, the same arithmetic), capped by the absolute setting.
local org_limit = day_limit
if left >= 0 then org_limit = math.min(day_limit, used + left) end
local keep_back = math.max(0, math.min(reserve, math.floor(org_limit * reserve_share + 0.5)))
if interactive then keep_back = 0 end
if used >= day_limit - keep_back then return deny((oldest + 25) * bucket_ms - now, 'day') end
if left >= 0 and left <= keep_back then return deny(redis.call('PTTL', KEYS[4]), 'day') end

redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - window)
local app_n = redis.call('ZCARD', KEYS[7])
if app_n >= app_limit then
  local e = redis.call('ZRANGE', KEYS[7], app_n - app_limit, app_n - app_limit, 'WITHSCORES')
  return deny(tonumber(e[2]) + window - now + 1, 'app_minute')
end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[2])
if n >= minute_limit then
  local e = redis.call('ZRANGE', KEYS[2], n - minute_limit, n - minute_limit, 'WITHSCORES')
  return deny(tonumber(e[2]) + window - now + 1, 'minute')
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= conc_limit then return deny(0, 'concurrent') end

redis.call('ZADD', KEYS[1], now + lease, token)
redis.call('PEXPIRE', KEYS[1], lease)
redis.call('ZADD', KEYS[2], now, token)
redis.call('PEXPIRE', KEYS[2], window * 2 + lease)
redis.call('ZADD', KEYS[7], now, token)
redis.call('PEXPIRE', KEYS[7], window * 2 + lease)
redis.call('HINCRBY', KEYS[3], tostring(bucket), 1)
redis.call('PEXPIRE', KEYS[3], bucket_ms * 26)
if left >= 0 then redis.call('DECR', KEYS[4]) end
redis.call('ZREM', KEYS[6], token)
return {1, 0, 'ok'}
"""

# The call was counted in the minute windows when it was admitted, before its request left; Xero
# counted it on arrival, somewhere between admission and now. Re-stamping the entry with the
# release time makes our window end no earlier than Xero's, so the 61st call can never reach Xero
# inside the same rolling minute as the 1st, whatever the network delays.
# KEYS: conc, minute, app_minute, waiters   ARGV: token
_XERO_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', now, ARGV[1])
redis.call('ZADD', KEYS[3], 'XX', now, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
"""

# Xero's count is the truth when ours drifted (a flushed Redis, calls made by another deployment
# with the same app): pad our window with placeholder entries until it agrees, and remember the
# day's remainder for an hour. Never loosens what we already hold.
# KEYS: minute, dayleft   ARGV: min_remaining (-1 = absent), day_remaining (-1), minute_limit,
#                               window_ms, bucket_ms
_XERO_OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local min_left, day_left = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, window, bucket_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if min_left >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local ours = limit - redis.call('ZCARD', KEYS[1])
  for i = 1, ours - min_left do
    redis.call('ZADD', KEYS[1], now, 'observed:' .. now .. ':' .. i)
  end
  redis.call('PEXPIRE', KEYS[1], window * 2)
end
if day_left >= 0 then
  local known = tonumber(redis.call('GET', KEYS[2]) or '-1')
  if known < 0 or day_left < known then
    redis.call('SET', KEYS[2], day_left, 'PX', bucket_ms)
  end
end
return 1
"""

# KEYS: penalty   ARGV: ms, problem. Extends, never shortens, a block already in place.
_PENALIZE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
end
return 1
"""

# Leaky bucket: each call pours 1 in; it drains continuously. KEYS: bucket, penalty, waiters
# ARGV: burst, drain_per_ms, interactive, token, waiter_ttl_ms
_BITRIX24_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local burst, drain = tonumber(ARGV[1]), tonumber(ARGV[2])
local interactive = ARGV[3] == '1'
local token, waiter_ttl = ARGV[4], tonumber(ARGV[5])
local function deny(wait, why)
  if interactive then
    redis.call('ZADD', KEYS[3], now + waiter_ttl, token)
    redis.call('PEXPIRE', KEYS[3], waiter_ttl * 2)
  end
  return {0, math.max(0, math.ceil(wait)), why}
end
local penalty = redis.call('PTTL', KEYS[2])
if penalty > 0 then return deny(penalty, redis.call('GET', KEYS[2]) or 'penalty') end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if not interactive and redis.call('ZCARD', KEYS[3]) > 0 then return deny(0, 'priority') end
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or '0')
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts') or tostring(now))
level = math.max(0, level - (now - ts) * drain)
if level + 1 > burst then return deny((level + 1 - burst) / drain, 'burst') end
redis.call('HSET', KEYS[1], 'level', tostring(level + 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / drain) + 1000)
redis.call('ZREM', KEYS[3], token)
return {1, 0, 'ok'}
"""


class _RedisBackend:
    def __init__(self, client) -> None:
        self.client = client
        self.xero_acquire_script = client.register_script(_XERO_ACQUIRE)
        self.xero_release_script = client.register_script(_XERO_RELEASE)
        self.xero_observe_script = client.register_script(_XERO_OBSERVE)
        self.penalize_script = client.register_script(_PENALIZE)
        self.bitrix24_acquire_script = client.register_script(_BITRIX24_ACQUIRE)

    @staticmethod
    def _xero_keys(tenant_id: str) -> dict[str, str]:
        base = f"throttle:xero:{tenant_id}"
        return {
            "conc": f"{base}:concurrent",
            "minute": f"{base}:minute",
            "day": f"{base}:day",
            "dayleft": f"{base}:day-left",
            "penalty": f"{base}:penalty",
            "waiters": f"{base}:interactive-waiters",
            "app": "throttle:xero:app-minute",
        }

    def xero_acquire(self, tenant_id: str, token: str, interactive: bool) -> Decision:
        k, lim = self._xero_keys(tenant_id), _XeroLimits.current()
        granted, wait_ms, why = self.xero_acquire_script(
            keys=[k["conc"], k["minute"], k["day"], k["dayleft"], k["penalty"], k["waiters"], k["app"]],
            args=[
                token,
                int(interactive),
                lim.concurrent,
                lim.minute,
                lim.minute_window_ms,
                lim.day,
                lim.reserve,
                lim.day_bucket_ms,
                int(_lease_s() * 1000),
                lim.app_minute,
                int(_WAITER_TTL_S * 1000),
                repr(lim.reserve_share),
            ],
        )
        return bool(granted), int(wait_ms), _text(why)

    def xero_release(self, tenant_id: str, token: str) -> None:
        k = self._xero_keys(tenant_id)
        self.xero_release_script(keys=[k["conc"], k["minute"], k["app"], k["waiters"]], args=[token])

    def xero_forget_waiter(self, tenant_id: str, token: str) -> None:
        self.client.zrem(self._xero_keys(tenant_id)["waiters"], token)

    def xero_observe(self, tenant_id: str, minute_left: int | None, day_left: int | None) -> None:
        k, lim = self._xero_keys(tenant_id), _XeroLimits.current()
        self.xero_observe_script(
            keys=[k["minute"], k["dayleft"]],
            args=[_or_minus1(minute_left), _or_minus1(day_left), lim.minute, lim.minute_window_ms, lim.day_bucket_ms],
        )

    def xero_penalize(self, tenant_id: str, ms: int, problem: str) -> None:
        self.penalize_script(keys=[self._xero_keys(tenant_id)["penalty"]], args=[ms, problem])

    def xero_room_wait(self, tenant_id: str, calls: int) -> float:
        k, lim = self._xero_keys(tenant_id), _XeroLimits.current()
        seconds, micros = self.client.time()  # Redis' clock, as the scripts use
        now = int(seconds) * 1000 + int(micros) // 1000
        window = self.client.zrangebyscore(k["minute"], now - lim.minute_window_ms, "+inf", withscores=True)
        penalty = max(0, self.client.pttl(k["penalty"]))
        return max(penalty, _room_wait_ms([at for _, at in window], now, calls, lim)) / 1000.0

    def xero_daily_usage(self, tenant_id: str) -> tuple[int, int | None]:
        k, lim = self._xero_keys(tenant_id), _XeroLimits.current()
        seconds, micros = self.client.time()  # Redis' clock, as the scripts use
        bucket = (int(seconds) * 1000 + int(micros) // 1000) // lim.day_bucket_ms
        used = sum(int(n) for b, n in self.client.hgetall(k["day"]).items() if int(b) >= bucket - 24)
        left = self.client.get(k["dayleft"])
        return used, int(left) if left is not None else None

    def xero_recent_usage(self, tenant_id: str) -> tuple[int, float]:
        k, lim = self._xero_keys(tenant_id), _XeroLimits.current()
        seconds, micros = self.client.time()
        now = int(seconds) * 1000 + int(micros) // 1000
        bucket = now // lim.day_bucket_ms
        counts = self.client.hmget(k["day"], [str(bucket), str(bucket - 1)])
        calls = sum(int(n) for n in counts if n is not None)
        return calls, 1.0 + (now - bucket * lim.day_bucket_ms) / lim.day_bucket_ms

    @staticmethod
    def _bitrix24_keys(member_id: str) -> dict[str, str]:
        base = f"throttle:bitrix24:{member_id}"
        return {"bucket": f"{base}:bucket", "penalty": f"{base}:penalty", "waiters": f"{base}:interactive-waiters"}

    def bitrix24_acquire(self, member_id: str, token: str, interactive: bool) -> Decision:
        k, lim = self._bitrix24_keys(member_id), _Bitrix24Limits.current()
        granted, wait_ms, why = self.bitrix24_acquire_script(
            keys=[k["bucket"], k["penalty"], k["waiters"]],
            args=[lim.burst, repr(lim.drain_per_ms), int(interactive), token, int(_WAITER_TTL_S * 1000)],
        )
        return bool(granted), int(wait_ms), _text(why)

    def bitrix24_forget_waiter(self, member_id: str, token: str) -> None:
        self.client.zrem(self._bitrix24_keys(member_id)["waiters"], token)

    def bitrix24_penalize(self, member_id: str, ms: int, problem: str) -> None:
        self.penalize_script(keys=[self._bitrix24_keys(member_id)["penalty"]], args=[ms, problem])


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _or_minus1(value: int | None) -> int:
    return -1 if value is None else int(value)
