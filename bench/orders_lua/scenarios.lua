-- wrk scenarios of bench/orders.py: one script, the scenario chosen by its arguments.
--
--   wrk -t8 -c8 -d20s -s bench/orders_lua/scenarios.lua http://127.0.0.1:PORT -- \
--       scenario=lifecycle key=API_KEY first=ID count=2000 threads=8 run=RUN store=store-0
-- with the environment variable BENCH_OUT naming the JSON file done() writes.
--
-- Run with as many wrk threads as connections (-t N -c N): wrk's Lua API does not say which connection a
-- request() or response() is for, but a thread with one connection strictly alternates request() and
-- response(), so each thread's Lua state is one client with its own state machine (hold -> commit,
-- calculate -> place -> 3 deliveries -> return) and its own timings.
--
-- Every request is timed here, per kind, with the wall clock (clock_gettime through LuaJIT's FFI: os.clock is
-- CPU time): from request() (wrk stamps its own start right after it) to response() (called as soon as the
-- response is parsed). Every status is counted per kind; an unexpected one is kept (request and response) for the
-- report and the client starts a new cycle. A request that got no response (the socket failed) is sent again
-- unchanged, same Idempotency-Key, as a real client would retry, and counted as "resent".
--
-- Each thread uses its own share of the customers (index = thread id + threads * k), so two connections never
-- touch the same account at once: the figures are the server's work, not lock waits between clients.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

-- The cart: the 5-line cart of bench/cart.py (4 catalogue products, 1 unknown SKU with inline attributes).
local LINES = {
    '"sku":"SKU-0001","quantity":"1","price":"89990.00","discount_percent":"25"',
    '"sku":"SKU-0002","quantity":"4","price":"12990.00"',
    '"sku":"SKU-0040","quantity":"1","price":"45000.00","discount_percent":"35"',
    '"sku":"SKU-0008","quantity":"1","price":"2500.00","operation_type":"paid_service"',
    '"sku":"UNKNOWN-1","quantity":"2","price":"1990.00","discount_percent":"10","name":"Linen cushion",'
        .. '"category":"textiles"',
}
-- Delivered in 3 parts (the chairs first, then the nightstand with the cushions, then the sofa with the service),
-- then 1 of the 4 chairs returned (a partial-quantity return: the line is split).
local DELIVERIES = { '{"lines":[{"line_number":2}]}', '{"lines":[{"line_number":3},{"line_number":5}]}',
    '{"lines":[{"line_number":1},{"line_number":4}]}' }
local RETURN = '{"lines":[{"line_number":2,"quantity":"1"}],"reason":"bench: one chair returned"}'

local function cart_lines(numbered)
    local parts = {}
    for index, line in ipairs(LINES) do
        if numbered then
            parts[index] = '{"line_number":' .. index .. ',' .. line .. '}'
        else
            parts[index] = '{' .. line .. '}'
        end
    end
    return '[' .. table.concat(parts, ',') .. ']'
end
local CALC_LINES, ORDER_LINES = cart_lines(false), cart_lines(true)

-- --- the main state: threads and the final report ----------------------------------------------------------

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

-- --- each thread: arguments and counters ---------------------------------------------------------------------

local opt = {}
-- Flat tables only: wrk 4.1.0's thread:get() crashes copying a table nested in a table.
sample_ms = {}    -- each request's latency, in order
sample_kind = {}  -- and its kind
statuses = {}     -- "kind:status" -> count
resent = {}       -- kind -> count
failures = {}     -- the first few unexpected answers with their request, each a JSON string
cycles = 0        -- completed cycles (a hold+commit, a lifecycle, or one request for the one-call scenarios)

local scenario, state, inflight, counter, customer

function init(args)
    for _, arg in ipairs(args) do
        local name, value = arg:match("^([%w_]+)=(.*)$")
        opt[name] = value
    end
    opt.first, opt.count, opt.threads = tonumber(opt.first), tonumber(opt.count), tonumber(opt.threads)
    opt.redeem = opt.redeem or "1000"
    opt.hold = opt.hold or "300"
    math.randomseed(os.time() * 100 + tid)
    counter = 0
    scenario = SCENARIOS[opt.scenario]
    assert(scenario, "unknown scenario " .. tostring(opt.scenario))
    state = nil
end

local function headers(key)
    local h = { ["Authorization"] = "Bearer " .. opt.key, ["Content-Type"] = "application/json" }
    if key then
        h["Idempotency-Key"] = key
    end
    return h
end

local function pick_customer()
    -- This thread's share: first + tid + threads * k.
    local per_thread = math.floor((opt.count - 1 - tid) / opt.threads) + 1
    return opt.first + tid + opt.threads * math.random(0, per_thread - 1)
end

local function new_cycle()
    counter = counter + 1
    customer = pick_customer()
    return string.format("%s-%d-%d", opt.run, tid, counter)  -- unique per run, thread and cycle
end

-- Each scenario: steps, each step = function(cycle) -> kind, method, path, body, idempotency key, expected status;
-- and after(step, body) -> false to abandon the cycle (the answer lacked what the next step needs).
SCENARIOS = {
    noop = {
        steps = {
            function(c) return "noop", "POST", "/api/v1/bench/noop", "{}", nil, 200 end,
        },
    },
    cart = {
        steps = {
            function(c)
                local body = string.format('{"customer_id":%d,"store":"%s","redeem":"%s","lines":%s}',
                    customer, opt.store, opt.redeem, CALC_LINES)
                return "calculate", "POST", "/api/v1/carts/calculate", body, nil, 200
            end,
        },
    },
    hold_commit = {
        steps = {
            function(c)
                return "hold", "POST", string.format("/api/v1/customers/%d/points/holds", customer),
                    string.format('{"amount":"%s"}', opt.hold), c.id .. "-hold", 201
            end,
            function(c)
                return "commit", "POST", string.format("/api/v1/points/holds/%s/commit", c.hold), "{}",
                    c.id .. "-commit", 200
            end,
        },
        after = function(step, c, body)
            if step == 1 then
                c.hold = body:match('^{"id":(%d+)')
                return c.hold ~= nil
            end
            return true
        end,
    },
    place = {
        steps = {
            function(c)
                local body = string.format('{"number":"B%s","customer_id":%d,"store":"%s","redeem":"%s","lines":%s}',
                    c.id, customer, opt.store, opt.redeem, ORDER_LINES)
                return "place", "POST", "/api/v1/orders", body, c.id .. "-place", 201
            end,
        },
    },
    lifecycle = {
        steps = {
            function(c)
                local body = string.format('{"customer_id":%d,"store":"%s","redeem":"%s","lines":%s}',
                    customer, opt.store, opt.redeem, CALC_LINES)
                return "calculate", "POST", "/api/v1/carts/calculate", body, nil, 200
            end,
            function(c)
                local body = string.format(
                    '{"number":"B%s","customer_id":%d,"store":"%s","redeem":"%s","calculation":"%s","lines":%s}',
                    c.id, customer, opt.store, opt.redeem, c.calculation, ORDER_LINES)
                return "place", "POST", "/api/v1/orders", body, c.id .. "-place", 201
            end,
            function(c)
                return "deliver", "POST", "/api/v1/orders/B" .. c.id .. "/deliveries", DELIVERIES[1],
                    c.id .. "-deliver-1", 201
            end,
            function(c)
                return "deliver", "POST", "/api/v1/orders/B" .. c.id .. "/deliveries", DELIVERIES[2],
                    c.id .. "-deliver-2", 201
            end,
            function(c)
                return "deliver", "POST", "/api/v1/orders/B" .. c.id .. "/deliveries", DELIVERIES[3],
                    c.id .. "-deliver-3", 201
            end,
            function(c)
                return "return", "POST", "/api/v1/orders/B" .. c.id .. "/returns", RETURN, c.id .. "-return", 200
            end,
        },
        after = function(step, c, body)
            if step == 1 then
                c.calculation = body:match('"calculation":"([^"]+)"')
                return c.calculation ~= nil
            end
            return true
        end,
    },
}

local function json(value)
    local kind = type(value)
    if kind == "number" then
        if value ~= value or value == math.huge or value == -math.huge then
            return "null"
        end
        return string.format("%.17g", value)
    elseif kind == "string" then
        return '"' .. value:gsub('[%c"\\]', function(char)
            return string.format("\\u%04x", char:byte())
        end) .. '"'
    elseif kind == "boolean" then
        return tostring(value)
    elseif kind == "table" then
        if #value > 0 or next(value) == nil then
            local parts = {}
            for index, item in ipairs(value) do
                parts[index] = json(item)
            end
            return "[" .. table.concat(parts, ",") .. "]"
        end
        local parts = {}
        for key, item in pairs(value) do
            table.insert(parts, json(tostring(key)) .. ":" .. json(item))
        end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    return "null"
end

local function failure(kind, status, request_, body)
    if #failures < 5 then
        table.insert(failures, json({ kind = kind, status = status, request = request_:sub(1, 1500),
            response = (body or ""):sub(1, 1500) }))
    end
end

function request()
    if scenario == nil then
        -- wrk calls request() once in its main state, before any init(), to check the script: not sent.
        return wrk.format("GET", "/")
    end
    if inflight then
        -- No response() for the last request (the connection failed): the client retries it unchanged.
        resent[inflight.kind] = (resent[inflight.kind] or 0) + 1
        inflight.started = now_ms()
        return inflight.request
    end
    if state == nil then
        state = { step = 1, id = new_cycle() }
    end
    local kind, method, path, body, key, expected = scenario.steps[state.step](state)
    local request_ = wrk.format(method, path, headers(key), body)
    inflight = { kind = kind, request = request_, expected = expected }
    inflight.started = now_ms()
    return request_
end

function response(status, headers_, body)
    local sent = inflight
    if sent == nil then
        return
    end
    inflight = nil
    local ms = now_ms() - sent.started
    local kind = sent.kind
    local count = #sample_ms + 1
    sample_ms[count] = ms
    sample_kind[count] = kind
    local key = kind .. ":" .. status
    statuses[key] = (statuses[key] or 0) + 1
    if status ~= sent.expected then
        failure(kind, status, sent.request, body)
        state = nil  -- abandon this cycle; the next request starts a new one
        return
    end
    if scenario.after and not scenario.after(state.step, state, body) then
        failure(kind, status, sent.request, "answer lacks what the next step needs: " .. (body or ""))
        state = nil
        return
    end
    if state.step == #scenario.steps then
        cycles = cycles + 1
        state = nil
    else
        state.step = state.step + 1
    end
end

-- --- the report: one JSON file for bench/orders.py -----------------------------------------------------------

function done(summary, latency, requests)
    local report = {
        duration_us = summary.duration,
        requests = summary.requests,
        bytes = summary.bytes,
        errors = summary.errors,
        latency_us = {
            mean = latency.mean, max = latency.max, p50 = latency:percentile(50), p90 = latency:percentile(90),
            p99 = latency:percentile(99), p999 = latency:percentile(99.9),
        },
        threads = {},
    }
    for _, thread in ipairs(threads) do
        table.insert(report.threads, {
            sample_ms = thread:get("sample_ms"), sample_kind = thread:get("sample_kind"),
            statuses = thread:get("statuses"), resent = thread:get("resent"),
            failures = thread:get("failures"), cycles = thread:get("cycles"),
        })
    end
    local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))  -- done() runs in the main state, without init(args)
    out:write(json(report))
    out:close()
end
