-- wrk script: POST /v1/check over 1,000 keys (the key also goes in x-key for slowapi's key_func).
local counter = 0
request = function()
  counter = counter + 1
  local key = "user-" .. (counter % 1000)
  local body = '{"rule":"bench","key":"' .. key .. '","cost":1}'
  return wrk.format("POST", "/v1/check", {["Content-Type"] = "application/json", ["x-key"] = key}, body)
end
