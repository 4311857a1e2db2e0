-- POST /api/v1/quota/consume: reserve 100 tokens and $0.0001. Expected answer: 200 (granted:
-- the load users are on the enterprise plan with their quota reset before the run).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local tokens, counter = {}, 0
unexpected = 0

setup = common.setup
done = common.done

function init(args)
  tokens = common.load_tokens()
  counter = thread_id * 7919
end

local body = '{"tokens":100,"cost":"0.0001"}'

function request()
  counter = counter + 1
  return wrk.format("POST", "/api/v1/quota/consume", common.headers(tokens[counter % #tokens + 1]), body)
end

function response(status, headers, body)
  if status ~= 200 then
    unexpected = unexpected + 1
    if unexpected == 1 then first_unexpected = status .. " " .. string.sub(body, 1, 120):gsub('"', "'") end
  end
end
