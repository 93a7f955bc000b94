#include "model/clip/xlmr_tokenizer.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/base64.h"
#include "core/env.h"
#include "core/utf8.h"
#include "model/clip/tokenizer.h"
#include "model/clip/unicode.h"

namespace fs::clip {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxFileBytes = 64ull << 20;
constexpr size_t kMaxTextBytes = 256u << 20;  // as the CLIP tokenizer: positions fit in int32_t
// Hugging Face's Unigram scores an unknown character K_UNK_PENALTY below the lowest piece.
constexpr double kUnkPenalty = 10.0;
// Hugging Face's Precompiled normaliser looks a whole grapheme cluster up only below this many
// bytes; longer clusters go character by character.
constexpr size_t kGraphemeLookupBytes = 6;

// ---------------------------------------------------------------------------------------------
// The Precompiled normaliser: sentencepiece's precompiled_charsmap, a little-endian uint32 trie
// size in bytes, a darts-clone double-array trie of that many bytes (uint32 units) over UTF-8
// keys, then a pool of NUL-terminated replacement strings that the trie's values point into.
class Charsmap {
 public:
  static Result<Charsmap> Parse(const std::string& source, std::string_view blob) {
    if (blob.size() < 4)
      return Status::Corruption("'" + source + "': precompiled_charsmap is shorter than 4 bytes");
    uint32_t trie_bytes = 0;
    for (int i = 3; i >= 0; --i)
      trie_bytes = (trie_bytes << 8) | static_cast<unsigned char>(blob[static_cast<size_t>(i)]);
    if (trie_bytes % 4 != 0 || trie_bytes == 0 || trie_bytes > blob.size() - 4) {
      return Status::Corruption("'" + source + "': precompiled_charsmap's trie size " +
                                std::to_string(trie_bytes) + " does not fit its " +
                                std::to_string(blob.size()) + " bytes");
    }
    Charsmap map;
    map.units_.resize(trie_bytes / 4);
    for (size_t i = 0; i < map.units_.size(); ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(blob.data()) + 4 + i * 4;
      map.units_[i] = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    }
    map.pool_.assign(blob.substr(4 + trie_bytes));
    if (!IsValidUtf8(map.pool_)) {
      return Status::Corruption("'" + source + "': precompiled_charsmap's replacement strings are not UTF-8");
    }
    return map;
  }

  // The replacement of the shortest key that is a prefix of `key` (what Hugging Face's
  // Precompiled::transform returns), or false when no key is. A NUL byte ends the search.
  bool Transform(std::string_view key, std::string_view* replacement) const {
    size_t node = Offset(units_[0]);
    for (char ch : key) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == 0) return false;
      node ^= c;
      if (node >= units_.size()) return false;
      const uint32_t unit = units_[node];
      if (Label(unit) != c) return false;
      node ^= Offset(unit);
      if (node >= units_.size()) return false;
      if (HasLeaf(unit)) {
        const size_t start = units_[node] & 0x7FFFFFFFu;
        if (start > pool_.size()) return false;
        const size_t end = pool_.find('\0', start);
        *replacement = std::string_view(pool_).substr(start, end == std::string::npos ? end : end - start);
        return true;
      }
    }
    return false;
  }

 private:
  static bool HasLeaf(uint32_t unit) { return ((unit >> 8) & 1) != 0; }
  static uint32_t Label(uint32_t unit) { return unit & ((1u << 31) | 0xFFu); }
  static size_t Offset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }

  std::vector<uint32_t> units_;
  std::string pool_;
};

// ---------------------------------------------------------------------------------------------
// The Unigram pieces as a byte trie: children of a node are contiguous and sorted by label; the
// root's are also indexed by byte. Built once from the sorted pieces.
class PieceTrie {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  void Build(const std::vector<std::string_view>& pieces) {
    // Sorted by bytes, equal pieces by id so that the last one wins below (Hugging Face's token
    // map). The first 8 bytes, big-endian, decide most comparisons without touching the strings.
    std::vector<std::pair<uint64_t, uint32_t>> keys(pieces.size());
    for (uint32_t i = 0; i < keys.size(); ++i) {
      uint64_t prefix = 0;
      for (size_t k = 0; k < 8; ++k) {
        prefix = (prefix << 8) | (k < pieces[i].size() ? static_cast<unsigned char>(pieces[i][k]) : 0u);
      }
      keys[i] = {prefix, i};
    }
    std::sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      const int c = pieces[a.second].compare(pieces[b.second]);
      return c != 0 ? c < 0 : a.second < b.second;
    });
    std::vector<uint32_t> order(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) order[i] = keys[i].second;
    nodes_.clear();
    labels_.clear();
    children_.clear();
    nodes_.push_back(Node{});
    struct Range {
      uint32_t node, lo, hi, depth;
    };
    std::vector<Range> stack{{0, 0, static_cast<uint32_t>(order.size()), 0}};
    while (!stack.empty()) {
      const Range r = stack.back();
      stack.pop_back();
      uint32_t lo = r.lo;
      while (lo < r.hi && pieces[order[lo]].size() == r.depth) {
        nodes_[r.node].value = static_cast<int32_t>(order[lo]);
        ++lo;
      }
      if (lo == r.hi) continue;
      nodes_[r.node].first_child = static_cast<uint32_t>(labels_.size());
      uint32_t count = 0;
      for (uint32_t i = lo; i < r.hi;) {
        const auto label = static_cast<unsigned char>(pieces[order[i]][r.depth]);
        uint32_t j = i + 1;
        while (j < r.hi && static_cast<unsigned char>(pieces[order[j]][r.depth]) == label) ++j;
        const auto child = static_cast<uint32_t>(nodes_.size());
        nodes_.push_back(Node{});
        labels_.push_back(label);
        children_.push_back(child);
        stack.push_back({child, i, j, r.depth + 1});
        ++count;
        i = j;
      }
      nodes_[r.node].child_count = count;
    }
    root_.fill(kNone);
    const Node& root = nodes_[0];
    for (uint32_t k = 0; k < root.child_count; ++k)
      root_[labels_[root.first_child + k]] = children_[root.first_child + k];
  }

  uint32_t Child(uint32_t node, unsigned char label) const {
    if (node == 0) return root_[label];
    const Node& n = nodes_[node];
    const unsigned char* begin = labels_.data() + n.first_child;
    const unsigned char* end = begin + n.child_count;
    const unsigned char* it = std::lower_bound(begin, end, label);
    return it != end && *it == label ? children_[n.first_child + static_cast<uint32_t>(it - begin)] : kNone;
  }
  int32_t Value(uint32_t node) const { return nodes_[node].value; }

 private:
  struct Node {
    uint32_t first_child = 0;
    uint32_t child_count = 0;
    int32_t value = -1;  // piece id ending here
  };
  std::vector<Node> nodes_;
  std::vector<unsigned char> labels_;
  std::vector<uint32_t> children_;
  std::array<uint32_t, 256> root_{};
};

// A tokenizer.json as read: the JSON tree without model.vocab, and, when model.vocab is a list of
// [piece, score] pairs (Unigram), those pairs in flat arrays. Building a JSON value per piece and
// score costs more than all the rest of loading: the 250,000 pairs go straight into `pool`.
struct ParsedFile {
  Json root;
  bool has_pair_vocab = false;
  std::string pool;            // the pieces, back to back
  std::vector<uint32_t> ends;  // end of piece i in `pool`
  std::vector<double> scores;
  std::string vocab_error;  // set when model.vocab held something other than pairs
};

// SAX handler: forwards every event to nlohmann's DOM builder except those of model.vocab when it
// is a list, which it collects into a ParsedFile.
class VocabSplittingSax {
 public:
  explicit VocabSplittingSax(ParsedFile* out) : out_(out), dom_(out->root, /*allow_exceptions=*/false) {}

  bool null() { return Capturing() ? Bad("null") : Flush() && dom_.null(); }
  bool boolean(bool v) { return Capturing() ? Bad("a boolean") : Flush() && dom_.boolean(v); }
  bool number_integer(int64_t v) {
    return Capturing() ? Score(static_cast<double>(v)) : Flush() && dom_.number_integer(v);
  }
  bool number_unsigned(uint64_t v) {
    return Capturing() ? Score(static_cast<double>(v)) : Flush() && dom_.number_unsigned(v);
  }
  bool number_float(double v, const std::string& raw) {
    return Capturing() ? Score(v) : Flush() && dom_.number_float(v, raw);
  }
  bool string(std::string& v) {
    if (!Capturing()) return Flush() && dom_.string(v);
    if (capture_depth_ != 2 || field_ != 0) return Bad("a misplaced string");
    out_->pool += v;
    out_->ends.push_back(static_cast<uint32_t>(out_->pool.size()));
    field_ = 1;
    return true;
  }
  bool binary(Json::binary_t& v) { return Capturing() ? Bad("binary") : Flush() && dom_.binary(v); }
  bool start_object(std::size_t n) {
    if (Capturing()) return Bad("an object");
    path_.push_back(pending_key_);
    return Flush() && dom_.start_object(n);
  }
  bool key(std::string& k) {
    if (Capturing()) return Bad("a key");
    pending_key_ = k;
    // Hold back model.vocab's key until its value shows whether it is a list.
    if (path_.size() == 2 && path_[1] == "model" && k == "vocab") {
      vocab_key_pending_ = true;
      return true;
    }
    return dom_.key(k);
  }
  bool end_object() {
    if (Capturing()) return Bad("an object");
    path_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (vocab_key_pending_) {  // model.vocab is a list: capture it
      vocab_key_pending_ = false;
      out_->has_pair_vocab = true;
      capture_depth_ = 1;
      return true;
    }
    if (Capturing()) {
      if (capture_depth_ != 1) return Bad("a nested list");
      capture_depth_ = 2;
      field_ = 0;
      return true;
    }
    path_.push_back(pending_key_);
    return dom_.start_array(n);
  }
  bool end_array() {
    if (Capturing()) {
      if (capture_depth_ == 2 && field_ != 2) return Bad("an entry that is not [piece, score]");
      --capture_depth_;
      return true;
    }
    path_.pop_back();
    return dom_.end_array();
  }
  template <class Exception>
  bool parse_error(std::size_t pos, const std::string& token, const Exception& e) {
    return dom_.parse_error(pos, token, e);
  }

 private:
  bool Capturing() const { return capture_depth_ > 0; }
  // A held-back "vocab" key whose value is not a list goes to the DOM after all.
  bool Flush() {
    if (!vocab_key_pending_) return true;
    vocab_key_pending_ = false;
    std::string k = "vocab";
    return dom_.key(k);
  }
  bool Score(double v) {
    if (capture_depth_ != 2 || field_ != 1) return Bad("a misplaced number");
    out_->scores.push_back(v);
    field_ = 2;
    return true;
  }
  bool Bad(const char* what) {
    out_->vocab_error = std::string("model.vocab[") + std::to_string(out_->scores.size()) + "] holds " +
                        what + " (expected [piece, score] pairs)";
    return false;
  }

  ParsedFile* out_;
  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  std::vector<std::string> path_{};  // keys of the open objects and lists, root first ("" for root)
  std::string pending_key_;
  bool vocab_key_pending_ = false;
  int capture_depth_ = 0;  // 1: inside model.vocab, 2: inside one of its pairs
  int field_ = 0;          // fields of the current pair seen
};

struct AddedToken {
  std::u32string content;
  int32_t id = 0;
  bool lstrip = false;
  bool rstrip = false;
};

// One step of the pre-tokenizer sequence.
struct PreTokenizerStep {
  enum class Kind { kWhitespaceSplit, kMetaspace } kind = Kind::kWhitespaceSplit;
  char32_t replacement = U'\u2581';
  bool prepend = true;  // prepend_scheme "always" (add_prefix_space true); false: "never"
  bool split = true;
};

Status Unsupported(const std::string& source, const std::string& what) {
  return Status::Unsupported("'" + source + "': " + what + " is not supported by the XLM-R tokenizer");
}

// The member `key` of `object`, or a null value when there is none. By reference: the vocabulary
// is 250,000 entries and must not be copied.
const Json& Member(const Json& object, const char* key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::u32string Decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) out.push_back(NextCodePoint(s, &pos));  // invalid byte -> U+FFFD
  return out;
}

void AppendUtf8Range(std::u32string_view text, std::string* out) {
  for (char32_t cp : text) AppendUtf8(cp, out);
}

}  // namespace

struct XlmrTokenizer::Impl {
  std::string source;
  // Model.
  PieceTrie trie;
  std::vector<double> scores;
  int32_t unk_id = 0;
  double unk_score = 0;
  // Added tokens (matched in the raw text), normaliser, pre-tokenizer, template.
  std::vector<AddedToken> added;
  bool has_charsmap = false;
  Charsmap charsmap;
  std::array<std::string, 128> ascii_map;  // the charsmap's result for each ASCII character
  std::vector<PreTokenizerStep> pre_tokenizer;
  std::vector<int32_t> prefix_ids, suffix_ids;  // the single-text template around the text's ids
  int32_t start_id = 0, end_id = 2, pad_id = -1;

  Status ParseModel(const Json& model, const ParsedFile& file);
  Status ParseAddedTokens(const Json& root);
  Status ParseNormalizer(const Json& normalizer);
  Status ParsePreTokenizer(const Json& pre);
  Status ParseTemplate(const Json& post);

  bool chunkable = false;  // see EncodeSection

  void Normalize(std::u32string_view text, size_t* pos, size_t stop_after, std::string* out) const;
  void PreTokenize(const std::string& normalized, std::vector<std::string>* words) const;
  void Viterbi(std::string_view word, std::vector<int32_t>* ids) const;
  void EncodeSection(std::u32string_view section, size_t limit, std::vector<int32_t>* ids) const;
};

Status XlmrTokenizer::Impl::ParseModel(const Json& model, const ParsedFile& file) {
  if (model.value("type", std::string()) != "Unigram") {
    return Status::Unsupported("'" + source + "' is not a Unigram tokenizer");
  }
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() &&
      model["byte_fallback"].get<bool>()) {
    return Unsupported(source, "model.byte_fallback true");
  }
  if (!file.has_pair_vocab || file.scores.empty()) {
    return Status::Corruption("'" + source + "' has no model.vocab list");
  }
  std::vector<std::string_view> pieces;
  pieces.reserve(file.ends.size());
  uint32_t begin = 0;
  for (size_t i = 0; i < file.ends.size(); ++i) {
    if (file.ends[i] == begin)
      return Status::Corruption("'" + source + "': model.vocab[" + std::to_string(i) + "] is empty");
    pieces.emplace_back(file.pool.data() + begin, file.ends[i] - begin);
    begin = file.ends[i];
  }
  scores = file.scores;
  const double min_score = *std::min_element(scores.begin(), scores.end());
  const Json& unk = Member(model, "unk_id");
  if (!unk.is_number_integer() || unk.get<int64_t>() < 0 ||
      unk.get<int64_t>() >= static_cast<int64_t>(pieces.size())) {
    return Status::Corruption("'" + source + "': model.unk_id is missing or not an id of its vocabulary");
  }
  unk_id = unk.get<int32_t>();
  unk_score = min_score - kUnkPenalty;
  trie.Build(pieces);  // the views point into `file`, alive until Build returns
  return Status::Ok();
}

Status XlmrTokenizer::Impl::ParseAddedTokens(const Json& root) {
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return Status::Ok();
  if (!root["added_tokens"].is_array())
    return Status::Corruption("'" + source + "': added_tokens is not a list");
  for (const Json& token : root["added_tokens"]) {
    if (!token.is_object() || !token.contains("content") || !token["content"].is_string() ||
        !token.contains("id") || !token["id"].is_number_integer()) {
      return Status::Corruption("'" + source + "' has an added token without content or id");
    }
    AddedToken added_token;
    const std::string content = token["content"].get<std::string>();
    added_token.content = Decode(content);
    added_token.id = token["id"].get<int32_t>();
    if (added_token.id < 0 || static_cast<size_t>(added_token.id) >= scores.size()) {
      return Status::Corruption("'" + source + "': added token '" + content +
                                "' has an id outside the vocabulary");
    }
    added_token.lstrip = token.value("lstrip", false);
    added_token.rstrip = token.value("rstrip", false);
    if (content.empty()) return Status::Corruption("'" + source + "' has an empty added token");
    if (token.value("single_word", false))
      return Unsupported(source, "added token '" + content + "' with single_word");
    if (token.value("normalized", false))
      return Unsupported(source, "added token '" + content + "' with normalized");
    if (content == "<s>") start_id = added_token.id;
    if (content == "</s>") end_id = added_token.id;
    if (content == "<pad>") pad_id = added_token.id;
    added.push_back(std::move(added_token));
  }
  return Status::Ok();
}

Status XlmrTokenizer::Impl::ParseNormalizer(const Json& normalizer) {
  if (normalizer.is_null()) return Status::Ok();
  const std::string type = normalizer.is_object() ? normalizer.value("type", std::string()) : std::string();
  if (type == "Sequence" && normalizer.contains("normalizers") && normalizer["normalizers"].is_array()) {
    const Json& list = normalizer["normalizers"];
    if (list.empty()) return Status::Ok();
    if (list.size() == 1) return ParseNormalizer(list[0]);
    return Unsupported(source, "a normalizer Sequence of more than one step");
  }
  if (type != "Precompiled") return Unsupported(source, "normalizer type '" + type + "'");
  const Json& blob = Member(normalizer, "precompiled_charsmap");
  if (!blob.is_string())
    return Status::Corruption("'" + source + "': the Precompiled normalizer has no charsmap");
  Result<std::string> bytes = Base64Decode(blob.get_ref<const std::string&>());
  if (!bytes.ok()) return bytes.status().WithContext("'" + source + "': precompiled_charsmap");
  FS_ASSIGN_OR_RETURN(charsmap, Charsmap::Parse(source, *bytes));
  has_charsmap = true;
  for (char32_t c = 0; c < 128; ++c) {
    std::string_view replacement;
    const char key = static_cast<char>(c);
    ascii_map[c] = charsmap.Transform(std::string_view(&key, 1), &replacement) ? std::string(replacement)
                                                                               : std::string(1, key);
  }
  return Status::Ok();
}

Status XlmrTokenizer::Impl::ParsePreTokenizer(const Json& pre) {
  if (pre.is_null()) return Status::Ok();
  const std::string type = pre.is_object() ? pre.value("type", std::string()) : std::string();
  if (type == "Sequence") {
    if (!pre.contains("pretokenizers") || !pre["pretokenizers"].is_array()) {
      return Status::Corruption("'" + source + "': pre_tokenizer Sequence without pretokenizers");
    }
    for (const Json& step : pre["pretokenizers"]) FS_RETURN_IF_ERROR(ParsePreTokenizer(step));
    return Status::Ok();
  }
  PreTokenizerStep step;
  if (type == "WhitespaceSplit") {
    step.kind = PreTokenizerStep::Kind::kWhitespaceSplit;
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::kMetaspace;
    const std::u32string replacement = Decode(pre.value("replacement", std::string("\u2581")));
    if (replacement.size() != 1)
      return Status::Corruption("'" + source + "': Metaspace replacement is not one character");
    step.replacement = replacement[0];
    // As Hugging Face reads it: add_prefix_space false means "never", otherwise prepend_scheme
    // (default "always"); split defaults to true.
    const std::string scheme = pre.value("prepend_scheme", std::string("always"));
    if (pre.contains("add_prefix_space") && pre["add_prefix_space"].is_boolean() &&
        !pre["add_prefix_space"].get<bool>()) {
      step.prepend = false;
    } else if (scheme == "always" || scheme == "never") {
      step.prepend = scheme == "always";
    } else {
      return Unsupported(source, "Metaspace prepend_scheme '" + scheme + "'");
    }
    step.split = pre.value("split", true);
  } else {
    return Unsupported(source, "pre_tokenizer type '" + type + "'");
  }
  pre_tokenizer.push_back(step);
  return Status::Ok();
}

Status XlmrTokenizer::Impl::ParseTemplate(const Json& post) {
  if (post.is_null()) return Status::Ok();
  const std::string type = post.is_object() ? post.value("type", std::string()) : std::string();
  if (type != "TemplateProcessing") return Unsupported(source, "post_processor type '" + type + "'");
  const Json& single = Member(post, "single");
  const Json& specials = Member(post, "special_tokens");
  if (!single.is_array() || !specials.is_object()) {
    return Status::Corruption("'" + source +
                              "': TemplateProcessing without a single template or special_tokens");
  }
  bool seen_sequence = false;
  for (const Json& item : single) {
    if (item.is_object() && item.contains("Sequence")) {
      if (seen_sequence || item["Sequence"].value("id", std::string()) != "A") {
        return Unsupported(source, "a single-text template other than specials around sequence A");
      }
      seen_sequence = true;
      continue;
    }
    if (!item.is_object() || !item.contains("SpecialToken") || !item["SpecialToken"].contains("id")) {
      return Status::Corruption("'" + source + "': a template item is neither SpecialToken nor Sequence");
    }
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
      return Status::Corruption("'" + source + "': template special token '" + name + "' has no ids");
    }
    for (const Json& id : specials[name]["ids"]) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() >= static_cast<int64_t>(scores.size())) {
        return Status::Corruption("'" + source + "': template special token '" + name +
                                  "' has an invalid id");
      }
      (seen_sequence ? suffix_ids : prefix_ids).push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence)
    return Status::Corruption("'" + source + "': the single-text template has no sequence A");
  return Status::Ok();
}

// Hugging Face's Precompiled::normalize_string: per extended grapheme cluster, the whole cluster
// is looked up when it is shorter than 6 bytes, and replaced by the replacement of the shortest
// matching prefix (so "ﬁ" + U+0301 becomes "fi": the quirk is sentencepiece's, kept on purpose);
// otherwise, and when nothing matched, each character is looked up on its own.
// Normalises text[*pos..] onto *out and advances *pos. With `stop_after` > 0 it stops early, at
// the first lone space cluster once *out holds `stop_after` bytes (a cut that changes no word when
// `chunkable`, see EncodeSection).
void XlmrTokenizer::Impl::Normalize(std::u32string_view text, size_t* pos, size_t stop_after,
                                    std::string* out) const {
  std::string cluster;
  std::string_view replacement;
  while (*pos < text.size()) {
    const size_t start = *pos;
    const size_t end = unicode::GraphemeClusterEnd(text, start);
    *pos = end;
    if (end == start + 1 && text[start] < 0x80) {
      if (has_charsmap) {
        *out += ascii_map[text[start]];
      } else {
        out->push_back(static_cast<char>(text[start]));
      }
      if (text[start] == ' ' && stop_after > 0 && out->size() >= stop_after) return;
      continue;
    }
    cluster.clear();
    AppendUtf8Range(text.substr(start, end - start), &cluster);
    if (!has_charsmap) {
      *out += cluster;
      continue;
    }
    if (cluster.size() < kGraphemeLookupBytes && charsmap.Transform(cluster, &replacement)) {
      out->append(replacement);
      continue;
    }
    for (size_t at = start; at < end; ++at) {
      cluster.clear();
      AppendUtf8(text[at], &cluster);
      if (charsmap.Transform(cluster, &replacement)) {
        out->append(replacement);
      } else {
        *out += cluster;
      }
    }
  }
}

// The pre-tokenizer steps in order over the normalised text: WhitespaceSplit cuts at White_Space
// characters and drops them; Metaspace turns ' ' into "▁", prefixes "▁" to a word that does not
// start with one, and (split) cuts before every "▁".
void XlmrTokenizer::Impl::PreTokenize(const std::string& normalized, std::vector<std::string>* words) const {
  words->clear();
  words->push_back(normalized);
  std::vector<std::string> next;
  std::string replacement_utf8;
  for (const PreTokenizerStep& step : pre_tokenizer) {
    next.clear();
    if (step.kind == PreTokenizerStep::Kind::kWhitespaceSplit) {
      for (const std::string& word : *words) {
        std::string current;
        size_t pos = 0;
        while (pos < word.size()) {
          const size_t start = pos;
          const char32_t cp = NextCodePoint(word, &pos);
          if (unicode::IsWhiteSpace(cp)) {
            if (!current.empty()) next.push_back(std::move(current));
            current.clear();
          } else {
            current.append(word, start, pos - start);
          }
        }
        if (!current.empty()) next.push_back(std::move(current));
      }
    } else {
      replacement_utf8.clear();
      AppendUtf8(step.replacement, &replacement_utf8);
      for (const std::string& word : *words) {
        if (word.empty()) continue;
        std::string replaced;
        replaced.reserve(word.size() + replacement_utf8.size());
        for (char c : word) {
          if (c == ' ') {
            replaced += replacement_utf8;
          } else {
            replaced.push_back(c);
          }
        }
        if (step.prepend && replaced.compare(0, replacement_utf8.size(), replacement_utf8) != 0) {
          replaced.insert(0, replacement_utf8);
        }
        if (!step.split) {
          next.push_back(std::move(replaced));
          continue;
        }
        // Split before each replacement character (Hugging Face's MergedWithNext).
        size_t begin = 0;
        size_t at = replaced.find(replacement_utf8, 1);
        while (at != std::string::npos) {
          next.push_back(replaced.substr(begin, at - begin));
          begin = at;
          at = replaced.find(replacement_utf8, at + replacement_utf8.size());
        }
        next.push_back(replaced.substr(begin));
      }
    }
    words->swap(next);
  }
}

// Hugging Face's Unigram::encode_optimized: the best-scoring segmentation of `word` into pieces,
// found left to right over byte positions; a character that starts no one-character piece is
// <unk> at unk_score, and consecutive <unk> characters become one <unk>. Among equal scores the
// first candidate found (the earliest start) wins.
void XlmrTokenizer::Impl::Viterbi(std::string_view word, std::vector<int32_t>* ids) const {
  const size_t n = word.size();
  if (n == 0) return;
  struct Best {
    double score = 0;
    int32_t start = -1;  // -1: no path ends here yet
    int32_t id = -1;
  };
  // Per-thread scratch: no allocation per word once it has grown.
  thread_local std::vector<Best> best;
  best.assign(n + 1, Best{});
  best.front() = Best{0, 0, -1};
  size_t pos = 0;
  while (pos < n) {
    const double base = best[pos].score;
    size_t char_end = pos;
    NextCodePoint(word, &char_end);
    const size_t char_len = char_end - pos;
    bool has_single = false;
    uint32_t node = 0;
    for (size_t k = pos; k < n; ++k) {
      node = trie.Child(node, static_cast<unsigned char>(word[k]));
      if (node == PieceTrie::kNone) break;
      const int32_t id = trie.Value(node);
      if (id < 0) continue;
      const size_t end = k + 1;
      const double score = base + scores[static_cast<size_t>(id)];
      Best& target = best[end];
      if (target.start < 0 || score > target.score) target = {score, static_cast<int32_t>(pos), id};
      if (end - pos == char_len) has_single = true;
    }
    if (!has_single) {
      Best& target = best[char_end];
      const double score = base + unk_score;
      if (target.start < 0 || score > target.score) target = {score, static_cast<int32_t>(pos), unk_id};
    }
    pos = char_end;
  }
  const size_t first = ids->size();
  bool last_unk = false;
  for (size_t end = n; end > 0;) {
    const Best& b = best[end];
    if (b.id == unk_id) {
      if (!last_unk) ids->push_back(unk_id);
      last_unk = true;
    } else {
      ids->push_back(b.id);
      last_unk = false;
    }
    end = static_cast<size_t>(b.start);
  }
  std::reverse(ids->begin() + static_cast<ptrdiff_t>(first), ids->end());
}

// Normalise, pre-tokenize and segment one stretch of text between added tokens, stopping once ids
// holds `limit` ids. When the pre-tokenizer starts with WhitespaceSplit and the normaliser keeps
// ' ' a space (`chunkable`), a lone space cluster ends every word, so the stretch is taken in
// chunks cut there: a long text costs what its first `limit` ids need, not its whole length.
void XlmrTokenizer::Impl::EncodeSection(std::u32string_view section, size_t limit,
                                        std::vector<int32_t>* ids) const {
  constexpr size_t kChunkBytes = 4096;
  std::string normalized;
  std::vector<std::string> words;
  size_t pos = 0;
  while (pos < section.size() && ids->size() < limit) {
    normalized.clear();
    Normalize(section, &pos, chunkable && limit != SIZE_MAX ? kChunkBytes : 0, &normalized);
    if (normalized.empty()) continue;  // Hugging Face drops empty splits before pre-tokenizing
    PreTokenize(normalized, &words);
    for (const std::string& word : words) {
      if (ids->size() >= limit) return;
      Viterbi(word, ids);
    }
  }
}

XlmrTokenizer::XlmrTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
XlmrTokenizer::~XlmrTokenizer() = default;

size_t XlmrTokenizer::vocab_size() const {
  return impl_->scores.size();
}
int32_t XlmrTokenizer::start_id() const {
  return impl_->start_id;
}
int32_t XlmrTokenizer::end_id() const {
  return impl_->end_id;
}
int32_t XlmrTokenizer::pad_id() const {
  return impl_->pad_id;
}
int32_t XlmrTokenizer::unk_id() const {
  return impl_->unk_id;
}

Result<std::vector<int32_t>> XlmrTokenizer::Encode(std::string_view text, size_t max_len) const {
  const size_t specials = impl_->prefix_ids.size() + impl_->suffix_ids.size();
  if (max_len > 0 && max_len <= specials) {
    return Status::InvalidArgument(
        "max_len " + std::to_string(max_len) + " leaves no room beside the " + std::to_string(specials) +
        " special tokens: use 0 (no truncation) or at least " + std::to_string(specials + 1));
  }
  if (text.size() > kMaxTextBytes) {
    return Status::ResourceExhausted("text of " + std::to_string(text.size()) +
                                     " bytes is over the tokenizer's limit of 256 MiB");
  }
  const size_t limit = max_len > 0 ? max_len - specials : SIZE_MAX;
  const std::u32string raw = Decode(text);
  std::vector<int32_t> ids(impl_->prefix_ids);
  const size_t base = ids.size();
  const size_t end_limit = limit == SIZE_MAX ? SIZE_MAX : base + limit;
  // Added tokens, leftmost-longest in the raw text; lstrip/rstrip take the White_Space beside them.
  size_t section_start = 0;
  size_t pos = 0;
  while (pos < raw.size() && ids.size() < end_limit) {
    const AddedToken* match = nullptr;
    for (const AddedToken& token : impl_->added) {
      if (raw.compare(pos, token.content.size(), token.content) == 0 &&
          (match == nullptr || token.content.size() > match->content.size())) {
        match = &token;
      }
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    if (match->lstrip) {
      while (start > section_start && unicode::IsWhiteSpace(raw[start - 1])) --start;
    }
    impl_->EncodeSection(std::u32string_view(raw).substr(section_start, start - section_start), end_limit,
                         &ids);
    if (ids.size() < end_limit) ids.push_back(match->id);
    pos += match->content.size();
    if (match->rstrip) {
      while (pos < raw.size() && unicode::IsWhiteSpace(raw[pos])) ++pos;
    }
    section_start = pos;
  }
  if (section_start < raw.size()) {
    impl_->EncodeSection(std::u32string_view(raw).substr(section_start), end_limit, &ids);
  }
  if (ids.size() > end_limit) ids.resize(end_limit);
  ids.insert(ids.end(), impl_->suffix_ids.begin(), impl_->suffix_ids.end());
  return ids;
}

namespace {

Result<std::unique_ptr<XlmrTokenizer::Impl>> BuildImpl(const std::string& path, const ParsedFile& file) {
  auto impl = std::make_unique<XlmrTokenizer::Impl>();
  impl->source = path;
  const Json& root = file.root;
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    return Status::Corruption("'" + path + "' has no \"model\" object");
  }
  FS_RETURN_IF_ERROR(impl->ParseModel(root["model"], file));
  FS_RETURN_IF_ERROR(impl->ParseAddedTokens(root));
  FS_RETURN_IF_ERROR(impl->ParseNormalizer(Member(root, "normalizer")));
  FS_RETURN_IF_ERROR(impl->ParsePreTokenizer(Member(root, "pre_tokenizer")));
  FS_RETURN_IF_ERROR(impl->ParseTemplate(Member(root, "post_processor")));
  impl->chunkable = !impl->pre_tokenizer.empty() &&
                    impl->pre_tokenizer.front().kind == PreTokenizerStep::Kind::kWhitespaceSplit &&
                    (!impl->has_charsmap || impl->ascii_map[' '] == " ");
  return impl;
}

// Parses JSON text (a tokenizer.json) with model.vocab split off when it is a list.
Status ParseTokenizerJson(const std::string& path, const std::string& data, ParsedFile* out) {
  VocabSplittingSax sax(out);
  if (!Json::sax_parse(data, &sax, nlohmann::detail::input_format_t::json, /*strict=*/true,
                       /*ignore_comments=*/false)) {
    if (!out->vocab_error.empty()) return Status::Corruption("'" + path + "': " + out->vocab_error);
    return Status::Corruption("'" + path + "' is not valid JSON");
  }
  return Status::Ok();
}

Result<std::string> ReadTokenizerFile(const std::string& path) {
  Result<std::string> data = Env::Default()->ReadFile(path, kMaxFileBytes);
  if (!data.ok()) return data.status().WithContext("reading tokenizer file '" + path + "'");
  return data;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsUnigramJson(const Json& root) {
  return root.is_object() && Member(root, "model").is_object() &&
         Member(root, "model").value("type", std::string()) == "Unigram";
}

}  // namespace

Result<std::unique_ptr<XlmrTokenizer>> XlmrTokenizer::Load(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("no tokenizer file given");
  try {
    FS_ASSIGN_OR_RETURN(std::string data, ReadTokenizerFile(path));
    ParsedFile file;
    FS_RETURN_IF_ERROR(ParseTokenizerJson(path, data, &file));
    FS_ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, BuildImpl(path, file));
    return std::unique_ptr<XlmrTokenizer>(new XlmrTokenizer(std::move(impl)));
  } catch (const std::exception& e) {  // nlohmann type errors on odd but valid JSON
    return Status::Corruption("'" + path + "' could not be read as a tokenizer: " + e.what());
  }
}

// Defined here, beside the JSON parsing, so that a Unigram tokenizer.json is parsed once.
Result<std::unique_ptr<TextTokenizer>> LoadTextTokenizer(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("no tokenizer file given");
  std::string file = path;
  if (IsDirectory(path)) {
    file = path + "/tokenizer.json";
    if (!Env::Default()->FileExists(file)) {
      FS_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> clip, Tokenizer::LoadDir(path));
      return std::unique_ptr<TextTokenizer>(std::move(clip));
    }
  }
  FS_ASSIGN_OR_RETURN(std::string data, ReadTokenizerFile(file));
  const size_t first = data.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && data[first] == '{') {
    try {
      ParsedFile parsed;
      // Not valid JSON, or no Unigram: Tokenizer::Load below says what is wrong with it.
      if (ParseTokenizerJson(file, data, &parsed).ok() && IsUnigramJson(parsed.root)) {
        data = std::string();  // free the text before building
        FS_ASSIGN_OR_RETURN(std::unique_ptr<XlmrTokenizer::Impl> impl, BuildImpl(file, parsed));
        return std::unique_ptr<TextTokenizer>(new XlmrTokenizer(std::move(impl)));
      }
    } catch (const std::exception& e) {
      return Status::Corruption("'" + file + "' could not be read as a tokenizer: " + e.what());
    }
  }
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> clip, Tokenizer::Load(file));
  return std::unique_ptr<TextTokenizer>(std::move(clip));
}

}  // namespace fs::clip
