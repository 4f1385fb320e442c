-- wrk script: one event per request in the load generator's shape (region, device, country,
-- created_at over the past 30 days, a url), for 100,000 cookie users with Zipf-like
-- (log-uniform) popularity. usage: wrk -t2 -c64 -d15s -s loadtest/wrk/shaped.lua URL
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local regions = {"Area X","California","Texas","Bavaria","Ontario","Ile-de-France"}
local devices = {"mobile","desktop","tablet"}
local countries = {"US","DE","FR","CA","GB"}
local types = {"page_viewed","page_viewed","page_viewed","clicked","added_to_cart","product_purchased"}
request = function()
  local rank = math.floor(math.exp(math.random() * math.log(100000)))
  local created = os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time() - math.random(0, 30*86400))
  local body = string.format(
    '{"id":"lt-u%d","id_type":"cookie","region":"%s","device_type":"%s","country":"%s","created_at":"%s","payload":{"activity_type":"%s","url":"https://shop.example.com/p/%d","order_total":"","order_id":"","element_id":""}}',
    rank, regions[rank % 6 + 1], devices[rank % 3 + 1], countries[rank % 5 + 1], created, types[math.random(1, #types)], math.random(0, 999))
  return wrk.format(nil, "/api/v1/events", nil, body)
end
