-- wrk script: 100 events per request, spread over 100,000 cookie users.
-- usage: wrk -t2 -c16 -d20s -s loadtest/wrk/batch.lua http://127.0.0.1:8080
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local types = {"page_viewed", "page_viewed", "page_viewed", "added_to_cart", "product_purchased"}
request = function()
  local events = {}
  for i = 1, 100 do
    events[i] = string.format(
      '{"id":"u%d","id_type":"cookie","region":"Area X","device_type":"mobile","country":"US","payload":{"activity_type":"%s"}}',
      math.random(1, 100000), types[math.random(1, #types)])
  end
  return wrk.format(nil, "/api/v1/events", nil, "[" .. table.concat(events, ",") .. "]")
end
