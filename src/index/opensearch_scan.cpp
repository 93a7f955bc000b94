// ScanIndex: PIT + search_after paging over doc_id. See the header.
#include "index/opensearch_scan.h"

#include <nlohmann/json.hpp>

namespace fs {
namespace {

using Json = nlohmann::json;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

OpenSearchRequest Post(std::string path, std::string body) {
  OpenSearchRequest r;
  r.method = "POST";
  r.path = std::move(path);
  r.body = std::move(body);
  r.read_only_post = true;  // a search or a PIT: safe to retry
  return r;
}

ScanHit HitOf(const Json& s) {
  ScanHit h;
  h.doc_id = s.value("doc_id", int64_t{0});
  h.uri = s.value("uri", "");
  h.path = s.value("path", "");
  h.mime = s.value("mime", "");
  h.sha256 = s.value("sha256", "");
  h.size = s.value("size", uint64_t{0});
  if (s.contains("phash") && s["phash"].is_number_integer()) h.phash = static_cast<uint64_t>(s["phash"].get<int64_t>());
  h.embedding_model = s.value("embedding_model", "");
  if (s.contains("image_embedding") && s["image_embedding"].is_array()) {
    h.vector.reserve(s["image_embedding"].size());
    for (const Json& x : s["image_embedding"]) h.vector.push_back(x.is_number() ? x.get<float>() : 0.0f);
  }
  return h;
}

}  // namespace

std::string ImagesWithoutVectorFilter(const std::string& model) {
  Json images = {{"term", {{"mime_family", "image"}}}};
  Json of_model = {{"term", {{"embedding_model", model}}}};
  Json without = {{"bool", {{"must_not", Json::array({of_model})}}}};
  return Dump(Json::array({images, without}));
}

std::string NonEmptyFilter() {
  Json not_empty = {{"range", {{"size", {{"gt", 0}}}}}};
  return Dump(Json::array({not_empty}));
}

std::string VectorsOfModelFilter(const std::string& model) {
  Json of_model = {{"term", {{"embedding_model", model}}}};
  return Dump(Json::array({of_model}));
}

Status ScanIndex(const OpenSearchClient& client, const ScanOptions& o,
                 const std::function<Status(std::vector<ScanHit>& hits)>& page) {
  // A point in time, where the cluster has the API.
  std::string pit;
  {
    OpenSearchRequest open = Post("/" + o.index + "/_search/point_in_time", "");
    open.query = {{"keep_alive", o.keep_alive}};
    FS_ASSIGN_OR_RETURN(OpenSearchReply reply, client.Send(open));
    if (reply.ok()) {
      const Json j = Json::parse(reply.body, nullptr, false);
      if (j.is_object() && j.contains("pit_id") && j["pit_id"].is_string()) pit = j["pit_id"].get<std::string>();
    } else if (reply.status == 404 && reply.body.find("index_not_found") != std::string::npos) {
      return Status::NotFound(client.DescribeError("scan " + o.index, reply));
    }
  }
  struct Closer {
    const OpenSearchClient& client;
    const std::string& pit;
    ~Closer() {
      if (pit.empty()) return;
      OpenSearchRequest close;
      close.method = "DELETE";
      close.path = "/_search/point_in_time";
      close.body = Dump(Json{{"pit_id", Json::array({pit})}});
      (void)client.Send(close);  // it expires by itself after keep_alive
    }
  } closer{client, pit};

  Json source = Json::array({"doc_id", "uri", "path", "mime", "sha256", "size", "phash", "embedding_model"});
  if (o.vectors) source.push_back("image_embedding");
  Json query = Json{{"match_all", Json::object()}};
  if (!o.filter.empty()) {
    Json filter = Json::parse(o.filter, nullptr, false);
    if (filter.is_discarded()) return Status::InvalidArgument("scan: the filter is not JSON");
    query = {{"bool", {{"filter", filter}}}};
  }
  std::optional<int64_t> after;
  for (;;) {
    Json body = {{"size", o.page},
                 {"query", query},
                 {"_source", source},
                 {"sort", Json::array({{{"doc_id", "asc"}}})},
                 {"track_total_hits", false}};
    if (after) body["search_after"] = Json::array({*after});
    std::string path = "/" + o.index + "/_search";
    if (!pit.empty()) {
      body["pit"] = {{"id", pit}, {"keep_alive", o.keep_alive}};
      path = "/_search";  // a PIT names its index itself
    }
    FS_ASSIGN_OR_RETURN(OpenSearchReply reply, client.Send(Post(path, Dump(body))));
    if (!reply.ok()) return Status::IOError(client.DescribeError("scan " + o.index, reply));
    const Json j = Json::parse(reply.body, nullptr, false);
    if (!j.is_object() || !j.contains("hits") || !j["hits"].contains("hits") || !j["hits"]["hits"].is_array()) {
      return Status::IOError("OpenSearch sent a scan reply without hits");
    }
    std::vector<ScanHit> hits;
    for (const Json& h : j["hits"]["hits"]) {
      if (!h.contains("_source") || !h["_source"].is_object()) continue;
      hits.push_back(HitOf(h["_source"]));
    }
    if (hits.empty()) return Status::Ok();
    after = hits.back().doc_id;
    const bool last = hits.size() < o.page;
    FS_RETURN_IF_ERROR(page(hits));
    if (last) return Status::Ok();
  }
}

}  // namespace fs
