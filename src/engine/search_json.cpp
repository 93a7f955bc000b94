#include "engine/search_json.h"

#include <charconv>
#include <cmath>
#include <ctime>

#include <nlohmann/json.hpp>

#include "core/json_dump.h"

namespace fs {
namespace {

nlohmann::ordered_json DocJson(const Document& d) {
  nlohmann::ordered_json j = {{"id", d.id}, {"uri", d.uri}, {"path", d.path}, {"name", d.name}, {"extension", d.ext},
                              {"type", d.mime}, {"size", d.size}, {"modified", FormatTimeNs(d.mtime_ns)}, {"sha256", d.sha256}};
  // Photo metadata, only when the file has it.
  if (d.taken_ns) j["taken"] = FormatTimeNs(*d.taken_ns);
  if (!d.camera.empty()) j["camera"] = d.camera;
  if (d.gps_lat && d.gps_lon) j["gps"] = {{"lat", *d.gps_lat}, {"lon", *d.gps_lon}};
  // Document metadata (office files, e-mail, HTML), only when the file has it.
  if (!d.title.empty()) j["title"] = d.title;
  if (!d.author.empty()) j["author"] = d.author;
  if (d.created_ns) j["created"] = FormatTimeNs(*d.created_ns);
  if (d.saved_ns) j["saved"] = FormatTimeNs(*d.saved_ns);
  return j;
}

}  // namespace

std::string FormatTimeNs(int64_t ns) {
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  auto ms = static_cast<int>((ns % 1000000000) / 1000000);
  if (ms < 0) { ms += 1000; --secs; }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::string DocumentToJson(const Document& doc, bool with_content) {
  nlohmann::ordered_json j = DocJson(doc);
  if (with_content) j["content"] = doc.content;
  return DumpJson(j);
}

std::string FormatTimeSecondsNs(int64_t ns) {
  const std::string ms = FormatTimeNs(ns);  // "...T12:00:00.123Z"
  return ms.substr(0, ms.size() - 5) + "Z";
}

std::string SearchResultToJson(const SearchResult& r, const JsonRenderOptions& options) {
  nlohmann::ordered_json hits = nlohmann::ordered_json::array();
  for (const SearchHit& h : r.hits) {
    nlohmann::ordered_json j = DocJson(h.doc);
    j["score"] = h.score;
    j["textScore"] = h.text.present ? nlohmann::ordered_json(h.text.score) : nlohmann::ordered_json(nullptr);
    j["textRank"] = h.text.present ? nlohmann::ordered_json(h.text.rank) : nlohmann::ordered_json(nullptr);
    j["vectorScore"] = h.vector.present ? nlohmann::ordered_json(h.vector.score) : nlohmann::ordered_json(nullptr);
    j["vectorRank"] = h.vector.present ? nlohmann::ordered_json(h.vector.rank) : nlohmann::ordered_json(nullptr);
    nlohmann::ordered_json matched = nlohmann::ordered_json::array();
    if (h.text.present) matched.push_back("words");
    if (h.vector.present) matched.push_back("picture");
    j["matched"] = std::move(matched);
    if (!options.thumbnail_base.empty() && h.doc.mime.rfind("image/", 0) == 0) {
      j["thumbnailUrl"] = options.thumbnail_base + std::to_string(h.doc.id) + "/thumbnail";
    }
    hits.push_back(std::move(j));
  }
  nlohmann::ordered_json out = {{"mode", std::string(SearchModeName(r.mode))},
                        {"total", r.total},
                        {"totalExact", r.total_exact},
                        {"nextCursor", r.next_cursor.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.next_cursor)},
                        {"tookMs", r.took_ms}};
  if (r.mode == SearchMode::kHybrid) out["fusedBy"] = r.fused_by;
  out["hits"] = std::move(hits);
  return DumpJson(out, options.pretty ? 2 : -1);
}

std::string FloatsToJson(std::span<const float> values) {
  std::string out = "[";
  out.reserve(values.size() * 13 + 2);
  char buf[32];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    if (!std::isfinite(values[i])) {
      out += "null";  // JSON has no NaN or infinity
      continue;
    }
    // to_chars of a float (not a double): the shortest form that round-trips to this float.
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, values[i]);
    out.append(buf, ec == std::errc() ? end : buf);
  }
  out += ']';
  return out;
}

std::string EmbeddingReplyToJson(const EmbeddingReply& reply) {
  nlohmann::ordered_json rest = {{"dimension", reply.embedding.size()}, {"model", reply.model},
                                 {"inferenceTime", reply.inference_seconds}, {"cached", reply.cached}};
  if (!reply.image_hash.empty()) rest["imageHash"] = reply.image_hash;
  // The embedding is spliced in as text: nlohmann would print each float widened to a double,
  // with 17 digits (0.10000000149011612), more than doubling the size of the reply.
  const std::string tail = rest.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return R"({"success":true,"data":{"embedding":)" + FloatsToJson(reply.embedding) + "," + tail.substr(1) + "}";
}

}  // namespace fs
