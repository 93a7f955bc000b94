#include "model/clip/tokenizer.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <queue>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

#include "core/check.h"
#include "core/env.h"
#include "core/utf8.h"
#include "model/clip/unicode.h"

namespace fs::clip {
namespace {

constexpr uint64_t kMaxFileBytes = 64ull << 20;
constexpr std::string_view kStartText = "<|startoftext|>";
constexpr std::string_view kEndText = "<|endoftext|>";
constexpr std::string_view kEndOfWord = "</w>";
// OpenAI's clip.tokenize reads merges[1 : 49152 - 256 - 2 + 1] of bpe_simple_vocab_16e6.txt.
constexpr size_t kOpenAiMerges = 49152 - 256 - 2;
// Words longer than this are encoded every time rather than cached (they are rare and unbounded).
constexpr size_t kMaxCachedWordBytes = 128;
constexpr size_t kMaxCacheEntries = 1 << 16;
// Bounds one text so that symbol positions fit in int32_t with room to spare.
constexpr size_t kMaxTextBytes = 256u << 20;

// GPT-2's byte -> printable character table (bytes_to_unicode): printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100.. in increasing order. Index = byte.
std::array<char32_t, 256> ByteToUnicode() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (size_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

// OpenAI's vocabulary order for the first 256 ids: printable bytes first, then the others.
std::array<uint8_t, 256> OpenAiByteOrder() {
  std::array<uint8_t, 256> order{};
  size_t n = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      if (printable == (pass == 0)) order[n++] = static_cast<uint8_t>(b);
    }
  }
  return order;
}

std::string Utf8Of(char32_t cp) {
  std::string s;
  AppendUtf8(cp, &s);
  return s;
}

std::u32string DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) out.push_back(NextCodePoint(s, &pos));  // invalid byte -> U+FFFD
  return out;
}

using Vocab = std::unordered_map<std::string, int32_t>;
using MergeList = std::vector<std::pair<std::string, std::string>>;

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<std::string> ReadWhole(const std::string& path) {
  Result<std::string> data = Env::Default()->ReadFile(path, kMaxFileBytes);
  if (!data.ok()) return data.status().WithContext("reading tokenizer file '" + path + "'");
  return data;
}

Result<std::string> Gunzip(const std::string& path, std::string_view data) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    return Status::Internal("zlib could not start inflating '" + path + "'");
  }
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::array<char, 1 << 16> chunk{};
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
    zs.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string why = zs.msg != nullptr ? zs.msg : "truncated or damaged data";
      inflateEnd(&zs);
      return Status::Corruption("'" + path + "' is not a valid gzip file (" + why + ")");
    }
    out.append(chunk.data(), chunk.size() - zs.avail_out);
    if (out.size() > kMaxFileBytes) {
      inflateEnd(&zs);
      return Status::ResourceExhausted("'" + path + "' inflates to more than 64 MiB");
    }
  }
  inflateEnd(&zs);
  return out;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

// "a b" -> (a, b). Tokens never contain a space (byte-level encoding maps it to U+0120).
bool ParseMergeLine(std::string_view line, std::pair<std::string, std::string>* merge) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || space == 0 || space + 1 >= line.size() ||
      line.find(' ', space + 1) != std::string_view::npos) {
    return false;
  }
  merge->first = std::string(line.substr(0, space));
  merge->second = std::string(line.substr(space + 1));
  return true;
}

// merges.txt (Hugging Face): an optional "#version" header, then one "a b" merge per line.
Status ParseMergesTxt(const std::string& path, std::string_view text, MergeList* merges) {
  const std::vector<std::string_view> lines = SplitLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty() || (i == 0 && lines[i].rfind("#version", 0) == 0)) continue;
    std::pair<std::string, std::string> merge;
    if (!ParseMergeLine(lines[i], &merge)) {
      return Status::Corruption("'" + path + "' line " + std::to_string(i + 1) +
                                " is not a merge of two tokens ('a b')");
    }
    merges->push_back(std::move(merge));
  }
  if (merges->empty()) return Status::Corruption("'" + path + "' holds no merges");
  return Status::Ok();
}

Status ParseVocabJson(const std::string& path, const nlohmann::json& object, Vocab* vocab) {
  if (!object.is_object() || object.empty()) {
    return Status::Corruption("'" + path + "' has no vocabulary (expected an object token -> id)");
  }
  for (const auto& [token, id] : object.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return Status::Corruption("'" + path + "': vocabulary entry '" + token +
                                "' has no valid id (expected a non-negative integer)");
    }
    (*vocab)[token] = static_cast<int32_t>(id.get<int64_t>());
  }
  return Status::Ok();
}

}  // namespace

struct Tokenizer::Impl {
  struct Merge {
    int32_t rank;
    int32_t id;  // id of the merged token
  };

  std::string source;                          // the file it was loaded from, for messages
  std::array<int32_t, 256> byte_ids{};         // byte -> id of its byte-level character
  std::array<int32_t, 256> byte_eow_ids{};     // byte -> id of that character + "</w>"
  std::unordered_map<uint64_t, Merge> merges;  // (left id << 32 | right id) -> merge
  int32_t start_id = kStartOfTextId;
  int32_t end_id = kEndOfTextId;
  size_t vocab_size = 0;

  mutable std::shared_mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache FS_GUARDED_BY(cache_mu);

  static Result<std::unique_ptr<Impl>> Build(const std::string& source, const Vocab& vocab,
                                             const MergeList& merge_list);
  // Both stop adding once ids holds `limit` ids (what truncation keeps is known by then).
  void EncodeSection(std::string_view raw, size_t limit, std::vector<int32_t>* ids) const;
  void EncodeNormalized(std::u32string_view text, size_t limit, std::vector<int32_t>* ids) const;
  void EncodeWord(const std::string& word, std::vector<int32_t>* ids) const;
  void Bpe(std::string_view word, std::vector<int32_t>* ids) const;
};

Result<std::unique_ptr<Tokenizer::Impl>> Tokenizer::Impl::Build(const std::string& source, const Vocab& vocab,
                                                                const MergeList& merge_list) {
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) max_id = std::max(max_id, id);
  impl->vocab_size = static_cast<size_t>(max_id) + 1;
  const std::array<char32_t, 256> byte_chars = ByteToUnicode();
  for (size_t b = 0; b < 256; ++b) {
    const std::string ch = Utf8Of(byte_chars[b]);
    auto plain = vocab.find(ch);
    auto eow = vocab.find(ch + std::string(kEndOfWord));
    if (plain == vocab.end() || eow == vocab.end()) {
      return Status::Corruption("'" + source +
                                "' is not a CLIP byte-level vocabulary: it lacks the token for byte " +
                                std::to_string(b) + " ('" + ch + "' or '" + ch + "</w>')");
    }
    impl->byte_ids[b] = plain->second;
    impl->byte_eow_ids[b] = eow->second;
  }
  for (std::string_view special : {kStartText, kEndText}) {
    auto it = vocab.find(std::string(special));
    if (it == vocab.end()) {
      return Status::Corruption("'" + source + "' has no " + std::string(special) + " token");
    }
    (special == kStartText ? impl->start_id : impl->end_id) = it->second;
  }
  impl->merges.reserve(merge_list.size() * 2);
  for (size_t rank = 0; rank < merge_list.size(); ++rank) {
    const auto& [left, right] = merge_list[rank];
    auto l = vocab.find(left);
    auto r = vocab.find(right);
    auto m = vocab.find(left + right);
    if (l == vocab.end() || r == vocab.end() || m == vocab.end()) {
      return Status::Corruption("'" + source + "': merge " + std::to_string(rank + 1) + " ('" + left + " " +
                                right + "') uses a token that is not in the vocabulary");
    }
    const uint64_t key =
        (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) | static_cast<uint32_t>(r->second);
    // A repeated pair keeps its last rank, as Hugging Face's map does.
    impl->merges[key] = Merge{static_cast<int32_t>(rank), m->second};
  }
  return impl;
}

// BPE over one pre-tokenized word: its bytes become byte-level symbols (the last one carries
// "</w>"), then the adjacent pair with the lowest merge rank is merged, leftmost first, until no
// pair has a merge. A heap of candidate pairs with lazy deletion keeps this O(n log n) for long
// words (a CJK sentence is one "word" of hundreds of bytes).
void Tokenizer::Impl::Bpe(std::string_view word, std::vector<int32_t>* ids) const {
  const auto n = static_cast<uint32_t>(word.size());  // Encode bounds texts to 256 MiB
  if (n == 0) return;
  constexpr uint32_t kNone = UINT32_MAX;
  std::vector<int32_t> sym(n);  // token id of the symbol starting at each byte
  std::vector<uint32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (uint32_t i = 0; i < n; ++i) {
    const auto byte = static_cast<unsigned char>(word[i]);
    sym[i] = i + 1 == n ? byte_eow_ids[byte] : byte_ids[byte];
    prev[i] = i == 0 ? kNone : i - 1;
    next[i] = i + 1 == n ? kNone : i + 1;
  }
  struct Candidate {
    int32_t rank;
    uint32_t pos;  // the left symbol (index of its first byte)
    int32_t left_id, right_id, merged_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](uint32_t pos) {
    if (pos == kNone || next[pos] == kNone) return;
    const int32_t left = sym[pos], right = sym[next[pos]];
    const uint64_t key =
        (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    auto it = merges.find(key);
    if (it != merges.end()) heap.push({it->second.rank, pos, left, right, it->second.id});
  };
  for (uint32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const uint32_t right = next[c.pos];
    // Stale: either side merged since (a merge always yields a longer, so different, token).
    if (!alive[c.pos] || right == kNone || sym[c.pos] != c.left_id || sym[right] != c.right_id) {
      continue;
    }
    sym[c.pos] = c.merged_id;
    alive[right] = false;
    next[c.pos] = next[right];
    if (next[right] != kNone) prev[next[right]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (uint32_t i = 0; i != kNone; i = next[i]) ids->push_back(sym[i]);
}

void Tokenizer::Impl::EncodeWord(const std::string& word, std::vector<int32_t>* ids) const {
  if (word.size() > kMaxCachedWordBytes) {
    Bpe(word, ids);
    return;
  }
  {
    std::shared_lock lock(cache_mu);
    auto it = cache.find(word);
    if (it != cache.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> word_ids;
  Bpe(word, &word_ids);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  std::unique_lock lock(cache_mu);
  if (cache.size() >= kMaxCacheEntries) cache.clear();  // bounded memory; refills with what is used
  cache.emplace(word, std::move(word_ids));
}

// CLIP's pre-tokenizer, written out by hand:
//   's|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// applied as a leftmost-first regex would, keeping the matches and dropping what lies between
// (whitespace, after normalisation). Hugging Face then runs GPT-2's ByteLevel split over each piece,
// which leaves every such piece whole (docs/tokenizer.md: the one JS-only exception, U+FEFF).
void Tokenizer::Impl::EncodeNormalized(std::u32string_view text, size_t limit,
                                       std::vector<int32_t>* ids) const {
  std::string word;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n && ids->size() < limit) {
    const char32_t cp = text[i];
    size_t end = i + 1;
    if (cp == '\'' && i + 1 < n) {
      const char32_t a = text[i + 1];
      const char32_t b = i + 2 < n ? text[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        end = i + 2;
      } else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        end = i + 3;
      }
    }
    if (end == i + 1) {
      if (unicode::IsLetter(cp)) {
        while (end < n && unicode::IsLetter(text[end])) ++end;
      } else if (unicode::IsNumber(cp)) {
        // a single digit
      } else if (unicode::IsWhiteSpace(cp)) {
        i = end;  // not part of any match: removed
        continue;
      } else {
        while (end < n && !unicode::IsWhiteSpace(text[end]) && !unicode::IsLetter(text[end]) &&
               !unicode::IsNumber(text[end])) {
          ++end;
        }
      }
    }
    word.clear();
    for (size_t k = i; k < end; ++k) AppendUtf8(text[k], &word);
    EncodeWord(word, ids);
    i = end;
  }
}

// One stretch of input between raw "<|endoftext|>" markers: normalise (NFC, White_Space runs ->
// " ", lower-case), split on "<|startoftext|>" in the normalised text, pre-tokenize and BPE.
void Tokenizer::Impl::EncodeSection(std::string_view raw, size_t limit, std::vector<int32_t>* ids) const {
  if (raw.empty() || ids->size() >= limit) return;
  std::u32string text = DecodeUtf8(raw);
  const bool ascii = std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
  if (!ascii) text = unicode::Nfc(text);
  std::u32string normalized;
  normalized.reserve(text.size());
  bool in_space = false;
  for (char32_t cp : text) {
    if (unicode::IsWhiteSpace(cp)) {
      if (!in_space) normalized.push_back(U' ');
      in_space = true;
    } else {
      normalized.push_back(cp);
      in_space = false;
    }
  }
  normalized = unicode::Lowercase(normalized);
  if (normalized.empty()) return;

  static const std::u32string kStart32 = DecodeUtf8(kStartText);
  static const std::u32string kEnd32 = DecodeUtf8(kEndText);
  std::u32string_view rest = normalized;
  while (!rest.empty() && ids->size() < limit) {
    const size_t hit = rest.find(kStart32);
    std::u32string_view sub = rest.substr(0, hit);
    // Like Hugging Face's JS tokenizer, a normalised stretch that is exactly an added token's
    // text is that token (e.g. "<|ENDOFTEXT|>" alone).
    if (sub == kEnd32) {
      ids->push_back(end_id);
    } else if (!sub.empty()) {
      EncodeNormalized(sub, limit, ids);
    }
    if (hit == std::u32string_view::npos) break;
    ids->push_back(start_id);
    rest = rest.substr(hit + kStart32.size());
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

size_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}
int32_t Tokenizer::start_id() const {
  return impl_->start_id;
}
int32_t Tokenizer::end_id() const {
  return impl_->end_id;
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, size_t max_len) const {
  if (max_len == 1) {
    return Status::InvalidArgument(
        "max_len 1 leaves no room for both <|startoftext|> and "
        "<|endoftext|>: use 0 (no truncation) or at least 2");
  }
  if (text.size() > kMaxTextBytes) {
    return Status::ResourceExhausted("text of " + std::to_string(text.size()) +
                                     " bytes is over the tokenizer's limit of 256 MiB");
  }
  const size_t limit = max_len > 0 ? max_len : SIZE_MAX;
  std::vector<int32_t> ids;
  ids.reserve(std::min<size_t>({limit, 16 + text.size() / 3, size_t{1} << 16}));
  ids.push_back(impl_->start_id);
  size_t pos = 0;
  while (ids.size() < limit) {
    const size_t hit = text.find(kEndText, pos);
    impl_->EncodeSection(text.substr(pos, hit == std::string_view::npos ? std::string_view::npos : hit - pos),
                         limit, &ids);
    if (hit == std::string_view::npos) break;
    ids.push_back(impl_->end_id);
    pos = hit + kEndText.size();
  }
  ids.push_back(impl_->end_id);
  if (max_len > 0 && ids.size() > max_len) {
    ids.resize(max_len);
    ids.back() = impl_->end_id;
  }
  return ids;
}

namespace {

// What every format parses to, before the tokenizer is built from it.
struct Parsed {
  std::string source;  // the file whose vocabulary and merges these are, for messages
  Vocab vocab;
  MergeList merges;
};

Status ParseHfTokenizerJson(const std::string& path, const nlohmann::json& root, Parsed* out) {
  const nlohmann::json& model = root["model"];
  if (!model.is_object()) return Status::Corruption("'" + path + "' has no \"model\" object");
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") {
    return Status::Unsupported("'" + path + "' is a " + type +
                               " tokenizer; only CLIP's byte-level BPE is supported");
  }
  const nlohmann::json suffix = model.value("end_of_word_suffix", nlohmann::json());
  if (!suffix.is_string() || suffix.get<std::string>() != kEndOfWord) {
    return Status::Unsupported("'" + path +
                               "' is not a CLIP BPE tokenizer (its model has no "
                               "end_of_word_suffix \"</w>\")");
  }
  if (!model.contains("vocab")) return Status::Corruption("'" + path + "' has no model.vocab");
  FS_RETURN_IF_ERROR(ParseVocabJson(path, model["vocab"], &out->vocab));
  // Added tokens may carry ids the BPE vocabulary lacks.
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const nlohmann::json& added : root["added_tokens"]) {
      if (!added.is_object() || !added.contains("content") || !added["content"].is_string() ||
          !added.contains("id") || !added["id"].is_number_integer()) {
        return Status::Corruption("'" + path + "' has an added token without content or id");
      }
      out->vocab[added["content"].get<std::string>()] = added["id"].get<int32_t>();
    }
  }
  if (!model.contains("merges") || !model["merges"].is_array() || model["merges"].empty()) {
    return Status::Corruption("'" + path + "' has no model.merges list");
  }
  const nlohmann::json& merges = model["merges"];
  out->merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const nlohmann::json& m = merges[i];
    std::pair<std::string, std::string> merge;
    bool ok = false;
    if (m.is_string()) {  // "a b" (tokenizers < 0.20)
      ok = ParseMergeLine(m.get_ref<const std::string&>(), &merge);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
      merge = {m[0].get<std::string>(), m[1].get<std::string>()};
      ok = true;
    }
    if (!ok) {
      return Status::Corruption("'" + path + "': model.merges[" + std::to_string(i) +
                                "] is not a merge of two tokens");
    }
    out->merges.push_back(std::move(merge));
  }
  return Status::Ok();
}

Status ParseVocabAndMerges(const std::string& vocab_path, const nlohmann::json& root, Parsed* out) {
  FS_RETURN_IF_ERROR(ParseVocabJson(vocab_path, root, &out->vocab));
  const std::string merges_path = DirName(vocab_path) + "/merges.txt";
  Result<std::string> text = ReadWhole(merges_path);
  if (!text.ok()) {
    return text.status().WithContext("'" + vocab_path + "' is a vocab.json and needs merges.txt beside it");
  }
  return ParseMergesTxt(merges_path, *text, &out->merges);
}

// bpe_simple_vocab_16e6.txt: a header line, then merges. OpenAI builds the vocabulary from it:
// the 256 byte characters, the same with "</w>", one token per merge, then the two specials.
Status ParseOpenAiBpe(const std::string& path, std::string_view text, Parsed* out) {
  const std::vector<std::string_view> lines = SplitLines(text);
  if (lines.size() < kOpenAiMerges + 1) {
    return Status::Corruption("'" + path + "' has " + std::to_string(lines.empty() ? 0 : lines.size() - 1) +
                              " merge lines; a CLIP BPE file has at least " + std::to_string(kOpenAiMerges));
  }
  const std::array<char32_t, 256> byte_chars = ByteToUnicode();
  const std::array<uint8_t, 256> order = OpenAiByteOrder();
  int32_t next_id = 0;
  for (uint8_t b : order) out->vocab[Utf8Of(byte_chars[b])] = next_id++;
  for (uint8_t b : order) out->vocab[Utf8Of(byte_chars[b]) + std::string(kEndOfWord)] = next_id++;
  out->merges.reserve(kOpenAiMerges);
  for (size_t i = 1; i <= kOpenAiMerges; ++i) {
    std::pair<std::string, std::string> merge;
    if (!ParseMergeLine(lines[i], &merge)) {
      return Status::Corruption("'" + path + "' line " + std::to_string(i + 1) +
                                " is not a merge of two tokens ('a b')");
    }
    out->vocab.emplace(merge.first + merge.second, next_id++);
    out->merges.push_back(std::move(merge));
  }
  out->vocab.emplace(std::string(kStartText), next_id++);
  out->vocab.emplace(std::string(kEndText), next_id++);
  return Status::Ok();
}

Status ParseFile(const std::string& path, Parsed* out) {
  out->source = path;
  FS_ASSIGN_OR_RETURN(std::string data, ReadWhole(path));
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1F &&
      static_cast<unsigned char>(data[1]) == 0x8B) {
    FS_ASSIGN_OR_RETURN(std::string text, Gunzip(path, data));
    return ParseOpenAiBpe(path, text, out);
  }
  const size_t first = data.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return Status::Corruption("'" + path + "' is empty");
  if (data[first] != '{') return ParseOpenAiBpe(path, data, out);
  const nlohmann::json root = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return Status::Corruption("'" + path + "' is not valid JSON (expected a tokenizer.json or vocab.json)");
  }
  if (!root.is_object()) return Status::Corruption("'" + path + "' is not a JSON object");
  // CLIP's vocabulary has a token "model" too: a vocab.json maps it to an integer id.
  if (root.contains("model") && !root["model"].is_number_integer()) {
    return ParseHfTokenizerJson(path, root, out);
  }
  return ParseVocabAndMerges(path, root, out);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("no tokenizer file given");
  if (IsDirectory(path)) return LoadDir(path);
  Parsed parsed;
  try {
    FS_RETURN_IF_ERROR(ParseFile(path, &parsed));
  } catch (const std::exception& e) {  // nlohmann type errors on odd but valid JSON
    return Status::Corruption("'" + path + "' could not be read as a tokenizer: " + e.what());
  }
  FS_ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, Impl::Build(parsed.source, parsed.vocab, parsed.merges));
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::LoadDir(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("no tokenizer folder given");
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  for (const char* name : {"tokenizer.json", "vocab.json", "bpe_simple_vocab_16e6.txt.gz"}) {
    const std::string path = base + "/" + name;
    if (Env::Default()->FileExists(path)) return Load(path);
  }
  return Status::NotFound("folder '" + dir +
                          "' has no tokenizer.json, vocab.json (+ merges.txt) "
                          "or bpe_simple_vocab_16e6.txt.gz");
}

int TokenizeCommand(const std::string& tokenizer_path, const std::vector<std::string>& texts,
                    const std::string& lines_file, std::ostream& out, std::ostream& err, size_t max_len) {
  if (tokenizer_path.empty()) {
    err << "error: no tokenizer: pass --tokenizer FILE (tokenizer.json, vocab.json or "
           "bpe_simple_vocab_16e6.txt.gz)\n";
    return 2;
  }
  if (texts.empty() && lines_file.empty()) {
    err << "error: nothing to tokenize: give TEXT arguments or --lines FILE\n";
    return 2;
  }
  Result<std::unique_ptr<TextTokenizer>> tokenizer = LoadTextTokenizer(tokenizer_path);
  if (!tokenizer.ok()) {
    err << "error: " << tokenizer.status().ToString() << "\n";
    return 1;
  }
  std::string file_text;
  std::vector<std::string_view> all(texts.begin(), texts.end());
  if (!lines_file.empty()) {
    Result<std::string> data = Env::Default()->ReadFile(lines_file, UINT64_MAX);
    if (!data.ok()) {
      err << "error: reading --lines file: " << data.status().ToString() << "\n";
      return 1;
    }
    file_text = std::move(data).value();
    for (std::string_view line : SplitLines(file_text)) all.push_back(line);
  }
  std::string line;
  for (std::string_view text : all) {
    Result<std::vector<int32_t>> ids = (*tokenizer)->Encode(text, max_len);
    if (!ids.ok()) {
      err << "error: " << ids.status().ToString() << "\n";
      return 1;
    }
    line.clear();
    line.push_back('[');
    for (size_t i = 0; i < ids->size(); ++i) {
      if (i > 0) line.push_back(',');
      line += std::to_string((*ids)[i]);
    }
    line += "]\n";
    out << line;
  }
  out.flush();
  if (!out) {
    err << "error: could not write the output\n";
    return 1;
  }
  return 0;
}

}  // namespace fs::clip
