-- POST /api/v1/usage: one AI request per call, each with a request_id of its own (a repeated
-- one would take the cheaper duplicate path). Expected answer: 201.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local tokens, counter, run = {}, 0, ""
unexpected = 0

setup = common.setup
done = common.done

function init(args)
  tokens = common.load_tokens()
  run = args[1] or "run"
  counter = thread_id * 1000003
  math.randomseed(thread_id + 17)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"request_id":"wrk-%s-%d-%d","model":"gpt-5-mini","input_tokens":%d,' ..
    '"output_tokens":%d,"latency_ms":%d}',
    run, thread_id, counter, math.random(200, 3000), math.random(50, 800), math.random(200, 4000))
  return wrk.format("POST", "/api/v1/usage", common.headers(tokens[counter % #tokens + 1]), body)
end

function response(status, headers, body)
  if status ~= 201 then
    unexpected = unexpected + 1
    if unexpected == 1 then first_unexpected = status .. " " .. string.sub(body, 1, 120):gsub('"', "'") end
  end
end
