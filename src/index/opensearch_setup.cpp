#include "index/opensearch_setup.h"

#include <nlohmann/json.hpp>
#include <vector>

namespace fs {
namespace {

using nlohmann::json;

constexpr const char* kVectorField = "image_embedding";

// One analyzer for every searchable text field. File names first: '.' and '_' become spaces (the
// standard tokenizer would keep "report.pdf" and "q3_report" whole, as Unicode word rules say). Latin: lower-cased and accent-folded ("Café" and
// "CAFE" both index as "cafe"). Japanese and Chinese: the standard tokenizer gives one token per
// ideograph (and per kana run); cjk_bigram joins neighbours into bigrams and keeps the single
// characters too (output_unigrams), so a one-character query finds its character and a
// two-character query its word: "請求" finds "2024年請求書.pdf". cjk_width folds full-width Latin
// and half-width kana first.
// English word forms as the embedded tokenizer has them (index/fts_tokenizer.h): fs_text indexes
// every word and, at the same position, its Snowball English stem (keyword_repeat + snowball +
// remove_duplicates); fs_text_search, the query side, keeps the stem alone.
// Parts of names: fs_parts (the `parts` subfields of name and path) indexes the parts of words split
// where letters meet digits or case changes, two characters or more, stemmed: "kodim01" gives
// "kodim" and "01". A separate subfield, so that the main fields keep their positions (phrases)
// and a part-only match scores below a whole-word one (opensearch_query.cpp).
json AnalysisSettings() {
  const json text_filters = {"cjk_width", "lowercase", "asciifolding", "fs_cjk_bigram"};
  json index_filters = text_filters, search_filters = text_filters;
  for (const char* f : {"keyword_repeat", "fs_english_stem", "remove_duplicates"}) index_filters.push_back(f);
  search_filters.push_back("fs_english_stem");
  auto analyzer = [](json filters) {
    return json{{"type", "custom"},
                {"char_filter", {"fs_name_separators"}},
                {"tokenizer", "standard"},
                {"filter", std::move(filters)}};
  };
  return {
      {"char_filter", {{"fs_name_separators", {{"type", "pattern_replace"}, {"pattern", "[._]"}, {"replacement", " "}}}}},
      {"filter",
       {{"fs_cjk_bigram", {{"type", "cjk_bigram"}, {"output_unigrams", true}}},
        {"fs_english_stem", {{"type", "snowball"}, {"language", "English"}}},
        {"fs_word_parts",
         {{"type", "word_delimiter"},
          {"generate_word_parts", true},
          {"generate_number_parts", true},
          {"split_on_case_change", true},
          {"split_on_numerics", true},
          {"preserve_original", false},
          {"stem_english_possessive", false}}},
        {"fs_min2", {{"type", "length"}, {"min", 2}}}}},
      {"analyzer",
       {{"fs_text", analyzer(index_filters)},
        {"fs_text_search", analyzer(search_filters)},
        {"fs_parts", analyzer({"cjk_width", "fs_word_parts", "lowercase", "asciifolding", "fs_min2", "fs_english_stem"})}}},
      {"normalizer", {{"fs_lowercase", {{"type", "custom"}, {"filter", {"lowercase", "asciifolding"}}}}}},
  };
}

json VectorField(const OpenSearchIndexSpec& spec) {
  return {{"type", "knn_vector"},
          {"dimension", spec.dimension},
          {"method",
           {{"name", "hnsw"},
            {"space_type", spec.space},
            {"engine", spec.engine},
            {"parameters", {{"m", spec.m}, {"ef_construction", spec.ef_construction}}}}}};
}

// The document fields filesearch writes and searches, beside the vector (index/opensearch_query.h
// writes and queries them). Times are ns since the epoch, as the store keeps them.
json DocumentFields() {
  const json text = {{"type", "text"}, {"analyzer", "fs_text"}, {"search_analyzer", "fs_text_search"}};
  // Queries are not split into parts ("photo0" finds photo0.png, not every photoN.png), as in
  // the embedded back end: a query word matches a whole word or a part of one.
  const json parts = {{"type", "text"}, {"analyzer", "fs_parts"}, {"search_analyzer", "fs_text_search"}};
  const json keyword = {{"type", "keyword"}};
  const json number = {{"type", "long"}};
  return {
      {"doc_id", number},  // the stable id (first 63 bits of SHA-256 of the uri)
      {"uri", keyword},
      {"name", {{"type", "text"},
                {"analyzer", "fs_text"},
                {"search_analyzer", "fs_text_search"},
                {"fields", {{"keyword", {{"type", "keyword"}, {"ignore_above", 1024}}}, {"parts", parts}}}}},
      {"path", {{"type", "keyword"}, {"fields", {{"text", text}, {"parts", parts}}}}},  // keyword: exact and prefix filters
      {"content", text},
      {"extension", {{"type", "keyword"}, {"normalizer", "fs_lowercase"}}},
      {"mime", keyword},
      {"mime_family", keyword},  // "image" of image/png: the type filter's families
      {"size", number},
      {"mtime_ns", number},
      {"taken_ns", number},
      {"sha256", keyword},
      {"camera", keyword},
      {"phash", number},  // 64-bit perceptual hash of an image's pixels (duplicates)
      {"title", text},   // document metadata; also at the head of content
      {"author", text},
      {"created_ns", number},
      {"saved_ns", number},
      {"gps", {{"type", "geo_point"}}},
      {"embedding_model", keyword},
      {"has_image_embedding", {{"type", "boolean"}}},
  };
}

json ParseBody(const OpenSearchReply& reply) { return json::parse(reply.body, nullptr, /*allow_exceptions=*/false); }

OpenSearchRequest Req(std::string method, std::string path, std::vector<std::pair<std::string, std::string>> query = {},
                      std::string body = "") {
  OpenSearchRequest request;
  request.method = std::move(method);
  request.path = std::move(path);
  request.query = std::move(query);
  request.body = std::move(body);
  return request;
}

// GET/HEAD/PUT..., with the error turned into a Status that names the operation.
Result<OpenSearchReply> Call(const OpenSearchClient& client, const std::string& what, OpenSearchRequest request,
                             std::vector<long> accepted = {}) {
  Result<OpenSearchReply> reply = client.Send(request);
  if (!reply.ok()) return reply.status();
  if (client.dry_run() || reply->ok()) return reply;
  for (long status : accepted) {
    if (reply->status == status) return reply;
  }
  const std::string message = client.DescribeError(what, *reply);
  if (reply->status == 401 || reply->status == 403) return Status::PermissionDenied(message);
  if (reply->status == 404) return Status::NotFound(message);
  if (reply->status == 429 || reply->status >= 500) return Status::Unavailable(message);
  return Status::FailedPrecondition(message);
}

std::string AsText(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

// The value at `path` inside nested objects; null where any step is missing or not an object.
json At(const json& root, std::initializer_list<std::string_view> path) {
  const json* node = &root;
  for (std::string_view key : path) {
    if (!node->is_object()) return json();
    const auto it = node->find(key);
    if (it == node->end()) return json();
    node = &*it;
  }
  return *node;
}

// The first (only) index in a GET /{index}/_settings or _mapping reply (an alias answers with the
// concrete index's name), or null.
json OnlyIndex(const OpenSearchReply& reply) {
  const json body = ParseBody(reply);
  if (!body.is_object() || body.empty()) return json();
  return body.begin().value();
}

// index.knn.algo_param.ef_search from a flat_settings reply, "" when unset.
std::string EfSearchOf(const OpenSearchReply& settings) {
  return AsText(At(OnlyIndex(settings), {"settings", "index.knn.algo_param.ef_search"}));
}

std::string NotFoundAdvice(const OpenSearchClient& client, const std::string& index) {
  return "index '" + index + "' does not exist at " + client.url() + ": run 'filesearch opensearch setup'";
}

// Starts a step's line; in a dry run the requests it would send follow on lines of their own.
void Step(const OpenSearchClient& client, std::ostream& out, const std::string& label) {
  out << label << (client.dry_run() ? " (dry run)\n" : ": ");
}

// [1/5]
Status CheckPlugin(const OpenSearchClient& client, std::ostream& out) {
  Step(client, out, "[1/5] k-NN plugin");
  if (ClassifyOpenSearchEndpoint(client.url()).serverless) {
    out << "built into OpenSearch Serverless (vector search collection), not checked\n";
    return Status::Ok();
  }
  FS_ASSIGN_OR_RETURN(OpenSearchReply reply, Call(client, "list plugins", Req("GET", "/_cat/plugins", {{"format", "json"}})));
  if (client.dry_run()) return Status::Ok();
  const json plugins = ParseBody(reply);
  for (const json& plugin : plugins) {
    // "opensearch-knn" when installed as a plugin; the plugin's class when on the class path.
    const std::string component = AsText(At(plugin, {"component"}));
    if (component == "opensearch-knn" || component.find(".knn.") != std::string::npos) {
      out << "installed (" << component << " " << AsText(At(plugin, {"version"})) << ")\n";
      return Status::Ok();
    }
  }
  out << "missing\n";
  return Status::FailedPrecondition("the k-NN plugin is not installed on " + client.url() +
                                    ": install it ('bin/opensearch-plugin install opensearch-knn' on each node) or "
                                    "use a distribution that bundles it (the default OpenSearch distribution and "
                                    "Amazon OpenSearch Service do)");
}

// [4/5]: index.knn must be on (it can only be set at creation); ef_search is set when it differs.
Status CheckSettings(const OpenSearchClient& client, const OpenSearchIndexSpec& spec, std::ostream& out,
                     std::vector<std::string>* changes) {
  Step(client, out, "[4/5] settings");
  FS_ASSIGN_OR_RETURN(OpenSearchReply reply, Call(client, "read the settings of " + spec.index,
                                                  Req("GET", "/" + spec.index + "/_settings", {{"flat_settings", "true"}})));
  if (client.dry_run()) return Status::Ok();
  const std::string knn = AsText(At(OnlyIndex(reply), {"settings", "index.knn"}));
  if (knn != "true") {
    out << "index.knn is " << (knn.empty() ? "not set" : knn) << "\n";
    return Status::FailedPrecondition(
        "index '" + spec.index + "' has index.knn " + (knn.empty() ? "unset" : knn) +
        ": k-NN search needs index.knn true, which can only be set when an index is created: run setup with "
        "another --opensearch-index and reindex into it, or delete this index and run setup again");
  }
  const std::string wanted = std::to_string(spec.ef_search);
  std::string current = EfSearchOf(reply);
  if (current != wanted) {
    const std::string before = current.empty() ? "the default (100)" : current;
    FS_RETURN_IF_ERROR(Call(client, "set ef_search on " + spec.index,
                            Req("PUT", "/" + spec.index + "/_settings", {},
                             json{{"index", {{"knn.algo_param.ef_search", spec.ef_search}}}}.dump()))
                           .status());
    changes->push_back("ef_search " + before + " -> " + wanted);
    current = wanted + " (was " + before + ")";
  }
  out << "index.knn true, ef_search " << current << "\n";
  return Status::Ok();
}

// [5/5]: the vector field must match exactly what filesearch writes and searches with.
Status CheckMapping(const OpenSearchClient& client, const OpenSearchIndexSpec& spec, std::ostream& out,
                    std::vector<std::string>* changes) {
  Step(client, out, "[5/5] mapping");
  FS_ASSIGN_OR_RETURN(OpenSearchReply reply,
                      Call(client, "read the mapping of " + spec.index, Req("GET", "/" + spec.index + "/_mapping")));
  if (client.dry_run()) return Status::Ok();
  const json properties = At(OnlyIndex(reply), {"mappings", "properties"});
  const json field = At(properties, {kVectorField});
  const std::string redo = ". A k-NN field cannot be changed in place: run setup with another --opensearch-index "
                           "and reindex into it, or delete index '" + spec.index + "' (losing its documents) and "
                           "run setup again; or pass the options that match it";
  if (!field.is_object()) {
    out << "no " << kVectorField << " field\n";
    return Status::FailedPrecondition("index '" + spec.index + "' has no " + kVectorField + " field" + redo);
  }
  const json method = At(field, {"method"});
  const json params = At(method, {"parameters"});
  // space_type sits in the method, or (2.16+) on the field itself.
  std::string space = AsText(At(method, {"space_type"}));
  if (space.empty()) space = AsText(At(field, {"space_type"}));
  if (space.empty()) space = "l2";  // the plugin's default when none is given
  const std::string engine = AsText(At(method, {"engine"}));
  std::vector<std::string> differences, notes;
  auto compare = [&](const std::string& what, const std::string& have, const std::string& want, bool refuse) {
    if (have == want) return;
    (refuse ? differences : notes).push_back(what + " is " + (have.empty() ? "unset" : have) + ", filesearch wants " + want);
  };
  compare("type", AsText(At(field, {"type"})), "knn_vector", true);
  compare("dimension", AsText(At(field, {"dimension"})), std::to_string(spec.dimension), true);
  compare("space_type", space, spec.space, true);
  compare("method", AsText(At(method, {"name"})), "hnsw", true);
  if (!engine.empty()) compare("engine", engine, spec.engine, true);
  const std::string m = AsText(At(params, {"m"})), ef_construction = AsText(At(params, {"ef_construction"}));
  if (!m.empty()) compare("m", m, std::to_string(spec.m), false);
  if (!ef_construction.empty()) compare("ef_construction", ef_construction, std::to_string(spec.ef_construction), false);
  if (!differences.empty()) {
    std::string list;
    for (const std::string& d : differences) list += (list.empty() ? "" : "; ") + d;
    out << kVectorField << " differs: " << list << "\n";
    return Status::FailedPrecondition("index '" + spec.index + "' has an " + kVectorField + " field that differs: " +
                                      list + redo);
  }

  // Document fields: missing ones are added (a mapping only grows); a field of another type is refused.
  json missing = json::object();
  std::vector<std::string> conflicts;
  const json fields = DocumentFields();
  for (const auto& [name, wanted] : fields.items()) {
    const json have = At(properties, {name});
    // A field without "type" is an object field.
    const std::string have_type = have.is_null() ? "" : have.contains("type") ? AsText(have["type"]) : "object";
    if (have.is_null()) {
      missing[name] = wanted;
    } else if (have_type != AsText(wanted["type"])) {
      conflicts.push_back(name + " is " + have_type + ", filesearch wants " + AsText(wanted["type"]));
    }
  }
  if (!conflicts.empty()) {
    std::string list;
    for (const std::string& c : conflicts) list += (list.empty() ? "" : "; ") + c;
    out << "document fields differ: " << list << "\n";
    return Status::FailedPrecondition("index '" + spec.index + "' has document fields of other types: " + list +
                                      ". Run setup with another --opensearch-index and reindex into it");
  }
  if (!missing.empty()) {
    FS_RETURN_IF_ERROR(Call(client, "add document fields to " + spec.index,
                            Req("PUT", "/" + spec.index + "/_mapping", {}, json{{"properties", missing}}.dump()))
                           .status());
    std::string names;
    for (const auto& [name, unused] : missing.items()) names += (names.empty() ? "" : ", ") + name;
    changes->push_back("added fields " + names);
  }
  out << kVectorField << " knn_vector " << spec.dimension << " (hnsw, " << space << ", "
      << (engine.empty() ? "engine unset" : engine) << ")";
  for (const std::string& note : notes) out << "; note: " << note;
  out << (missing.empty() ? "" : "; added the missing document fields") << "\n";
  return Status::Ok();
}

}  // namespace

Status ValidateIndexSpec(const OpenSearchIndexSpec& spec) {
  if (spec.index.empty() || spec.index.find_first_of("/\\*?\"<>| ,#:") != std::string::npos ||
      spec.index.front() == '_' || spec.index.front() == '-') {
    return Status::InvalidArgument("'" + spec.index + "' is not a valid OpenSearch index name");
  }
  if (spec.dimension < 1 || spec.dimension > 16000) {
    return Status::InvalidArgument("dimension must be 1..16000, not " + std::to_string(spec.dimension));
  }
  if (spec.engine != "faiss" && spec.engine != "lucene") {
    return Status::InvalidArgument("engine must be faiss or lucene, not '" + spec.engine + "'");
  }
  if (spec.space != "innerproduct" && spec.space != "cosinesimil" && spec.space != "l2") {
    return Status::InvalidArgument("space must be innerproduct, cosinesimil or l2, not '" + spec.space + "'");
  }
  if (spec.m < 2 || spec.m > 512) return Status::InvalidArgument("m must be 2..512");
  if (spec.ef_construction < 2 || spec.ef_search < 1 || spec.ef_search > 10000) {
    return Status::InvalidArgument("ef_construction must be at least 2 and ef_search 1..10000");
  }
  return Status::Ok();
}

std::string IndexCreateBody(const OpenSearchIndexSpec& spec) {
  json properties = DocumentFields();
  properties[kVectorField] = VectorField(spec);
  const json body = {
      {"settings",
       {{"index", {{"knn", true}, {"knn.algo_param.ef_search", spec.ef_search}}}, {"analysis", AnalysisSettings()}}},
      {"mappings", {{"properties", properties}}},
  };
  return body.dump(2);
}

Status SetupOpenSearchIndex(const OpenSearchClient& client, const OpenSearchIndexSpec& spec, std::ostream& out) {
  FS_RETURN_IF_ERROR(ValidateIndexSpec(spec));
  FS_RETURN_IF_ERROR(CheckPlugin(client, out));

  Step(client, out, "[2/5] index " + spec.index);
  FS_ASSIGN_OR_RETURN(OpenSearchReply head, Call(client, "look up index " + spec.index, Req("HEAD", "/" + spec.index), {404}));
  const bool exists = head.status == 200;
  if (!client.dry_run()) out << (exists ? "exists" : "absent") << "\n";

  std::vector<std::string> changes;
  Step(client, out, "[3/5] create");
  if (exists) {
    out << "skipped, the index exists\n";
  } else {
    FS_ASSIGN_OR_RETURN(OpenSearchReply created, Call(client, "create index " + spec.index,
                                                      Req("PUT", "/" + spec.index, {}, IndexCreateBody(spec)), {400}));
    if (created.status == 400) {
      // Someone else created it since step 2: check what they made like any existing index.
      if (AsText(At(ParseBody(created), {"error", "type"})) != "resource_already_exists_exception") {
        return Status::FailedPrecondition(client.DescribeError("create index " + spec.index, created));
      }
      out << "created meanwhile by someone else; checking it\n";
    } else {
      out << (client.dry_run() ? "  would create " : "created ") << spec.index << " (knn_vector "
          << spec.dimension << ", hnsw, " << spec.space << ", " << spec.engine << ", m " << spec.m
          << ", ef_construction " << spec.ef_construction << ")\n";
      changes.push_back("created index " + spec.index);
    }
  }
  FS_RETURN_IF_ERROR(CheckSettings(client, spec, out, &changes));
  FS_RETURN_IF_ERROR(CheckMapping(client, spec, out, &changes));
  if (client.dry_run()) {
    out << "dry run: nothing was sent (steps 4 and 5 would check what step 3 creates)\n";
  } else if (changes.empty()) {
    out << "setup complete: index " << spec.index << " is ready; nothing changed\n";
  } else {
    std::string list;
    for (const std::string& c : changes) list += (list.empty() ? "" : "; ") + c;
    out << "setup complete: index " << spec.index << " is ready; " << list << "\n";
  }
  return Status::Ok();
}

Status PrintOpenSearchStatus(const OpenSearchClient& client, const std::string& index, std::ostream& out) {
  FS_ASSIGN_OR_RETURN(OpenSearchReply cluster, Call(client, "read cluster health", Req("GET", "/_cluster/health")));
  FS_ASSIGN_OR_RETURN(OpenSearchReply health, Call(client, "read the health of " + index,
                                                   Req("GET", "/_cluster/health/" + index, {{"timeout", "1s"}}), {404, 408}));
  FS_ASSIGN_OR_RETURN(OpenSearchReply docs, Call(client, "count documents in " + index, Req("GET", "/" + index + "/_count"), {404}));
  if (!client.dry_run() && docs.status == 404) return Status::NotFound(NotFoundAdvice(client, index));
  OpenSearchRequest vectors =
      Req("POST", "/" + index + "/_count", {}, json{{"query", {{"exists", {{"field", kVectorField}}}}}}.dump());
  vectors.read_only_post = true;
  FS_ASSIGN_OR_RETURN(OpenSearchReply with_vectors, Call(client, "count documents with vectors in " + index, vectors));
  FS_ASSIGN_OR_RETURN(OpenSearchReply settings, Call(client, "read the settings of " + index,
                                                     Req("GET", "/" + index + "/_settings", {{"flat_settings", "true"}})));
  // Serverless has no _cat/plugins; elsewhere it says whether the node can fuse hybrid searches.
  const bool serverless = ClassifyOpenSearchEndpoint(client.url()).serverless;
  OpenSearchReply plugins;
  if (!serverless) {
    FS_ASSIGN_OR_RETURN(plugins, Call(client, "list plugins", Req("GET", "/_cat/plugins", {{"format", "json"}})));
  }
  if (client.dry_run()) {
    out << "dry run: nothing was sent\n";
    return Status::Ok();
  }
  std::string neural;
  if (!serverless) {
    for (const json& plugin : ParseBody(plugins)) {
      // "opensearch-neural-search" when installed as a plugin; its class when on the class path.
      const std::string component = AsText(At(plugin, {"component"}));
      if (component == "opensearch-neural-search" || component.find(".neuralsearch.") != std::string::npos) {
        neural = component + " " + AsText(At(plugin, {"version"}));
        break;
      }
    }
  }
  const json cluster_body = ParseBody(cluster);
  const std::string ef = EfSearchOf(settings);
  const std::string index_health = AsText(At(ParseBody(health), {"status"}));
  out << "cluster:   " << AsText(At(cluster_body, {"cluster_name"})) << " at " << client.url() << ", health "
      << AsText(At(cluster_body, {"status"})) << "\n"
      << "index:     " << index << ", health " << (index_health.empty() ? "unknown" : index_health) << "\n"
      << "documents: " << AsText(At(ParseBody(docs), {"count"})) << "\n"
      << "vectors:   " << AsText(At(ParseBody(with_vectors), {"count"})) << " documents with an "
      << kVectorField << "\n"
      << "ef_search: " << (ef.empty() ? "100 (the default)" : ef) << "\n"
      << "hybrid:    "
      << (serverless ? "not checked (Serverless)"
          : neural.empty() ? "fused by filesearch only (no neural-search plugin for --opensearch-fusion opensearch)"
                           : "the node can fuse too (" + neural + "; --opensearch-fusion opensearch)")
      << "\n";
  return Status::Ok();
}

Status SetOpenSearchEfSearch(const OpenSearchClient& client, const std::string& index, int ef_search,
                             std::ostream& out) {
  if (ef_search < 1 || ef_search > 10000) {
    return Status::InvalidArgument("ef_search must be 1..10000, not " + std::to_string(ef_search));
  }
  FS_ASSIGN_OR_RETURN(OpenSearchReply reply,
                      Call(client, "set ef_search on " + index,
                           Req("PUT", "/" + index + "/_settings", {},
                            json{{"index", {{"knn.algo_param.ef_search", ef_search}}}}.dump()),
                           {404}));
  if (!client.dry_run() && reply.status == 404) return Status::NotFound(NotFoundAdvice(client, index));
  if (client.dry_run()) {
    out << "dry run: nothing was sent\n";
    return Status::Ok();
  }
  FS_ASSIGN_OR_RETURN(OpenSearchReply check, Call(client, "read the settings of " + index,
                                                  Req("GET", "/" + index + "/_settings", {{"flat_settings", "true"}})));
  const std::string now = EfSearchOf(check);
  if (now != std::to_string(ef_search)) {
    return Status::Internal("index '" + index + "' reports ef_search " + now + " after setting " +
                            std::to_string(ef_search));
  }
  out << "index " << index << ": ef_search is now " << now << "\n";
  return Status::Ok();
}

}  // namespace fs
