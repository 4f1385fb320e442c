-- wrk script: one event per request, spread over 100,000 cookie users.
-- usage: wrk -t2 -c32 -d20s -s loadtest/wrk/single.lua http://127.0.0.1:8080
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local types = {"page_viewed", "page_viewed", "page_viewed", "added_to_cart", "product_purchased"}
request = function()
  local user = math.random(1, 100000)
  local body = string.format(
    '{"id":"u%d","id_type":"cookie","region":"Area X","device_type":"mobile","country":"US","payload":{"activity_type":"%s"}}',
    user, types[math.random(1, #types)])
  return wrk.format(nil, "/api/v1/events", nil, body)
end
