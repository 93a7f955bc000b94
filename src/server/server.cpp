#include "server/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/env.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/utf8.h"
#include "engine/crawl.h"
#include "engine/search_json.h"
#include "image/image.h"
#include "server/http_server.h"
#include "server/indexing_metrics.h"
#include "server/metrics.h"
#include "server/safe_file.h"
#include "server/ui_assets.h"

namespace fs::server {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Replies and errors

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<OpenFile> file;  // when set, streamed as the body instead of `body`
};

struct ApiError {
  int status;
  std::string code;  // stable, machine-readable
  std::string message;
};

using Outcome = std::variant<Reply, ApiError>;

ApiError BadRequest(std::string message) { return {400, "invalid_argument", std::move(message)}; }
ApiError NotFoundError(std::string message) { return {404, "not_found", std::move(message)}; }
// The one reply for an imageUrl that names nothing the user may read: a missing file or object,
// one that cannot be read, and one outside the user's path scope are indistinguishable (no probing).
ApiError NoSuchImage() {
  return NotFoundError("imageUrl names no readable file or object that you may see: check the url (and your token's "
                       "folders)");
}

int HttpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnsupported: return 400;
    case StatusCode::kFailedPrecondition: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kResourceExhausted: return 413;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kIOError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

ApiError FromStatus(const Status& s) {
  return {HttpStatusOf(s.code()), std::string(StatusCodeName(s.code())), s.message()};
}

std::string ErrorBody(const std::string& code, const std::string& message) {
  Json j = {{"error", {{"code", code}, {"message", message}}}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Reply JsonReply(const Json& j, int status = 200) {
  Reply r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

// Codes for statuses the router answers itself (no route, wrong method).
std::string CodeForStatus(int status) {
  switch (status) {
    case 400: return "invalid_argument";
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 416: return "range_not_satisfiable";
    default: return status >= 500 ? "internal" : "invalid_argument";
  }
}

// ---------------------------------------------------------------------------------------------
// Parameter parsing (query strings, JSON bodies and multipart fields share one representation:
// a JSON object whose values are strings from the URL or typed values from a JSON body).

// A number as JSON writes one: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. strtod alone would
// also take hex floats (0x1p3), inf, nan, a leading '+' or whitespace.
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&s, &i] {
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

std::optional<double> ParseDouble(const std::string& s) {
  if (s.empty() || s.size() > 64 || !IsJsonNumber(s)) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int64_t> ParseInt(const std::string& s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  // Digits with an optional '-' only: strtoll would also skip whitespace and take a '+'.
  const size_t first_digit = s[0] == '-' ? 1 : 0;
  if (first_digit == s.size() || s.find_first_not_of("0123456789", first_digit) != std::string::npos) {
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

class Params {
 public:
  explicit Params(Json obj) : obj_(std::move(obj)) {}
  bool has(const char* key) const { return obj_.contains(key) && !obj_[key].is_null(); }

  std::variant<std::string, ApiError> String(const char* key) const {
    const Json& v = obj_[key];
    if (v.is_string()) return v.get<std::string>();
    return BadRequest(std::string(key) + " must be a string");
  }
  std::variant<double, ApiError> Number(const char* key) const {
    const Json& v = obj_[key];
    if (v.is_number()) {
      double d = v.get<double>();
      if (std::isfinite(d)) return d;
    } else if (v.is_string()) {
      if (auto d = ParseDouble(v.get<std::string>())) return *d;
    }
    return BadRequest(std::string(key) + " must be a finite number");
  }
  std::variant<int64_t, ApiError> Integer(const char* key, int64_t lo, int64_t hi) const {
    const Json& v = obj_[key];
    std::optional<int64_t> n;
    if (v.is_number_integer()) n = v.get<int64_t>();
    else if (v.is_string()) n = ParseInt(v.get<std::string>());
    if (!n || *n < lo || *n > hi) {
      return BadRequest(std::string(key) + " must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi));
    }
    return *n;
  }
  // A list given as a JSON array of strings, a comma-separated string, or repeated query keys.
  std::variant<std::vector<std::string>, ApiError> List(const char* key) const {
    const Json& v = obj_[key];
    std::vector<std::string> out;
    auto split = [&out](const std::string& s) {
      size_t start = 0;
      while (start <= s.size()) {
        size_t end = s.find(',', start);
        if (end == std::string::npos) end = s.size();
        std::string item = s.substr(start, end - start);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (!item.empty()) out.push_back(item);
        start = end + 1;
      }
    };
    if (v.is_string()) {
      split(v.get<std::string>());
      return out;
    }
    if (v.is_array()) {
      for (const auto& item : v) {
        if (!item.is_string()) return BadRequest(std::string(key) + " must be a list of strings");
        split(item.get<std::string>());
      }
      return out;
    }
    return BadRequest(std::string(key) + " must be a string or a list of strings");
  }
  const Json& raw(const char* key) const { return obj_[key]; }
  const Json& object() const { return obj_; }

 private:
  Json obj_;
};

#define FS_TAKE(var, expr)                                             \
  auto FS_CONCAT(take_, __LINE__) = (expr);                            \
  if (auto* e = std::get_if<ApiError>(&FS_CONCAT(take_, __LINE__))) return *e; \
  var = std::move(std::get<0>(FS_CONCAT(take_, __LINE__)))

// "2024-05-01", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.250Z", or epoch milliseconds.
std::optional<int64_t> ParseTimeNs(const Json& v) {
  auto from_ms = [](int64_t ms) -> int64_t {
    if (ms > INT64_MAX / 1000000) return INT64_MAX;
    if (ms < INT64_MIN / 1000000) return INT64_MIN;
    return ms * 1000000;
  };
  if (v.is_number_integer()) return from_ms(v.get<int64_t>());
  if (!v.is_string()) return std::nullopt;
  const std::string s = v.get<std::string>();
  if (auto ms = ParseInt(s)) return from_ms(*ms);
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &year, &month, &day, &consumed) != 3 || consumed != 10) return std::nullopt;
  int64_t frac_ns = 0;
  if (s.size() > 10) {
    int c2 = 0;
    if (std::sscanf(s.c_str() + 10, "T%2d:%2d:%2d%n", &hour, &minute, &second, &c2) != 3 || c2 != 9) return std::nullopt;
    size_t i = 19;
    if (i < s.size() && s[i] == '.') {
      int64_t scale = 100000000;
      for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
        frac_ns += (s[i] - '0') * scale;
        scale /= 10;
      }
    }
    if (i < s.size() && s[i] == 'Z') ++i;
    if (i != s.size()) return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const int64_t secs = static_cast<int64_t>(timegm(&tm));
  constexpr int64_t kMaxSecs = INT64_MAX / 1000000000 - 1;  // year 2262: beyond it, clamp
  if (secs > kMaxSecs) return INT64_MAX;
  if (secs < -kMaxSecs) return INT64_MIN;
  return secs * 1000000000 + frac_ns;
}

// imageEmbedding as a JSON array or a string: "[0.1,0.2]" or "0.1,0.2".
std::variant<std::vector<float>, ApiError> ParseVector(const Json& v, size_t max_dim) {
  Json arr;
  if (v.is_array()) {
    arr = v;
  } else if (v.is_string()) {
    std::string s = v.get<std::string>();
    size_t first = s.find_first_not_of(" \t\n");
    if (first != std::string::npos && s[first] == '[') {
      arr = Json::parse(s, nullptr, false);
      if (arr.is_discarded()) return BadRequest("imageEmbedding is not valid JSON: give [0.1, 0.2, ...] or 0.1,0.2,...");
    } else {
      arr = Json::array();
      size_t start = 0;
      while (start <= s.size()) {
        size_t end = s.find(',', start);
        if (end == std::string::npos) end = s.size();
        std::string item = s.substr(start, end - start);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        auto d = ParseDouble(item);
        if (!d) {
          return BadRequest("imageEmbedding entry '" + item.substr(0, 32) +
                            "' is not a finite decimal number: write numbers as JSON does (0.25, -1.5e-05); "
                            "no hex, inf, nan or leading '+'");
        }
        arr.push_back(*d);
        start = end + 1;
      }
    }
  } else {
    return BadRequest("imageEmbedding must be an array of numbers");
  }
  if (!arr.is_array() || arr.empty()) return BadRequest("imageEmbedding must be a non-empty array of numbers");
  if (arr.size() > max_dim) return BadRequest("imageEmbedding has more than " + std::to_string(max_dim) + " entries");
  std::vector<float> out;
  out.reserve(arr.size());
  for (const auto& x : arr) {
    if (!x.is_number()) return BadRequest("imageEmbedding must contain only numbers (no NaN, strings or null)");
    double d = x.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 3.0e38) return BadRequest("imageEmbedding contains NaN or infinity");
    out.push_back(static_cast<float>(d));
  }
  double norm = 0;
  for (float f : out) norm += static_cast<double>(f) * f;
  if (norm == 0) return BadRequest("imageEmbedding is all zeros: it has no direction to search in");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Requests

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

bool ValidRequestId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

struct Ctx {
  std::string request_id;
  Principal principal;
  // opensearch back end: the node's own time for this request's search (ms, its `took`) and the
  // wall time waited for its replies, for the access log's backend_ms and backend_wait_ms beside
  // the request's ms; -1: none.
  mutable double backend_ms = -1;
  mutable double backend_wait_ms = -1;
};

// The request path as logs and messages show it: at most 200 bytes, and never bytes that are not UTF-8.
std::string LoggablePath(const std::string& path) {
  std::string shown = path.substr(0, 200);
  return IsValidUtf8(shown) ? shown : "(a path that is not UTF-8)";
}

bool Visible(const Principal& p, const std::string& path) {
  if (p.path_prefixes.empty()) return true;
  for (const auto& prefix : p.path_prefixes) {
    if (path.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

const std::set<std::string>& SearchParamNames() {
  static const std::set<std::string> kNames = {
      "q",       "mode",     "imageEmbedding", "similarTo", "type",          "types",          "extension",
      "extensions", "pathPrefix", "minSize",  "maxSize",   "modifiedAfter", "modifiedBefore", "takenAfter", "takenBefore", "limit",
      "size",    "from",    "searchAfter", "rrfK",      "textWeight", "vectorWeight", "fusion"};
  return kNames;
}

const char* MimeOfAsset(const std::string& name) {
  auto ends = [&name](const char* suffix) {
    size_t n = std::strlen(suffix);
    return name.size() >= n && name.compare(name.size() - n, n, suffix) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

constexpr const char* kUiCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'";
// Documents are user files: never let one run script on our origin.
constexpr const char* kContentCsp = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'";

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Server::Impl {
  ServerOptions options;
  std::vector<std::string> roots;  // real paths with a trailing '/'
  std::unique_ptr<storage::S3Client> s3;  // set when s3_buckets are configured
  std::unique_ptr<JwtVerifier> verifier;
  std::unique_ptr<http::Server> http;
  Metrics metrics;
  std::atomic<int> in_flight{0};
  std::mutex run_mu;  // Start/Stop (the transport knows whether it runs and on which port)

  // Routes, matched in order against the decoded path (the whole path must match).
  struct RouteEntry {
    std::string method;
    std::regex pattern;
    std::function<void(http::Request&, http::Response&)> handler;
  };
  std::vector<RouteEntry> routes;

  // Stats are a COUNT over the store: refreshed at most every few seconds for /metrics.
  std::mutex stats_mu;
  Clock::time_point stats_at{};
  uint64_t stats_documents = 0;
  uint64_t stats_embeddings = 0;
  uint64_t stats_active_vectors = 0;  // opensearch back end: vectors of the active model in the index
  FailureCounts stats_failures;

  // The run-time switch: swapped whole by SetVectorSearch, read once per request.
  std::atomic<std::shared_ptr<const VectorSearchSwitch>> vector_switch;

  bool vector_on() const { return vector_switch.load()->enabled; }
  bool image_search_on() const { return vector_on() && options.embedder != nullptr; }
  ApiError VectorOff() const;
  void SetVectorSwitch(VectorSearchSwitch state, const std::string& who);

  void DescribeMetrics();
  void Routes();
  template <typename Fn>
  void Route(const std::string& method, const std::string& pattern, const std::string& label, bool needs_auth, Fn fn);
  void Finish(const http::Request& req, http::Response& res, const std::string& route, const Ctx& ctx,
              Outcome outcome, Clock::time_point start);
  void Dispatch(http::Request& req, http::Response& res);
  void Unmatched(const http::Request& req, http::Response& res, int status, const std::string& allow);

  Outcome Search(const http::Request& req, const Ctx& ctx);
  Outcome RunSearchParams(const Params& p, const std::string* image, const Ctx& ctx);
  Outcome Embed(const http::Request& req, const Ctx& ctx);
  Outcome DocumentMeta(const http::Request& req, const Ctx& ctx);
  Outcome Failures(const http::Request& req, const Ctx& ctx);
  Outcome Thumbnail(const Document& doc);
  Outcome DocumentBytes(const http::Request& req, const Ctx& ctx, bool thumbnail);
  Outcome MetricsPage();
  Outcome Config(const Ctx& ctx);
  Outcome AdminVectorSearch(const http::Request& req, const Ctx& ctx);
  Outcome Ready();
  Outcome Asset(const std::string& name);

  std::variant<Document, ApiError> VisibleDocument(const std::string& id_text, const Ctx& ctx);
  // Embeds image bytes through the embedding cache (content SHA-256 + model) unless use_cache is
  // false; *cached says whether the cache answered.
  std::variant<std::vector<float>, ApiError> EmbedImage(const std::string& bytes, std::string* hash,
                                                        bool use_cache = true, bool* cached = nullptr);
  std::variant<std::vector<float>, ApiError> EmbedText(const std::string& text);
  std::variant<std::string, ApiError> ReadS3Object(const std::string& bucket, const std::string& key, const Ctx& ctx);
  ApiError EmbedError(bool image, const Status& status);
};

void Server::Impl::DescribeMetrics() {
  metrics.Describe("filesearch_http_requests_total", "counter", "HTTP requests by route, method and status code.");
  metrics.Describe("filesearch_http_request_duration_seconds", "histogram", "HTTP request latency by route.");
  metrics.Describe("filesearch_http_errors_total", "counter", "Error replies by stable error code.");
  metrics.Describe("filesearch_http_in_flight_requests", "gauge", "Requests being served now.");
  metrics.Describe("filesearch_http_open_connections", "gauge", "Client connections open now (idle ones included).");
  metrics.Describe("filesearch_http_queued_requests", "gauge", "Complete requests waiting for a worker thread.");
  metrics.Describe("filesearch_http_refused_connections_total", "counter",
                   "Connections refused at accept: over --max-connections or --max-connections-per-client.");
  metrics.Describe("filesearch_http_rate_limited_total", "counter", "Requests refused with 429 by --rate-limit.");
  metrics.Describe("filesearch_http_timed_out_connections_total", "counter",
                   "Connections closed by a deadline: slow head (slowloris), slow body, idle keep-alive, stalled reader.");
  metrics.Describe("filesearch_search_duration_seconds", "histogram", "Search latency (planning, both legs, fusion) by mode.");
  DescribeIndexingMetrics(metrics);  // embeddings, their duration, the cache, the failure list
  metrics.Describe("filesearch_query_embeddings_total", "counter", "Text queries embedded (CLIP text tower or its cache).");
  metrics.Describe("filesearch_query_embedding_cache_hits_total", "counter",
                   "Text queries answered from the recent-query embedding cache.");
  metrics.Describe("filesearch_text_forward_passes_total", "counter",
                   "Text-tower forward passes; concurrent queries share one (queries / passes = mean batch).");
  metrics.Describe("filesearch_text_forward_queries_total", "counter", "Text queries computed by those passes.");
  metrics.Describe("filesearch_index_documents", "gauge", "Documents in the store.");
  metrics.Describe("filesearch_index_embeddings", "gauge", "Embeddings in the store (all models).");
  metrics.Describe("filesearch_index_vectors", "gauge", "Vectors of the active model in the index searches run on (the in-memory HNSW; with the opensearch back end, the node's index, counted at most every 5 s).");
  metrics.Describe("filesearch_keyword_index_ready", "gauge",
                   "1 when the in-memory keyword accelerator serves queries; 0 while it builds (FTS5 serves) or when off.");
  metrics.Describe("filesearch_keyword_index_bytes", "gauge", "Memory held by the keyword accelerator.");
  metrics.Describe("filesearch_keyword_index_delta_documents", "gauge",
                   "Documents changed since the accelerator's last build (searched beside it; a rebuild folds them in).");
  metrics.Describe("filesearch_keyword_searches_total", "counter",
                   "Keyword searches by path: accelerator, or fts5 (phrases, prefixes, filters, not ready).");
  metrics.Describe("filesearch_vector_search_enabled", "gauge",
                   "1 while vector search is offered; 0 while an administrator has it turned off.");
  for (const char* m : {"text", "vector", "hybrid"}) metrics.Add("filesearch_search_total", {{"mode", m}}, 0);
  metrics.Describe("filesearch_search_total", "counter", "Searches served by mode.");
}

template <typename Fn>
void Server::Impl::Route(const std::string& method, const std::string& pattern, const std::string& label, bool needs_auth,
                         Fn fn) {
  auto handler = [this, label, needs_auth, fn](http::Request& req, http::Response& res) {
    const auto start = Clock::now();
    ++in_flight;
    Ctx ctx;
    std::string given = req.get_header_value("X-Request-Id");
    ctx.request_id = ValidRequestId(given) ? given : NewRequestId();
    Outcome outcome = Reply{};
    try {
      bool authorised = true;
      if (needs_auth && !options.auth.disabled) {
        std::string header = req.get_header_value("Authorization");
        std::string token;
        if (header.size() > 7 && (header.compare(0, 7, "Bearer ") == 0 || header.compare(0, 7, "bearer ") == 0)) {
          token = header.substr(7);
        }
        auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        auto principal = verifier->Verify(token, now);
        if (!principal.ok()) {
          outcome = ApiError{401, "unauthorized", principal.status().message()};
          authorised = false;
        } else {
          ctx.principal = std::move(principal).value();
        }
      }
      if (authorised) outcome = fn(req, ctx);
    } catch (const std::exception& e) {
      LogError("request " + ctx.request_id + ": unexpected exception: " + e.what());
      outcome = ApiError{500, "internal", "internal error (request id " + ctx.request_id + "); the server log has details"};
    } catch (...) {
      outcome = ApiError{500, "internal", "internal error (request id " + ctx.request_id + "); the server log has details"};
    }
    Finish(req, res, label, ctx, std::move(outcome), start);
    --in_flight;
  };
  routes.push_back(RouteEntry{method, std::regex(pattern), std::move(handler)});
}

void Server::Impl::Dispatch(http::Request& req, http::Response& res) {
  std::string allow;
  for (const RouteEntry& r : routes) {
    std::smatch m;
    if (!std::regex_match(req.path, m, r.pattern)) continue;
    if (r.method != req.method) {
      if (allow.find(r.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + r.method;
      continue;
    }
    req.matches.clear();
    for (const auto& group : m) req.matches.push_back(group.str());
    r.handler(req, res);
    return;
  }
  Unmatched(req, res, allow.empty() ? 404 : 405, allow);
}

// No route for the path (404), or none for the method (405 with Allow).
void Server::Impl::Unmatched(const http::Request& req, http::Response& res, int status, const std::string& allow) {
  const std::string code = CodeForStatus(status);
  const std::string shown_path = LoggablePath(req.path);
  std::string message = status == 404 ? "no such route: " + req.method + " " + shown_path + " (see docs/api.md)"
                                      : req.method + " is not allowed on " + shown_path + "; use " + allow;
  res.status = status;
  res.content_type = "application/json";
  res.body = ErrorBody(code, message);
  if (!allow.empty()) res.headers.emplace_back("Allow", allow);
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Cache-Control", "no-store");
  const LogField fields[] = {{"method", req.method}, {"path", shown_path}, {"route", "unmatched"},
                             {"status", std::to_string(status)}, {"code", code}};
  LogWithFields(LogLevel::kInfo, "request", fields);
  metrics.Add("filesearch_http_errors_total", {{"code", code}});
  metrics.Add("filesearch_http_requests_total", {{"route", "unmatched"}, {"method", req.method}, {"status", std::to_string(status)}});
}

// Streams an OpenFile as a reply body (the transport reads it in pieces and serves Range requests).
class FileBody final : public http::BodySource {
 public:
  explicit FileBody(std::shared_ptr<OpenFile> file) : file_(std::move(file)) {}
  uint64_t size() const override { return file_->size(); }
  size_t ReadAt(uint64_t offset, char* out, size_t n) const override { return file_->ReadAt(offset, out, n); }

 private:
  std::shared_ptr<OpenFile> file_;
};

void Server::Impl::Finish(const http::Request& req, http::Response& res, const std::string& route, const Ctx& ctx,
                          Outcome outcome, Clock::time_point start) {
  std::string code;
  auto set_header = [&res](const std::string& name, const std::string& value) {
    for (auto& [k, v] : res.headers) {
      if (k == name) {
        v = value;
        return;
      }
    }
    res.headers.emplace_back(name, value);
  };
  int status = 200;
  if (auto* err = std::get_if<ApiError>(&outcome)) {
    code = err->code;
    res.status = status = err->status;
    Json body = {{"error", {{"code", err->code}, {"message", err->message}}}};
    if (route == "/embed") body["success"] = false;
    res.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    res.content_type = "application/json";
    if (err->status == 401) set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    metrics.Add("filesearch_http_errors_total", {{"code", err->code}});
  } else {
    Reply& r = std::get<Reply>(outcome);
    res.status = status = r.status;
    for (auto& [k, v] : r.headers) set_header(k, v);
    res.content_type = r.content_type;
    if (r.file) {
      // Streamed in pieces by the transport: a large file never sits in memory whole.
      res.file = std::make_shared<FileBody>(r.file);
      if (r.status == 200 && req.has_header("range")) {
        const http::ByteRange range = http::ParseRange(req.get_header_value("range"), r.file->size());
        if (range.kind == http::ByteRange::kSatisfiable) status = 206;
        if (range.kind == http::ByteRange::kUnsatisfiable) status = 416;
      }
    } else {
      res.body = std::move(r.body);
    }
  }
  set_header("X-Request-Id", ctx.request_id);
  set_header("X-Content-Type-Options", "nosniff");
  bool has_cache_control = false;
  for (const auto& [k, v] : res.headers) has_cache_control = has_cache_control || k == "Cache-Control";
  if (!has_cache_control) res.headers.emplace_back("Cache-Control", "no-store");
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  metrics.Add("filesearch_http_requests_total", {{"route", route}, {"method", req.method}, {"status", std::to_string(status)}});
  metrics.Observe("filesearch_http_request_duration_seconds", {{"route", route}}, seconds);
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.2f", seconds * 1000);
  const std::string shown_path = LoggablePath(req.path);
  std::vector<LogField> fields = {{"request_id", ctx.request_id}, {"method", req.method}, {"path", shown_path},
                                  {"route", route}, {"status", std::to_string(status)}, {"ms", ms}};
  if (!ctx.principal.subject.empty()) fields.push_back({"user", ctx.principal.subject});
  if (ctx.backend_ms >= 0) {
    char backend[32];
    std::snprintf(backend, sizeof backend, "%.0f", ctx.backend_ms);
    fields.push_back({"backend_ms", backend});
    std::snprintf(backend, sizeof backend, "%.2f", ctx.backend_wait_ms);
    fields.push_back({"backend_wait_ms", backend});
  }
  if (!code.empty()) fields.push_back({"code", code});
  LogWithFields(status >= 500 ? LogLevel::kError : LogLevel::kInfo, "request", fields);
}

std::variant<Document, ApiError> Server::Impl::VisibleDocument(const std::string& id_text, const Ctx& ctx) {
  auto id = ParseInt(id_text);
  const ApiError missing = NotFoundError("no document with id " + id_text.substr(0, 24) + " (or you may not see it)");
  if (!id || *id <= 0) return missing;
  auto doc = options.engine->GetDocument(*id);
  if (!doc.ok()) {
    if (doc.status().code() == StatusCode::kNotFound) return missing;
    return FromStatus(doc.status());
  }
  if (!Visible(ctx.principal, doc->path)) return missing;  // same reply as a missing id: no probing
  return std::move(doc).value();
}

std::variant<std::vector<float>, ApiError> Server::Impl::EmbedImage(const std::string& bytes, std::string* hash,
                                                                    bool use_cache, bool* cached) {
  if (cached) *cached = false;
  if (!options.embedder) {
    return ApiError{503, "unavailable", "image search is off: no CLIP model is loaded on this server"};
  }
  if (bytes.empty()) return BadRequest("the image is empty");
  if (bytes.size() > options.limits.max_image_bytes) {
    return ApiError{413, "payload_too_large", "the image is " + std::to_string(bytes.size()) + " bytes; the limit is " +
                                                  std::to_string(options.limits.max_image_bytes)};
  }
  auto info = SniffImage(bytes);
  if (!info) {
    return ApiError{415, "not_an_image", "the upload is not an image this server reads (JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC, AVIF)"};
  }
  if (info->width * info->height > options.limits.max_image_pixels) {
    return ApiError{413, "payload_too_large", "the image is " + std::to_string(info->width) + "x" + std::to_string(info->height) +
                                                  " pixels; the limit is " + std::to_string(options.limits.max_image_pixels) + " pixels"};
  }
  // The engine embeds through the cache; only model runs are timed (a cache hit takes microseconds).
  const auto start = Clock::now();
  auto e = options.engine->EmbedImageBytes(bytes, use_cache);
  if (!e.ok()) return EmbedError(true, e.status());
  if (!e->cached) {
    metrics.Observe("filesearch_embedding_duration_seconds", {{"kind", "image"}},
                    std::chrono::duration<double>(Clock::now() - start).count());
  }
  if (hash) *hash = e->sha256;
  if (cached) *cached = e->cached;
  return std::move(e->vector);
}

std::variant<std::vector<float>, ApiError> Server::Impl::EmbedText(const std::string& text) {
  if (!options.embedder) return ApiError{503, "unavailable", "text-to-image search is off: no CLIP model is loaded on this server"};
  const auto start = Clock::now();
  // No lock: QueryEmbedder is thread-safe, and CLIP batches concurrent text queries into one pass.
  auto v = options.engine->EmbedQueryText(text);
  metrics.Observe("filesearch_embedding_duration_seconds", {{"kind", "text"}},
                  std::chrono::duration<double>(Clock::now() - start).count());
  if (!v.ok()) return EmbedError(false, v.status());
  return std::move(v).value();
}

ApiError Server::Impl::EmbedError(bool image, const Status& status) {
  // Bytes that looked like an image but do not decode are the client's bad input, not our fault.
  const StatusCode code = status.code();
  if (image && (code == StatusCode::kCorruption || code == StatusCode::kUnsupported)) {
    return ApiError{422, "invalid_image", "the image could not be decoded (" + status.message() +
                                              "): send an intact JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC or AVIF file"};
  }
  return FromStatus(status.WithContext(image ? "embedding the image" : "embedding the query text"));
}

Outcome Server::Impl::Search(const http::Request& req, const Ctx& ctx) {
  if (req.method == "GET") {
    Json obj = Json::object();
    for (const auto& [key, value] : req.params) {
      if (key == "type" || key == "types" || key == "extension" || key == "extensions") {
        if (!obj.contains(key)) obj[key] = Json::array();
        obj[key].push_back(value);
      } else if (obj.contains(key)) {
        return BadRequest("parameter " + key + " is given twice");
      } else {
        obj[key] = value;
      }
    }
    return RunSearchParams(Params(std::move(obj)), nullptr, ctx);
  }
  if (req.is_multipart_form_data()) {
    Json obj = Json::object();
    std::string image;
    bool has_image = false;
    for (const auto& [key, part] : req.files) {
      if (key == "image") {
        if (has_image) return BadRequest("send one image per search");
        image = part.content;
        has_image = true;
      } else if (key == "type" || key == "types" || key == "extension" || key == "extensions") {
        if (!obj.contains(key)) obj[key] = Json::array();
        obj[key].push_back(part.content);
      } else {
        obj[key] = part.content;
      }
    }
    if (!has_image) return BadRequest("multipart search needs a file field named 'image'");
    return RunSearchParams(Params(std::move(obj)), &image, ctx);
  }
  auto ct = req.get_header_value("Content-Type");
  if (ct.rfind("application/json", 0) != 0) {
    return ApiError{415, "unsupported_media_type", "POST /search takes application/json or multipart/form-data"};
  }
  Json body = Json::parse(req.body, nullptr, false);
  if (body.is_discarded()) return BadRequest("the request body is not valid JSON");
  if (!body.is_object()) return BadRequest("the request body must be a JSON object");
  std::string image;
  bool has_image = false;
  if (body.contains("imageBase64")) {
    if (!body["imageBase64"].is_string()) return BadRequest("imageBase64 must be a string");
    auto bytes = Base64Decode(body["imageBase64"].get<std::string>());
    if (!bytes.ok()) return BadRequest("imageBase64 is not valid base64");
    image = std::move(bytes).value();
    has_image = true;
    body.erase("imageBase64");
  }
  return RunSearchParams(Params(std::move(body)), has_image ? &image : nullptr, ctx);
}

Outcome Server::Impl::RunSearchParams(const Params& p, const std::string* image, const Ctx& ctx) {
  for (const auto& [key, value] : p.object().items()) {
    if (!SearchParamNames().count(key)) {
      return BadRequest("unknown search parameter '" + key.substr(0, 40) + "'; see docs/api.md for the list");
    }
  }
  SearchRequest r;
  r.size = 10;
  if (p.has("q")) {
    FS_TAKE(r.query, p.String("q"));
    if (r.query.size() > options.limits.max_query_bytes) {
      return BadRequest("q is longer than " + std::to_string(options.limits.max_query_bytes) + " bytes: shorten the query");
    }
    // A JSON body cannot carry either; a query string or a form field can.
    if (r.query.find('\0') != std::string::npos) return BadRequest("q contains a NUL byte: send the words only");
    if (!IsValidUtf8(r.query)) {
      return BadRequest("q is not valid UTF-8 (invalid or overlong byte sequence): percent-encode the UTF-8 bytes "
                        "of the words");
    }
  }
  if (p.has("mode")) {
    std::string mode;
    FS_TAKE(mode, p.String("mode"));
    auto m = ParseSearchMode(mode);
    if (!m.ok()) return FromStatus(m.status());
    r.mode = *m;
  }
  // `size` is the original API's name for the page size.
  if (p.has("limit") && p.has("size")) return BadRequest("give the page size once: limit or size (its alias), not both");
  for (const char* key : {"limit", "size"}) {
    if (!p.has(key)) continue;
    int64_t limit = 0;
    FS_TAKE(limit, p.Integer(key, 1, 100));
    r.size = static_cast<size_t>(limit);
  }
  if (p.has("from") && p.has("searchAfter")) {
    return BadRequest("give from or searchAfter, not both: searchAfter (the previous page's nextCursor) already says "
                      "where the page starts");
  }
  if (p.has("from")) {
    int64_t from = 0;
    FS_TAKE(from, p.Integer("from", 0, 10000));
    r.from = static_cast<size_t>(from);
  }
  if (p.has("searchAfter")) {
    FS_TAKE(r.search_after, p.String("searchAfter"));
    if (r.search_after.empty()) return BadRequest("searchAfter is empty: omit it for the first page");
  }
  if (p.has("fusion")) {
    std::string f;
    FS_TAKE(f, p.String("fusion"));
    auto fm = ParseFusionMethod(f);
    if (!fm.ok()) return FromStatus(fm.status());
    r.fusion = *fm;
  }
  if (p.has("rrfK")) {
    FS_TAKE(r.rrf_k, p.Number("rrfK"));
    if (r.rrf_k <= 0 || r.rrf_k > 1e6) return BadRequest("rrfK must be greater than 0 (default 60)");
  }
  for (const char* key : {"textWeight", "vectorWeight"}) {
    if (!p.has(key)) continue;
    double w = 0;
    FS_TAKE(w, p.Number(key));
    if (w < 0 || w > 1e6) return BadRequest(std::string(key) + " must be between 0 and 1000000");
    (std::string(key) == "textWeight" ? r.text_weight : r.vector_weight) = w;
  }
  for (const char* key : {"type", "types"}) {
    if (!p.has(key)) continue;
    std::vector<std::string> v;
    FS_TAKE(v, p.List(key));
    r.filters.types.insert(r.filters.types.end(), v.begin(), v.end());
  }
  for (const char* key : {"extension", "extensions"}) {
    if (!p.has(key)) continue;
    std::vector<std::string> v;
    FS_TAKE(v, p.List(key));
    for (auto& e : v) {
      if (!e.empty() && e[0] == '.') e.erase(e.begin());
      for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.filters.extensions.push_back(e);
    }
  }
  if (p.has("pathPrefix")) {
    FS_TAKE(r.filters.path_prefix, p.String("pathPrefix"));
  }
  if (p.has("minSize")) {
    int64_t v = 0;
    FS_TAKE(v, p.Integer("minSize", 0, INT64_MAX));
    r.filters.min_size = static_cast<uint64_t>(v);
  }
  if (p.has("maxSize")) {
    int64_t v = 0;
    FS_TAKE(v, p.Integer("maxSize", 0, INT64_MAX));
    r.filters.max_size = static_cast<uint64_t>(v);
  }
  for (const char* key : {"modifiedAfter", "modifiedBefore"}) {
    if (!p.has(key)) continue;
    auto t = ParseTimeNs(p.raw(key));
    if (!t) return BadRequest(std::string(key) + " must be a date (2024-05-01), a UTC time (2024-05-01T12:00:00Z) or epoch milliseconds");
    (std::string(key) == "modifiedAfter" ? r.filters.min_mtime_ns : r.filters.max_mtime_ns) = *t;
  }
  for (const char* key : {"takenAfter", "takenBefore"}) {  // EXIF date taken; photos without one never match
    if (!p.has(key)) continue;
    auto t = ParseTimeNs(p.raw(key));
    if (!t) return BadRequest(std::string(key) + " must be a date (2024-05-01), a UTC time (2024-05-01T12:00:00Z) or epoch milliseconds");
    (std::string(key) == "takenAfter" ? r.filters.min_taken_ns : r.filters.max_taken_ns) = *t;
  }

  // Per-user visibility is a path-prefix filter inside the search, so totals and pages only ever
  // count what the user may see.
  const auto& allowed = ctx.principal.path_prefixes;
  if (!allowed.empty()) {
    std::vector<std::string> narrowed;
    const std::string& asked = r.filters.path_prefix;
    for (const auto& a : allowed) {
      if (asked.empty()) narrowed.push_back(a);
      else if (asked.rfind(a, 0) == 0) narrowed.push_back(asked);
      else if (a.rfind(asked, 0) == 0) narrowed.push_back(a);
    }
    std::sort(narrowed.begin(), narrowed.end());
    narrowed.erase(std::unique(narrowed.begin(), narrowed.end()), narrowed.end());
    if (narrowed.empty()) {
      r.filters.path_prefix = std::string("\0", 1);  // matches nothing: an empty, correct reply
    } else if (narrowed.size() == 1) {
      r.filters.path_prefix = narrowed[0];
    } else {
      std::string list;
      for (const auto& n : narrowed) list += (list.empty() ? "" : ", ") + n;
      return BadRequest("your access covers several folders; pass pathPrefix naming one of: " + list);
    }
  }

  // The vector leg: at most one source.
  const bool has_embedding = p.has("imageEmbedding");
  const bool has_similar = p.has("similarTo");
  const int sources = static_cast<int>(has_embedding) + static_cast<int>(has_similar) + static_cast<int>(image != nullptr);
  if (sources > 1) return BadRequest("give at most one of imageEmbedding, similarTo and an image");
  const bool wants_vector = sources > 0 || (r.mode && *r.mode != SearchMode::kText);
  if (wants_vector && !vector_on()) return VectorOff();
  // The engine picks the vector from the source; the server only parses, checks limits and the
  // user's scope, and times the model.
  QueryVectorSource source;
  source.text_to_vector = false;
  if (has_embedding) {
    FS_TAKE(source.embedding, ParseVector(p.raw("imageEmbedding"), options.limits.max_vector_dim));
  } else if (has_similar) {
    std::string id_text;
    const Json& raw = p.raw("similarTo");
    if (raw.is_number_integer()) id_text = std::to_string(raw.get<int64_t>());
    else if (raw.is_string()) id_text = raw.get<std::string>();
    else return BadRequest("similarTo must be a document id");
    Document doc;
    FS_TAKE(doc, VisibleDocument(id_text, ctx));
    source.similar_to = doc.id;
  } else if (image) {
    FS_TAKE(r.vector, EmbedImage(*image, nullptr));  // size, format and pixel limits first
    r.vector_model = options.embedder->model_id();
  } else if (!r.query.empty() && image_search_on() && (!r.mode || *r.mode != SearchMode::kText) &&
             options.engine->vectors()) {
    // A text query reaches the vector leg through the text tower.
    FS_TAKE(r.vector, EmbedText(r.query));
    r.vector_model = options.embedder->model_id();
    r.vector_from_text = true;
  }
  if (Status st = options.engine->ResolveQueryVector(source, &r); !st.ok()) {
    if (st.code() == StatusCode::kFailedPrecondition) return ApiError{400, "failed_precondition", st.message()};
    return FromStatus(st);
  }
  if (r.query.empty() && r.vector.empty()) {
    return BadRequest("give keywords (q), imageEmbedding, similarTo or an image to search");
  }

  const auto start = Clock::now();
  auto result = options.engine->Search(r);
  if (!result.ok()) return FromStatus(result.status());
  ctx.backend_ms = result->backend_took_ms;
  ctx.backend_wait_ms = result->backend_wait_ms;
  const std::string mode(SearchModeName(result->mode));
  metrics.Observe("filesearch_search_duration_seconds", {{"mode", mode}}, std::chrono::duration<double>(Clock::now() - start).count());
  metrics.Add("filesearch_search_total", {{"mode", mode}});
  // Defence in depth: the filter already kept other users' folders out.
  size_t before = result->hits.size();
  std::erase_if(result->hits, [&ctx](const SearchHit& h) { return !Visible(ctx.principal, h.doc.path); });
  if (result->hits.size() != before) LogError("search returned documents outside the user's path prefixes; dropped them");
  JsonRenderOptions ro;
  ro.thumbnail_base = "/documents/";
  Reply reply;
  reply.body = SearchResultToJson(*result, ro);
  return reply;
}

// The bytes of an object of a configured bucket, at most max_image_bytes (larger objects are
// refused from their Content-Length). Storage failures are the operator's to fix: the client gets
// a stable code and the log gets the detail.
std::variant<std::string, ApiError> Server::Impl::ReadS3Object(const std::string& bucket, const std::string& key,
                                                              const Ctx& ctx) {
  FS_CHECK(s3 != nullptr);  // ResolveImageUrl accepts s3:// only for configured buckets
  auto got = s3->GetObject(bucket, key, options.limits.max_image_bytes);
  if (got.ok()) return std::move(got).value();
  const Status& st = got.status();
  const std::string url = "s3://" + bucket + "/" + key;
  switch (st.code()) {
    case StatusCode::kNotFound: return NoSuchImage();
    case StatusCode::kResourceExhausted: return ApiError{413, "payload_too_large", st.message()};
    case StatusCode::kInvalidArgument: return ApiError{400, "invalid_path", st.message()};
    default: break;
  }
  const LogField fields[] = {{"request_id", ctx.request_id}, {"url", url}, {"error", st.ToString()}};
  LogWithFields(LogLevel::kWarn, "s3 read failed", fields);
  if (st.code() == StatusCode::kUnavailable) {
    return ApiError{503, "storage_unavailable",
                    "the S3 storage did not answer for " + url + " (unreachable or timed out): try again later"};
  }
  return ApiError{502, "storage_error", "the S3 storage refused to serve " + url +
                                            ": the server's S3 settings (credentials, region, endpoint) need fixing; "
                                            "its log has the details under request id " + ctx.request_id};
}

Outcome Server::Impl::Embed(const http::Request& req, const Ctx& ctx) {
  if (!vector_on()) return VectorOff();
  Json body = Json::parse(req.body, nullptr, false);
  if (body.is_discarded()) return BadRequest("the request body is not valid JSON");
  if (!body.is_object()) return BadRequest("the request body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (key != "imageUrl" && key != "imageBase64" && key != "text" && key != "useCache") {
      return BadRequest("unknown field '" + key.substr(0, 40) + "': give imageUrl, imageBase64 or text (and useCache)");
    }
  }
  if (body.contains("useCache") && !body["useCache"].is_boolean()) return BadRequest("useCache must be true or false");
  const int given = static_cast<int>(body.contains("imageUrl")) + static_cast<int>(body.contains("imageBase64")) +
                    static_cast<int>(body.contains("text"));
  if (given != 1) return BadRequest("give exactly one of imageUrl, imageBase64 and text");
  std::vector<float> vec;
  std::string hash;
  bool cached = false;
  const bool use_cache = !body.contains("useCache") || body["useCache"].get<bool>();
  const auto start = Clock::now();
  if (body.contains("text")) {
    if (!body["text"].is_string() || body["text"].get<std::string>().empty()) return BadRequest("text must be a non-empty string");
    std::string text = body["text"].get<std::string>();
    if (text.size() > options.limits.max_query_bytes) {
      return BadRequest("text is longer than " + std::to_string(options.limits.max_query_bytes) + " bytes");
    }
    FS_TAKE(vec, EmbedText(text));
  } else {
    std::string bytes;
    if (body.contains("imageBase64")) {
      if (!body["imageBase64"].is_string()) return BadRequest("imageBase64 must be a string");
      auto decoded = Base64Decode(body["imageBase64"].get<std::string>());
      if (!decoded.ok()) return BadRequest("imageBase64 is not valid base64");
      bytes = std::move(decoded).value();
    } else {
      if (!body["imageUrl"].is_string()) return BadRequest("imageUrl must be a string");
      const std::string url = body["imageUrl"].get<std::string>();
      if (url.size() > 4096) return BadRequest("imageUrl is longer than 4096 bytes");
      ResolvedUrl resolved = ResolveImageUrl(url, roots, options.s3_buckets);
      // The user's folders apply as to documents, on the display path: the real path of a file
      // (a link out of the folders is as invisible as a missing file), "s3://bucket/key" for an
      // object. A refusal as missing or outside the roots of a path the user may not see is
      // answered as missing too, so nothing outside their folders can be probed.
      const bool asked_visible = resolved.requested.empty() || Visible(ctx.principal, RepairUtf8(resolved.requested));
      if (resolved.refusal == UrlRefusal::kNone) {
        const std::string display = resolved.bucket.empty() ? RepairUtf8(resolved.path)
                                                            : "s3://" + resolved.bucket + "/" + resolved.key;
        if (!Visible(ctx.principal, display)) return NoSuchImage();
      } else if (!asked_visible &&
                 (resolved.refusal == UrlRefusal::kNotFound || resolved.refusal == UrlRefusal::kOutsideRoots)) {
        return NoSuchImage();
      }
      switch (resolved.refusal) {
        case UrlRefusal::kNone: break;
        case UrlRefusal::kScheme: return ApiError{400, "url_scheme_not_allowed", resolved.message};
        case UrlRefusal::kBadPath: return ApiError{400, "invalid_path", resolved.message};
        case UrlRefusal::kOutsideRoots: return ApiError{403, "path_outside_storage_roots", resolved.message};
        case UrlRefusal::kNoRoots: return ApiError{403, "path_outside_storage_roots", resolved.message};
        case UrlRefusal::kBucketNotAllowed: return ApiError{403, "bucket_not_allowed", resolved.message};
        case UrlRefusal::kNotFound: return NoSuchImage();
      }
      if (!resolved.bucket.empty()) {
        FS_TAKE(bytes, ReadS3Object(resolved.bucket, resolved.key, ctx));
      } else {
        auto read = ReadRegularFileNoFollow(resolved.path, options.limits.max_image_bytes);
        if (!read.ok()) {
          if (read.status().code() == StatusCode::kResourceExhausted) return ApiError{413, "payload_too_large", read.status().message()};
          return NoSuchImage();
        }
        bytes = std::move(read).value();
      }
    }
    FS_TAKE(vec, EmbedImage(bytes, &hash, use_cache, &cached));
  }
  Reply reply;
  reply.body = EmbeddingReplyToJson(
      {vec, options.embedder->model_id(), std::chrono::duration<double>(Clock::now() - start).count(), cached, hash});
  return reply;
}

Outcome Server::Impl::DocumentMeta(const http::Request& req, const Ctx& ctx) {
  Document doc;
  FS_TAKE(doc, VisibleDocument(req.matches[1], ctx));
  Json j = Json::parse(DocumentToJson(doc, false));
  if (doc.mime.rfind("image/", 0) == 0) j["thumbnailUrl"] = "/documents/" + std::to_string(doc.id) + "/thumbnail";
  j["contentUrl"] = "/documents/" + std::to_string(doc.id) + "/content";
  return JsonReply(j);
}

Outcome Server::Impl::Failures(const http::Request& req, const Ctx& ctx) {
  const std::string dead = req.get_param_value("dead");
  if (req.has_param("dead") && dead != "true" && dead != "false") {
    return ApiError{400, "invalid_argument", "dead must be true or false"};
  }
  size_t limit = 100;
  if (req.has_param("limit")) {
    const std::string v = req.get_param_value("limit");
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 1 || n > 1000) {
      return ApiError{400, "invalid_argument", "limit must be an integer from 1 to 1000"};
    }
    limit = static_cast<size_t>(n);
  }
  // The counts cover every entry the user may see; `dead` only filters the list: true = dead
  // letters, false = entries still being retried, absent = both.
  auto list = options.engine->store()->ListFailures(/*dead_only=*/false, 100000);
  if (!list.ok()) return ApiError{500, "internal", list.status().ToString()};
  Json items = Json::array();
  uint64_t retrying = 0, dead_n = 0;
  for (const FailureRecord& f : *list) {
    if (!Visible(ctx.principal, f.path)) continue;  // a user sees failures under their prefixes only
    ++(f.dead() ? dead_n : retrying);
    if (items.size() >= limit || (!dead.empty() && f.dead() != (dead == "true"))) continue;
    Json j = {{"path", f.path}, {"stage", f.stage}, {"reason", f.reason}, {"attempts", f.attempts},
              {"firstFailed", FormatTimeSecondsNs(f.first_ns)}, {"lastFailed", FormatTimeSecondsNs(f.last_ns)}, {"dead", f.dead()}};
    j["nextRetry"] = f.dead() ? Json(nullptr) : Json(FormatTimeSecondsNs(f.retry_at_ns));
    items.push_back(std::move(j));
  }
  return JsonReply({{"failures", std::move(items)}, {"retrying", retrying}, {"dead", dead_n}});
}

// A JPEG of at most 256 px made from the image (shrink-on-load decode, the decoder's limits), cached
// under the data directory by content hash, so each distinct image is decoded once.
Outcome Server::Impl::Thumbnail(const Document& doc) {
  const bool hashed = doc.sha256.size() == 64 &&
                      doc.sha256.find_first_not_of("0123456789abcdef") == std::string::npos;
  const std::string dir = options.engine->data_dir() + "/thumbs/" + (hashed ? doc.sha256.substr(0, 2) : "");
  const std::string cached = dir + "/" + doc.sha256 + ".jpg";
  Env* env = Env::Default();
  auto jpeg_reply = [&](std::string bytes) {
    Reply r;
    r.body = std::move(bytes);
    r.content_type = "image/jpeg";
    r.headers.emplace_back("Content-Security-Policy", kContentCsp);
    r.headers.emplace_back("Cache-Control", "private, max-age=3600");
    return r;
  };
  if (hashed && env->FileExists(cached)) {
    auto bytes = env->ReadFile(cached, 1 << 20);
    if (bytes.ok()) return jpeg_reply(std::move(bytes).value());
  }
  auto path = PathFromFileUri(doc.uri);
  if (!path.ok() || path->empty() || (*path)[0] != '/') return NotFoundError("document " + std::to_string(doc.id) + " has no local file");
  auto file = OpenRegularFileNoFollow(*path, options.limits.max_thumbnail_bytes);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kResourceExhausted) {
      return ApiError{404, "thumbnail_unavailable", "the image is larger than the thumbnail limit; open its content instead"};
    }
    return ApiError{404, "file_unavailable", "the file of document " + std::to_string(doc.id) +
                                                 " is gone or is no longer a regular file: re-index its folder"};
  }
  std::string bytes(file->size(), '\0');
  bytes.resize(file->ReadAt(0, bytes.data(), bytes.size()));
  image::DecodeOptions d;
  d.max_side = 2048;
  d.min_short_side = 512;  // DCT shrink-on-load where the format allows; 2x the thumbnail side
  d.max_pixels = options.limits.max_image_pixels;
  d.max_file_bytes = options.limits.max_thumbnail_bytes;
  d.allow_truncated = true;
  auto decoded = image::DecodeMemory(bytes, d);
  if (!decoded.ok()) {
    return ApiError{404, "thumbnail_unavailable", "no thumbnail: " + decoded.status().message()};
  }
  auto jpeg = image::MakeThumbnail(*decoded, 256);
  if (!jpeg.ok()) return ApiError{404, "thumbnail_unavailable", "no thumbnail: " + jpeg.status().message()};
  if (hashed && env->CreateDirs(dir).ok()) {
    Status st = env->WriteFileAtomic(cached, *jpeg);  // best effort: the next request regenerates it
    if (!st.ok()) LogWarn("thumbnail cache: " + st.ToString());
  }
  return jpeg_reply(std::move(jpeg).value());
}

Outcome Server::Impl::DocumentBytes(const http::Request& req, const Ctx& ctx, bool thumbnail) {
  Document doc;
  FS_TAKE(doc, VisibleDocument(req.matches[1], ctx));
  const bool is_image = doc.mime.rfind("image/", 0) == 0 && doc.mime != "image/svg+xml";
  if (thumbnail && !is_image) {
    return ApiError{404, "thumbnail_unavailable", "document " + std::to_string(doc.id) + " is not an image: it has no thumbnail"};
  }
  if (thumbnail) return Thumbnail(doc);
  const uint64_t cap = options.limits.max_content_bytes;
  auto path = PathFromFileUri(doc.uri);
  if (!path.ok() || path->empty() || (*path)[0] != '/') return NotFoundError("document " + std::to_string(doc.id) + " has no local file");
  auto file = OpenRegularFileNoFollow(*path, cap);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kResourceExhausted) {
      return ApiError{413, "payload_too_large", "the file is larger than the server's content limit: " + file.status().message()};
    }
    return ApiError{404, "file_unavailable", "the file of document " + std::to_string(doc.id) +
                                                 " is gone or is no longer a regular file: re-index its folder"};
  }
  Reply r;
  r.file = std::make_shared<OpenFile>(std::move(file).value());
  r.content_type = doc.mime.empty() ? "application/octet-stream" : doc.mime;
  r.headers.emplace_back("Content-Security-Policy", kContentCsp);
  r.headers.emplace_back("Cache-Control", "private, max-age=60");
  std::string safe_name;
  for (char c : doc.name) safe_name += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
  r.headers.emplace_back("Content-Disposition", std::string(is_image ? "inline" : "attachment") + "; filename=\"" + safe_name + "\"");
  return r;
}

Outcome Server::Impl::MetricsPage() {
  {
    std::lock_guard lock(stats_mu);
    if (Clock::now() - stats_at > std::chrono::seconds(5)) {
      // The index searches run on: with the opensearch back end, the whole index (every writer's).
      auto counts = options.engine->CountIndex();
      if (counts.ok()) {
        stats_documents = counts->documents;
        stats_embeddings = 0;
        stats_active_vectors = 0;
        const std::string active = options.engine->vectors() ? options.engine->vectors()->model() : "";
        for (const auto& [model, n] : counts->vectors_by_model) {
          stats_embeddings += n;
          if (model == active) stats_active_vectors = n;
        }
        stats_at = Clock::now();
      } else {
        LogWarn("metrics: counting the index: " + counts.status().ToString());
      }
      auto fc = options.engine->store()->CountFailures();
      if (fc.ok()) stats_failures = *fc;
    }
    metrics.Set("filesearch_index_documents", {}, static_cast<double>(stats_documents));
    metrics.Set("filesearch_index_embeddings", {}, static_cast<double>(stats_embeddings));
    SetFailureMetrics(metrics, stats_failures);
  }
  VectorIndex* v = options.engine->vectors();
  if (v) {
    // Another writer (`serve --watch`, a worker) adds vectors through the store; a search catches
    // up before it runs, and so does the gauge, or it would read what the snapshot held at start.
    Status refreshed = v->Refresh();
    if (!refreshed.ok()) LogWarn("metrics: catching up the vector index: " + refreshed.ToString());
  }
  if (options.engine->backend() == "opensearch") {
    std::lock_guard lock(stats_mu);
    metrics.Set("filesearch_index_vectors", {}, static_cast<double>(stats_active_vectors));
  } else {
    metrics.Set("filesearch_index_vectors", {}, v ? static_cast<double>(v->size()) : 0.0);
  }
  const KeywordIndexInfo kw = options.engine->store()->KeywordIndexStatus();
  metrics.Set("filesearch_keyword_index_ready", {}, kw.ready ? 1.0 : 0.0);
  metrics.Set("filesearch_keyword_index_bytes", {}, static_cast<double>(kw.memory_bytes));
  metrics.Set("filesearch_keyword_index_delta_documents", {}, static_cast<double>(kw.delta_documents));
  metrics.Set("filesearch_keyword_searches_total", {{"path", "accelerator"}}, static_cast<double>(kw.served));
  metrics.Set("filesearch_keyword_searches_total", {{"path", "fts5"}}, static_cast<double>(kw.passed_to_fts));
  metrics.Set("filesearch_http_in_flight_requests", {}, static_cast<double>(in_flight.load()));
  const http::Stats hs = http->stats();
  metrics.Set("filesearch_http_open_connections", {}, static_cast<double>(hs.open_connections));
  metrics.Set("filesearch_http_queued_requests", {}, static_cast<double>(hs.queued_requests));
  metrics.Set("filesearch_http_refused_connections_total", {}, static_cast<double>(hs.refused_connections));
  metrics.Set("filesearch_http_rate_limited_total", {}, static_cast<double>(hs.rate_limited_requests));
  metrics.Set("filesearch_http_timed_out_connections_total", {}, static_cast<double>(hs.timed_out_connections));
  if (EmbeddingCache* cache = options.engine->cache()) SetCacheMetrics(metrics, cache->counters());
  if (options.embedder) {
    const QueryEmbedderStats q = options.embedder->stats();
    metrics.Set("filesearch_query_embeddings_total", {}, static_cast<double>(q.text_queries));
    metrics.Set("filesearch_query_embedding_cache_hits_total", {}, static_cast<double>(q.text_cache_hits));
    metrics.Set("filesearch_text_forward_passes_total", {}, static_cast<double>(q.text_forward_passes));
    metrics.Set("filesearch_text_forward_queries_total", {}, static_cast<double>(q.text_batched));
  }
  Reply r;
  r.body = metrics.Render();
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return r;
}

Outcome Server::Impl::Config(const Ctx&) {
  const std::shared_ptr<const VectorSearchSwitch> vs = vector_switch.load();
  std::string reason;
  if (!vs->enabled) {
    reason = "Image search is turned off by the administrator" + (vs->reason.empty() ? "." : ": " + vs->reason);
  } else if (!options.embedder) reason = options.model_note.empty() ? "Image search is off: no CLIP model loaded." : options.model_note;
  VectorIndex* v = options.engine->vectors();
  Json j = {{"vectorSearch", vs->enabled},
            {"imageSearch", vs->enabled && options.embedder != nullptr},
            {"similarSearch", vs->enabled && v != nullptr},
            {"model", options.embedder ? Json(options.embedder->model_id()) : (v ? Json(v->model()) : Json(nullptr))},
            {"reason", reason.empty() ? Json(nullptr) : Json(reason)},
            {"authRequired", !options.auth.disabled},
            {"maxImageBytes", options.limits.max_image_bytes},
            {"maxLimit", 100}};
  return JsonReply(j);
}

ApiError Server::Impl::VectorOff() const {
  const std::string reason = vector_switch.load()->reason;
  return {400, "vector_search_disabled", "vector search is turned off on this server" +
                                             (reason.empty() ? std::string() : " (" + reason + ")") +
                                             ": search by keywords instead"};
}

void Server::Impl::SetVectorSwitch(VectorSearchSwitch state, const std::string& who) {
  const bool enabled = state.enabled;
  const std::string reason = state.reason;
  vector_switch.store(std::make_shared<const VectorSearchSwitch>(std::move(state)));
  metrics.Set("filesearch_vector_search_enabled", {}, enabled ? 1.0 : 0.0);
  const LogField fields[] = {{"vector_search", enabled ? "on" : "off"}, {"reason", reason}, {"by", who}};
  LogWithFields(LogLevel::kInfo, "vector search switched", fields);
}

// POST /admin/vector-search {"enabled": false, "reason": "..."}: an admin token (claim
// "admin": true) turns vector search off or on; without auth only with --admin-without-auth.
Outcome Server::Impl::AdminVectorSearch(const http::Request& req, const Ctx& ctx) {
  if (options.auth.disabled && !options.admin_without_auth) {
    return ApiError{403, "admin_required", "admin requests are refused on a server without authentication: "
                                           "start it with --admin-without-auth, or with auth and an admin token"};
  }
  if (!options.auth.disabled && !ctx.principal.admin) {
    return ApiError{403, "admin_required", "this request needs an admin token (a JWT with the claim \"admin\": true)"};
  }
  Json body = Json::parse(req.body, nullptr, false);
  if (!body.is_object()) return BadRequest("the request body must be a JSON object: {\"enabled\": false, \"reason\": \"...\"}");
  for (const auto& [key, value] : body.items()) {
    if (key != "enabled" && key != "reason") return BadRequest("unknown field '" + key.substr(0, 40) + "': give enabled and reason");
  }
  if (!body.contains("enabled") || !body["enabled"].is_boolean()) return BadRequest("enabled must be true or false");
  VectorSearchSwitch state;
  state.enabled = body["enabled"].get<bool>();
  if (body.contains("reason") && !body["reason"].is_null()) {
    if (!body["reason"].is_string()) return BadRequest("reason must be a string");
    state.reason = body["reason"].get<std::string>();
    if (state.reason.size() > 1000) return BadRequest("reason is longer than 1000 bytes: shorten it");
  }
  SetVectorSwitch(state, "admin request by " + (ctx.principal.subject.empty() ? "anonymous" : ctx.principal.subject));
  return JsonReply({{"vectorSearch", state.enabled}, {"reason", state.reason.empty() ? Json(nullptr) : Json(state.reason)}});
}

Outcome Server::Impl::Ready() {
  auto gen = options.engine->store()->Generation();
  if (!gen.ok()) return ApiError{503, "unavailable", "the store cannot be read: " + gen.status().message()};
  return JsonReply({{"status", "ready"}});
}

Outcome Server::Impl::Asset(const std::string& name) {
  for (const UiAsset& a : UiAssets()) {
    if (name != a.name) continue;
    Reply r;
    r.body.assign(reinterpret_cast<const char*>(a.data), a.size);
    r.content_type = MimeOfAsset(name);
    r.headers.emplace_back("Content-Security-Policy", kUiCsp);
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  return NotFoundError("no such UI file");
}

void Server::Impl::Routes() {
  Route("GET", "/healthz", "/healthz", false, [](const http::Request&, const Ctx&) -> Outcome {
    return JsonReply({{"status", "ok"}});
  });
  Route("GET", "/readyz", "/readyz", false, [this](const http::Request&, const Ctx&) { return Ready(); });
  Route("GET", "/metrics", "/metrics", !options.metrics_open, [this](const http::Request&, const Ctx&) { return MetricsPage(); });
  Route("GET", "/config", "/config", false, [this](const http::Request&, const Ctx& c) { return Config(c); });
  Route("GET", "/", "/ui", false, [this](const http::Request&, const Ctx&) { return Asset("index.html"); });
  Route("GET", R"(/ui/([A-Za-z0-9_.-]{1,64}))", "/ui", false,
        [this](const http::Request& req, const Ctx&) { return Asset(req.matches[1]); });
  Route("GET", "/search", "/search", true, [this](const http::Request& req, const Ctx& c) { return Search(req, c); });
  Route("POST", "/search", "/search", true, [this](const http::Request& req, const Ctx& c) { return Search(req, c); });
  Route("POST", "/embed", "/embed", true, [this](const http::Request& req, const Ctx& c) { return Embed(req, c); });
  Route("POST", "/admin/vector-search", "/admin/vector-search", true,
        [this](const http::Request& req, const Ctx& c) { return AdminVectorSearch(req, c); });
  Route("GET", "/failures", "/failures", true, [this](const http::Request& req, const Ctx& c) { return Failures(req, c); });
  Route("GET", R"(/documents/([^/]{1,32}))", "/documents/{id}", true,
        [this](const http::Request& req, const Ctx& c) { return DocumentMeta(req, c); });
  Route("GET", R"(/documents/([^/]{1,32})/thumbnail)", "/documents/{id}/thumbnail", true,
        [this](const http::Request& req, const Ctx& c) { return DocumentBytes(req, c, true); });
  Route("GET", R"(/documents/([^/]{1,32})/content)", "/documents/{id}/content", true,
        [this](const http::Request& req, const Ctx& c) { return DocumentBytes(req, c, false); });

}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Create(const ServerOptions& options) {
  if (!options.engine) return Status::InvalidArgument("the server needs an engine");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  FS_ASSIGN_OR_RETURN(impl->verifier, JwtVerifier::Create(options.auth));
  FS_ASSIGN_OR_RETURN(impl->roots, RealRoots(options.storage_roots));
  for (const std::string& bucket : options.s3_buckets) {
    if (!storage::IsValidBucketName(bucket)) {
      return Status::InvalidArgument("--s3-bucket '" + bucket + "' is not an S3 bucket name (3-63 characters of a-z, 0-9, '.' and '-')");
    }
  }
  if (!options.s3_buckets.empty()) {
    FS_ASSIGN_OR_RETURN(impl->s3, storage::S3Client::Create(options.s3));
  }
  // The engine turns query text and images into vectors with the server's embedder.
  if (options.embedder) options.engine->SetQueryEmbedder(options.embedder);
  Impl* raw = impl.get();
  const ServerLimits& l = options.limits;
  http::Options h;
  h.host = options.host;
  h.port = options.port;
  h.worker_threads = std::max(1, options.threads);
  h.listen_backlog = l.listen_backlog;
  h.max_connections = l.max_connections;
  h.max_connections_per_client = l.max_connections_per_client;
  h.requests_per_second_per_client = l.requests_per_second_per_client;
  h.request_burst_per_client = l.request_burst_per_client;
  h.max_request_line_bytes = l.max_request_line_bytes;
  h.max_header_bytes = l.max_header_bytes;
  h.max_header_count = l.max_header_count;
  h.max_body_bytes = l.max_body_bytes;
  h.header_timeout_ms = l.header_timeout_s * 1000;
  h.body_timeout_ms = l.request_timeout_s * 1000;
  h.write_timeout_ms = l.request_timeout_s * 1000;
  h.idle_timeout_ms = l.idle_timeout_s * 1000;
  h.handler = [raw](http::Request& req, http::Response& res) { raw->Dispatch(req, res); };
  h.on_refused = [raw](int status, std::string_view code) {
    raw->metrics.Add("filesearch_http_errors_total", {{"code", std::string(code)}});
    raw->metrics.Add("filesearch_http_requests_total", {{"route", "unmatched"}, {"method", "-"}, {"status", std::to_string(status)}});
  };
  FS_ASSIGN_OR_RETURN(raw->http, http::Server::Create(std::move(h)));
  raw->DescribeMetrics();
  raw->vector_switch.store(std::make_shared<const VectorSearchSwitch>(VectorSearchSwitch{options.vector_search, options.vector_search_reason}));
  raw->metrics.Set("filesearch_vector_search_enabled", {}, options.vector_search ? 1.0 : 0.0);
  raw->Routes();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::Start() {
  std::lock_guard lock(impl_->run_mu);
  return impl_->http->Start();
}

int Server::port() const { return impl_->http->port(); }

void Server::SetVectorSearch(const VectorSearchSwitch& state, const std::string& who) { impl_->SetVectorSwitch(state, who); }

VectorSearchSwitch Server::vector_search() const { return *impl_->vector_switch.load(); }

Metrics& Server::metrics() { return impl_->metrics; }

void Server::Stop() {
  std::lock_guard lock(impl_->run_mu);
  impl_->http->Stop();  // idempotent
}

}  // namespace fs::server
