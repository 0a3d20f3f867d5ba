-- One benchmark scenario for wrk (driven by bench/run.py):
--
--   wrk -s bench/wrk/scenario.lua URL -- MODE PATH QUERY N SIZE TAG
--
-- MODE  check:  account_check with N UserIDs, half of them imported (u00000001..uSIZE, as
--               bench/run.py loads them) and half not (x...), drawn at random over the database;
--       import: account_import of one new account a call;
--       multi:  multiaccount_import of N new accounts a call;
--       ping:   the same requests as check, sent to PATH (the trivial endpoint).
-- PATH  the URL path; QUERY the fixed query string (sdkappid, identifier, usersig, contenttype);
-- each call adds its own random. TAG makes the new UserIDs of a run unique.
-- Every answer is checked: HTTP 200 with ErrorCode 0 (and no FailAccounts) or it counts as a
-- failure. done() prints one line "BENCH {json}" for the driver.

local threads = {}
local counter = 0
local fails = 0
local mode, path, query, n, size, tag

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode, path, query = args[1], args[2], args[3]
  n, size, tag = tonumber(args[4]), tonumber(args[5]), args[6]
  math.randomseed(os.time() * 1000 + tid * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local function known(i)
  return string.format("u%08d", math.random(1, size))
end

local function unknown(i)
  return string.format("x%08d", math.random(1, size))
end

local function fresh(i)
  return string.format("n%s_%d_%d_%d", tag, tid, counter, i)
end

function request()
  counter = counter + 1
  local url = path .. "?" .. query .. "&random=" .. math.random(0, 4294967295)
  local body
  if mode == "check" or mode == "ping" then
    local items = {}
    for i = 1, n do
      local id = ((counter + i) % 2 == 0) and known(i) or unknown(i)
      items[i] = '{"UserID":"' .. id .. '"}'
    end
    body = '{"CheckItem":[' .. table.concat(items, ",") .. "]}"
  elseif mode == "import" then
    body = '{"UserID":"' .. fresh(1) .. '"}'
  elseif mode == "multi" then
    local items = {}
    for i = 1, n do
      items[i] = '{"UserID":"' .. fresh(i) .. '"}'
    end
    body = '{"AccountList":[' .. table.concat(items, ",") .. "]}"
  end
  return wrk.format(nil, url, nil, body)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"ErrorCode":0', 1, true)
      or string.find(body, '"FailAccounts":["', 1, true) then
    fails = fails + 1
    if fails == 1 then
      io.stderr:write("first failed answer: " .. status .. " " .. string.sub(body, 1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("fails") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
    '"failed":%d,"socket_errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, failed, e.connect + e.read + e.write + e.timeout, e.status))
end
