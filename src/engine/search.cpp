#include "engine/search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/json_dump.h"

namespace fs {
namespace {

// Cursor: base64url(JSON). Fields: m mode, g store generation, o offset (vector/hybrid), s/i last
// score and id (text keyset). Opaque to clients; validated on the way back in.
// No page starts deeper than this (RunSearch refuses offset + size beyond its limits anyway); a
// larger offset in a cursor was not written by us.
constexpr uint64_t kMaxCursorOffset = uint64_t{1} << 40;

struct Cursor {
  SearchMode mode = SearchMode::kText;
  uint64_t generation = 0;
  size_t offset = 0;
  double score = 0;
  int64_t id = 0;
  std::string pit;  // the point in time a back end's keyword pages read (opensearch); "" = none
};

// An OpenSearch point in time's id is a few hundred characters; anything longer was not its.
constexpr size_t kMaxPitChars = 1024;

std::string EncodeCursor(const Cursor& c) {
  nlohmann::json j = {{"m", static_cast<int>(c.mode)}, {"g", c.generation}, {"o", c.offset},
                      {"s", c.score}, {"i", c.id}};
  if (!c.pit.empty()) j["p"] = c.pit;
  return Base64UrlEncode(DumpJson(j));
}

Result<Cursor> DecodeCursor(std::string_view s) {
  auto bad = Status::InvalidArgument("invalid searchAfter cursor: pass back the nextCursor of a previous reply unchanged");
  if (s.size() > 512 + kMaxPitChars * 4 / 3 + 16) return bad;
  auto raw = Base64UrlDecode(s);
  if (!raw.ok()) return bad;
  auto j = nlohmann::json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad;
  // Every field must have the type EncodeCursor wrote: get<size_t>() would wrap a tampered
  // negative offset, and a number too large for 64 bits parses as a double.
  auto field = [&j](const char* key) -> const nlohmann::json* {
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  };
  const nlohmann::json* mode_field = field("m");
  const nlohmann::json* generation_field = field("g");
  const nlohmann::json* offset_field = field("o");
  const nlohmann::json* score_field = field("s");
  const nlohmann::json* id_field = field("i");
  if (!mode_field || !generation_field || !offset_field || !score_field || !id_field) return bad;
  if (!mode_field->is_number_unsigned() || !generation_field->is_number_unsigned() ||
      !offset_field->is_number_unsigned() || !score_field->is_number() || !id_field->is_number_integer()) {
    return bad;
  }
  const uint64_t mode = mode_field->get<uint64_t>();
  const uint64_t offset = offset_field->get<uint64_t>();
  if (mode > 2 || offset > kMaxCursorOffset) return bad;
  Cursor c;
  c.mode = static_cast<SearchMode>(mode);
  c.generation = generation_field->get<uint64_t>();
  c.offset = static_cast<size_t>(offset);
  c.score = score_field->get<double>();
  c.id = id_field->get<int64_t>();
  if (!std::isfinite(c.score)) return bad;
  if (const nlohmann::json* pit = field("p")) {
    if (!pit->is_string() || pit->get_ref<const std::string&>().empty() ||
        pit->get_ref<const std::string&>().size() > kMaxPitChars) {
      return bad;
    }
    c.pit = pit->get<std::string>();
  }
  return c;
}

struct Candidate {
  int64_t id;
  LegScore text;
  LegScore vector;
  double score = 0;
};

void SortCandidates(std::vector<Candidate>* c) {
  std::sort(c->begin(), c->end(), [](const Candidate& a, const Candidate& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  });
}

void Fuse(std::vector<Candidate>* cands, const SearchRequest& r) {
  if (r.fusion == FusionMethod::kRrf) {
    for (auto& c : *cands) {
      c.score = 0;
      if (c.text.present) c.score += r.text_weight / (r.rrf_k + static_cast<double>(c.text.rank));
      if (c.vector.present) c.score += r.vector_weight / (r.rrf_k + static_cast<double>(c.vector.rank));
    }
    return;
  }
  // Min-max over the candidate window of each leg; a leg that did not return the doc adds 0.
  double tmin = INFINITY, tmax = -INFINITY, vmin = INFINITY, vmax = -INFINITY;
  for (auto& c : *cands) {
    if (c.text.present) { tmin = std::min(tmin, c.text.score); tmax = std::max(tmax, c.text.score); }
    if (c.vector.present) { vmin = std::min(vmin, c.vector.score); vmax = std::max(vmax, c.vector.score); }
  }
  // As OpenSearch's min_max normalisation does (so both fusion sites agree): a leg's lowest hit
  // keeps 0.001, so being found at all counts more than not being found; one score maps to 1.
  auto norm = [](double v, double lo, double hi) { return hi > lo ? std::max((v - lo) / (hi - lo), 0.001) : 1.0; };
  for (auto& c : *cands) {
    c.score = 0;
    if (c.text.present) c.score += r.text_weight * norm(c.text.score, tmin, tmax);
    if (c.vector.present) c.score += r.vector_weight * norm(c.vector.score, vmin, vmax);
  }
}

// The page's hits with their documents: those a leg sent along, then one lookup for the rest.
Result<SearchResult> AssemblePage(const SearchBackend& backend, std::chrono::steady_clock::time_point start,
                                  std::vector<Candidate> page, std::vector<Document> docs, SearchResult result) {
  std::vector<int64_t> ids;
  ids.reserve(page.size());
  for (auto& c : page) ids.push_back(c.id);
  // Documents the leg sent along, then one lookup for the rest.
  
  std::unordered_set<int64_t> sent;
  for (const auto& d : docs) sent.insert(d.id);
  std::vector<int64_t> missing;
  for (int64_t id : ids) {
    if (!sent.count(id)) missing.push_back(id);
  }
  if (!missing.empty()) {
    FS_ASSIGN_OR_RETURN(std::vector<Document> more, backend.GetMany(missing));
    docs.insert(docs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  std::unordered_map<int64_t, Document*> by_id;
  for (auto& d : docs) by_id[d.id] = &d;
  for (auto& c : page) {
    auto it = by_id.find(c.id);
    if (it == by_id.end()) continue;  // deleted between the legs and now
    SearchHit hit;
    hit.doc = std::move(*it->second);
    hit.score = c.score;
    hit.text = c.text;
    hit.vector = c.vector;
    result.hits.push_back(std::move(hit));
  }
  result.took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return result;
}

// Vectors sampled from the collection to judge what stands out for a query (the picture floor).
constexpr size_t kFloorSample = 1000;

// The picture floor of a text query's vector leg: from the back end's `sample` of the collection,
// else (a back end that cannot sample) from the leg's own hits, `population` of them found.
double FloorOf(VectorSample sample, std::span<const VectorHit> leg, uint64_t population, const SearchRequest& r) {
  if (sample.scores.empty()) {
    for (const auto& h : leg) sample.scores.push_back(h.score);
    sample.population = population;
  }
  return PictureFloor(std::move(sample.scores), r.floor_sd, r.floor_min_score, sample.population);
}

// OpenSearch's pagination_depth (each leg's hits in a hybrid query) goes up to 10,000.
constexpr size_t kMaxServerFusionDepth = 10000;

// Whether a hybrid search with both legs is fused by the back end: it must fuse (opensearch with
// server-side fusion), and the search must be one it fuses as filesearch would. RRF on OpenSearch
// 2.19 takes no weights; find-similar's excluded document and windows deeper than its limit stay
// with the planner.
bool ServerFusionApplies(const SearchBackend& backend, const SearchRequest& r, size_t window) {
  if (!backend.fuses_hybrid() || r.exclude_id || window > kMaxServerFusionDepth) return false;
  return r.fusion == FusionMethod::kLinear || (r.text_weight == 1.0 && r.vector_weight == 1.0);
}

// Runs the hybrid search on the back end's own fusion. A text query's picture floor is computed
// from the vector leg's hits first (one more round trip; OpenSearch cannot sample its vectors) and
// sent as the k-NN's min_score. False (and nothing done) when the floor cannot be judged: the
// planner then fuses, as it does for every back end.
Result<bool> RunServerFusion(const SearchBackend& backend, const SearchRequest& r, size_t offset, size_t window,
                             uint64_t generation, SearchResult* result, std::vector<Candidate>* page,
                             std::vector<Document>* docs) {
  FusedRequest fr;
  fr.text = r.query;
  fr.vector = r.vector;
  fr.ef = r.ef;
  fr.filters = r.filters;
  fr.rrf = r.fusion == FusionMethod::kRrf;
  fr.rrf_k = r.rrf_k;
  fr.text_weight = r.text_weight;
  fr.vector_weight = r.vector_weight;
  fr.from = offset;
  fr.size = r.size + 1;
  fr.depth = window;
  if (r.vector_from_text) {
    FS_ASSIGN_OR_RETURN(VectorSample sample, backend.SampleVectorScores(r.vector, kFloorSample));
    std::vector<VectorHit> vh;
    if (sample.scores.empty()) {
      FS_ASSIGN_OR_RETURN(vh, backend.VectorSearch(r.vector, window, r.filters, r.ef));
    }
    const double floor = FloorOf(std::move(sample), vh, vh.size(), r);
    if (!std::isfinite(floor)) return false;
    fr.min_cosine = floor;
  }
  FS_ASSIGN_OR_RETURN(FusedReply reply, backend.SearchFused(fr));
  // OpenSearch's arithmetic mean divides by the sum of the weights; filesearch's linear score is
  // the weighted sum: scaled back, both fusion sites report the same scores.
  const double scale = fr.rrf ? 1.0 : r.text_weight + r.vector_weight;
  for (size_t i = 0; i < reply.hits.size() && i < r.size; ++i) {
    page->push_back(Candidate{reply.hits[i].id, {}, {}, reply.hits[i].score * scale});
  }
  result->total = std::max<uint64_t>(reply.total, offset + page->size());
  result->total_exact = false;
  result->fused_by = "opensearch";
  if (reply.hits.size() > r.size && !page->empty()) {
    Cursor next{SearchMode::kHybrid, generation, offset + r.size, page->back().score, page->back().id, ""};
    result->next_cursor = EncodeCursor(next);
  }
  *docs = std::move(reply.docs);
  return true;
}

}  // namespace

std::string_view SearchModeName(SearchMode m) {
  switch (m) {
    case SearchMode::kText: return "text";
    case SearchMode::kVector: return "vector";
    case SearchMode::kHybrid: return "hybrid";
  }
  return "text";
}

Result<SearchMode> ParseSearchMode(std::string_view s) {
  if (s == "text" || s == "keyword") return SearchMode::kText;
  if (s == "vector") return SearchMode::kVector;
  if (s == "hybrid") return SearchMode::kHybrid;
  return Status::InvalidArgument("unknown mode '" + std::string(s) + "': use text, vector or hybrid");
}

Result<FusionMethod> ParseFusionMethod(std::string_view s) {
  if (s == "rrf") return FusionMethod::kRrf;
  if (s == "linear" || s == "minmax") return FusionMethod::kLinear;
  return Status::InvalidArgument("unknown fusion '" + std::string(s) + "': use rrf or linear");
}

Status SearchTuning::Validate() const {
  auto bad = [](const std::string& what) { return Status::InvalidArgument(what); };
  if (!(rrf_k > 0 && rrf_k <= 1e6)) return bad("rrf k must be greater than 0 and at most 1000000 (default 60)");
  if (!(text_weight >= 0 && text_weight <= 1e6)) return bad("the text weight must be between 0 and 1000000 (default 1)");
  if (!(vector_weight >= 0 && vector_weight <= 1e6)) return bad("the vector weight must be between 0 and 1000000 (default 1)");
  if (!(floor_sd >= 0 && floor_sd <= 100)) return bad("the floor's SDs must be between 0 and 100 (default 5)");
  if (!(floor_min_score >= -1 && floor_min_score <= 1)) {
    return bad("the floor's minimum score is a cosine: between -1 and 1 (default 0, none)");
  }
  return Status::Ok();
}

void SearchTuning::ApplyTo(SearchRequest* r) const {
  r->fusion = fusion;
  r->rrf_k = rrf_k;
  r->text_weight = text_weight;
  r->vector_weight = vector_weight;
  r->floor_sd = floor_sd;
  r->floor_min_score = floor_min_score;
}

double ChanceMaximumSd(uint64_t population) {
  if (population < 2) return 0;
  // z with population * P(Z > z) = 1/2, P(Z > z) = erfc(z / sqrt 2) / 2: bisection (monotone).
  const double tail = 0.5 / static_cast<double>(population);
  double lo = 0, hi = 40;
  for (int i = 0; i < 60; ++i) {
    const double mid = (lo + hi) / 2;
    (0.5 * std::erfc(mid / std::sqrt(2.0)) > tail ? lo : hi) = mid;
  }
  return lo;
}

double PictureFloor(std::vector<float> scores, double sd, double min_score, uint64_t population) {
  constexpr size_t kMinSample = 8;
  if (scores.size() < kMinSample) return INFINITY;
  sd = std::max(sd, ChanceMaximumSd(population));
  auto median = [](std::vector<float>& v) {
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    double m = v[mid];
    if (v.size() % 2 == 0) m = (m + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid))) / 2;
    return m;
  };
  const double med = median(scores);
  for (float& s : scores) s = static_cast<float>(std::fabs(s - med));
  // MAD scaled to a normal's SD; a floor of 1e-6 when more than half the scores are equal.
  const double robust_sd = std::max(1.4826 * median(scores), 1e-6);
  return std::max(med + sd * robust_sd, min_score);
}

Result<SearchResult> RunSearch(const Store& store, const VectorIndex* vectors, const SearchRequest& r,
                               const SearchLimits& limits) {
  return RunSearch(*NewEmbeddedBackend(&store, vectors), r, limits);
}

Result<SearchResult> RunSearch(const SearchBackend& backend, const SearchRequest& r, const SearchLimits& limits) {
  auto start = std::chrono::steady_clock::now();
  const bool has_text = !BuildFtsQuery(r.query).empty();
  const bool has_vector = !r.vector.empty();
  SearchMode mode;
  if (r.mode) {
    mode = *r.mode;
  } else if (has_text && has_vector) {
    mode = SearchMode::kHybrid;
  } else {
    mode = has_vector ? SearchMode::kVector : SearchMode::kText;
  }
  if (r.size == 0 || r.size > limits.max_size) {
    return Status::InvalidArgument("size must be between 1 and " + std::to_string(limits.max_size));
  }
  if (mode == SearchMode::kText && !has_text) {
    return Status::InvalidArgument("text search needs keywords: give q");
  }
  if (mode == SearchMode::kHybrid && !has_text && !has_vector) {
    return Status::InvalidArgument("hybrid search needs keywords (q) and/or a query vector");
  }
  if ((mode == SearchMode::kVector || mode == SearchMode::kHybrid) && has_vector) {
    if (!backend.has_vectors()) {
      return Status::FailedPrecondition("vector search is unavailable: no vector index is loaded (index images with a CLIP model first)");
    }
    const std::string model = backend.vector_model();
    if (r.vector_model != model) {
      return Status::InvalidArgument("query vector is from model '" + r.vector_model + "' but the index holds model '" +
                                     model + "': embed the query with the same model");
    }
    const size_t dim = backend.vector_dim();
    if (dim != 0 && r.vector.size() != dim) {
      return Status::InvalidArgument("query vector has dimension " + std::to_string(r.vector.size()) +
                                     "; model '" + model + "' has dimension " + std::to_string(dim));
    }
    for (float v : r.vector) {
      if (!std::isfinite(v)) return Status::InvalidArgument("query vector contains NaN or infinity");
    }
  }
  if (mode == SearchMode::kVector && !has_vector) {
    return Status::InvalidArgument("vector search needs a query vector (imageEmbedding, an image, similarTo, or q with a CLIP model)");
  }

  FS_ASSIGN_OR_RETURN(uint64_t generation, backend.Generation());
  std::optional<Cursor> cursor;
  size_t offset = r.from;
  if (!r.search_after.empty()) {
    FS_ASSIGN_OR_RETURN(Cursor c, DecodeCursor(r.search_after));
    if (c.mode != mode) return Status::InvalidArgument("searchAfter cursor belongs to a " + std::string(SearchModeName(c.mode)) + " search");
    cursor = c;
    offset = c.offset;
  } else if (r.from + r.size > limits.max_depth) {
    return Status::InvalidArgument("from + size may not exceed " + std::to_string(limits.max_depth) +
                                   ": page deeper with searchAfter (the nextCursor of the previous page)");
  }
  if (offset + r.size > limits.max_cursor_depth + limits.max_depth) {
    return Status::InvalidArgument("results this deep are not served: narrow the query or add filters");
  }

  SearchResult result;
  result.mode = mode;
  std::vector<Candidate> page;
  LegsReply legs;

  if (mode == SearchMode::kText) {
    std::optional<KeywordAfter> after;
    if (cursor) after = KeywordAfter{cursor->score, cursor->id};
    LegsRequest lr;
    lr.text = r.query;
    lr.text_offset = offset;
    lr.text_limit = r.size + 1;
    lr.text_after = after;
    if (cursor) lr.pit = cursor->pit;
    lr.filters = r.filters;
    lr.page_docs = r.size;
    FS_ASSIGN_OR_RETURN(legs, backend.SearchLegs(lr));
    const KeywordPage& kp = legs.text;
    result.total = kp.total;
    size_t base_rank = offset;
    for (size_t i = 0; i < kp.hits.size() && i < r.size; ++i) {
      Candidate c{kp.hits[i].id, {}, {}, kp.hits[i].score};
      c.text = {true, kp.hits[i].score, base_rank + i + 1};
      page.push_back(c);
    }
    if (kp.hits.size() > r.size) {
      Cursor next{mode, generation, offset + r.size, page.back().score, page.back().id, legs.pit};
      result.next_cursor = EncodeCursor(next);
    }
  } else {
    // Vector and hybrid: build the fused candidate list down to offset + size (+1 to know if more).
    const size_t window = std::max(limits.min_fusion_window, offset + r.size + 1);
    std::vector<Candidate> cands;
    std::unordered_map<int64_t, size_t> where;
    const bool text_leg = mode == SearchMode::kHybrid && has_text;
    const bool vector_leg = has_vector && backend.has_vectors();
    if (text_leg && vector_leg && ServerFusionApplies(backend, r, window)) {
      FS_ASSIGN_OR_RETURN(bool fused, RunServerFusion(backend, r, offset, window, generation, &result, &page, &legs.docs));
      if (fused) return AssemblePage(backend, start, std::move(page), std::move(legs.docs), std::move(result));
    }
    LegsRequest lr;
    if (text_leg) {
      lr.text = r.query;
      lr.text_limit = window;
    }
    if (vector_leg) {
      lr.vector = r.vector;
      lr.k = window + (r.exclude_id ? 1 : 0);
      lr.ef = r.ef;
    }
    lr.filters = r.filters;
    // A vector search shows the leg's own order: its first offset + size (+1 to know if more, +1
    // for the excluded document) hits are all the planner will read documents of.
    if (!text_leg) lr.page_docs = offset + r.size + 1 + (r.exclude_id ? 1 : 0);
    FS_ASSIGN_OR_RETURN(legs, backend.SearchLegs(lr));
    if (text_leg) {
      const KeywordPage& kp = legs.text;
      result.total = kp.total;
      for (size_t i = 0; i < kp.hits.size(); ++i) {
        if (r.exclude_id && kp.hits[i].id == *r.exclude_id) continue;
        where[kp.hits[i].id] = cands.size();
        Candidate c{kp.hits[i].id, {}, {}, 0};
        c.text = {true, kp.hits[i].score, i + 1};
        cands.push_back(c);
      }
    }
    if (vector_leg) {
      const std::vector<VectorHit>& vh = legs.vector;
      // The picture floor: a text query's vector leg brings only the images that stand out.
      const bool floored = mode == SearchMode::kHybrid && r.vector_from_text;
      double floor = -INFINITY;
      if (floored) {
        FS_ASSIGN_OR_RETURN(VectorSample sample, backend.SampleVectorScores(r.vector, kFloorSample));
        floor = FloorOf(std::move(sample), vh, std::max<uint64_t>(vh.size(), legs.vector_total), r);
      }
      size_t rank = 0;
      size_t vector_only = 0;
      bool excluded_seen = false;
      for (const auto& h : vh) {
        if (r.exclude_id && h.id == *r.exclude_id) {
          excluded_seen = true;
          continue;
        }
        ++rank;
        if (h.score < floor) continue;
        auto it = where.find(h.id);
        if (it == where.end()) {
          where[h.id] = cands.size();
          cands.push_back(Candidate{h.id, {}, {}, 0});
          it = where.find(h.id);
          ++vector_only;
        }
        cands[it->second].vector = {true, h.score, rank};
      }
      // The leg's own count (its hits may have come cut to the page), less the excluded document.
      const uint64_t found = std::max<uint64_t>(vh.size(), legs.vector_total) - (excluded_seen ? 1 : 0);
      if (mode == SearchMode::kVector) {
        // All vectors passing the filters fit in the window: the count is exact.
        result.total = found;
        result.total_exact = legs.vector_total < lr.k;
      } else if (floored) {
        // Only the images that stood out count: a nonsense word finds nothing.
        result.total += vector_only;
        result.total_exact = vector_only == 0;
      } else if (!text_leg) {
        result.total = found;
        result.total_exact = false;
      } else {
        result.total += vector_only;
        result.total_exact = false;
      }
    }
    Fuse(&cands, r);
    if (mode == SearchMode::kVector) {
      for (auto& c : cands) c.score = c.vector.score;  // the fused score of one leg is its raw score
    }
    SortCandidates(&cands);
    for (size_t i = offset; i < cands.size() && i < offset + r.size; ++i) page.push_back(cands[i]);
    if (cands.size() > offset + r.size) {
      Cursor next{mode, generation, offset + r.size, page.empty() ? 0 : page.back().score,
                  page.empty() ? 0 : page.back().id, ""};
      result.next_cursor = EncodeCursor(next);
    }
  }

  return AssemblePage(backend, start, std::move(page), std::move(legs.docs), std::move(result));
}

}  // namespace fs
