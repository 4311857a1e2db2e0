-- Shared by the wrk scripts (bench/figures_http.py): bearer tokens read from the file named by
-- BENCH_TOKENS (one a line), rotated per request; answers other than the expected status are
-- counted per thread; done() prints one line "BENCH {json}" with the latency percentiles (ms).
local M = {}
local threads = {}
local next_id = 0

function M.setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function M.load_tokens()
  local tokens = {}
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  return tokens
end

function M.headers(token)
  return {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["X-Forwarded-Proto"] = "https",
  }
end

function M.done(summary, latency, requests)
  local unexpected, first = 0, ""
  for _, thread in ipairs(threads) do
    unexpected = unexpected + (thread:get("unexpected") or 0)
    local seen = thread:get("first_unexpected")
    if seen and first == "" then first = seen end
  end
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.3f, "errors": %d, "unexpected": %d, ' ..
    '"first_unexpected": "%s", "p50": %.3f, "p90": %.3f, "p99": %.3f, "mean": %.3f}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    unexpected, first, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000))
end

return M
