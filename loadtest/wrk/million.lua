-- wrk script: 500 events per request, each for a NEW cookie user (sequential ids per
-- thread), to fill a node with many users. Stop it once enough users exist.
-- usage: wrk -t2 -c8 -d300s -s loadtest/wrk/million.lua http://127.0.0.1:8080
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end
local types = {"page_viewed", "added_to_cart", "product_purchased"}
local devices = {"mobile", "desktop", "tablet"}
request = function()
  local events = {}
  for i = 1, 500 do
    counter = counter + 1
    events[i] = string.format(
      '{"id":"m%d-%d","id_type":"cookie","region":"Area X","device_type":"%s","country":"US","payload":{"activity_type":"%s"}}',
      thread_id, counter, devices[counter % 3 + 1], types[counter % 3 + 1])
  end
  return wrk.format(nil, "/api/v1/events", nil, "[" .. table.concat(events, ",") .. "]")
end
