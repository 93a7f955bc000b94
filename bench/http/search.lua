-- wrk script for filesearch's GET /search. MODE (env) picks the workload:
--   keyword: q only (hybrid when the server has a query embedder, as with --test-embedder)
--   vector:  imageEmbedding only (64-d random unit vectors, model test/hash-64)
--   hybrid:  q + imageEmbedding
-- TOKEN (env) is sent as a bearer token. done() prints p50/p95/p99 and error counts as one line.
local mode = os.getenv("MODE") or "keyword"
local token = os.getenv("TOKEN") or ""
local queries = {}

-- WORDS=mixed (default): words of rank 20-4999 in the generator's Zipf vocabulary, each found in
-- about 0.03%-6% of the documents. WORDS=common: ranks 0-19, found in 6%-75% of the documents
-- (a stress case: BM25 must score most of the index).
local words = os.getenv("WORDS") or "mixed"
local function word()
  if words == "common" then return "w" .. math.random(0, 19) end
  local r = math.random()
  if r < 0.3 then return "w" .. math.random(20, 100) end
  if r < 0.8 then return "w" .. math.random(101, 1000) end
  return "w" .. math.random(1001, 4999)
end

local function vector()
  local v, norm = {}, 0
  for i = 1, 64 do
    local x = math.random() * 2 - 1
    v[i] = x
    norm = norm + x * x
  end
  norm = math.sqrt(norm)
  for i = 1, 64 do v[i] = string.format("%.5f", v[i] / norm) end
  return table.concat(v, ",")
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for i = 1, 200 do
    local q = word()
    if math.random() < 0.3 then q = q .. "+" .. word() end
    local path
    if mode == "vector" then
      path = "/search?snippets=false&mode=vector&limit=10&imageEmbedding=" .. vector()
    elseif mode == "hybrid" then
      path = "/search?snippets=false&mode=hybrid&limit=10&q=" .. q .. "&imageEmbedding=" .. vector()
    else
      path = "/search?snippets=false&limit=10&q=" .. q
    end
    queries[i] = path
  end
end

function request()
  local headers = {}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", queries[math.random(1, #queries)], headers)
end

local non2xx = 0
function response(status, headers, body)
  if status ~= 200 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT mode=%s words=" .. words .. " requests=%d rps=%.0f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d non2xx=%d\n",
    mode, summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.timeout, e.status))
end
