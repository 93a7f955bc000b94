#include "core/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

#include "core/check.h"
#include "core/hash.h"

namespace fs {
namespace {

// HMAC-SHA256(key, data) as 32 raw bytes.
std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const unsigned char* ok = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                                 reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  FS_CHECK(ok != nullptr && len == 32);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trims both ends and collapses inner runs of spaces and tabs to one space (SigV4's "Trimall").
std::string TrimAll(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string Scope(const SigV4Scope& scope) {
  return scope.amz_date.substr(0, 8) + "/" + scope.region + "/" + scope.service + "/aws4_request";
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string k = Hmac("AWS4" + std::string(secret), date);
  k = Hmac(k, region);
  k = Hmac(k, service);
  return Hmac(k, "aws4_request");
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      static constexpr char kUpperHex[] = "0123456789ABCDEF";  // SigV4 wants upper-case escapes
      out += kUpperHex[c >> 4];
      out += kUpperHex[c & 15];
    }
  }
  return out;
}

std::string UriEncodePath(std::string_view raw_path) { return "/" + UriEncode(raw_path, true); }

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;  // a parameter without a value is still "name="
  }
  return out;
}

std::string CanonicalRequest(const SigV4Request& request, std::string* signed_headers) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers) headers.emplace_back(Lower(name), TrimAll(value));
  std::stable_sort(headers.begin(), headers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers, names;
  for (size_t i = 0; i < headers.size(); ++i) {
    // A header sent twice is signed once, its values joined by commas.
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.back() = ',';
      canonical_headers += headers[i].second + "\n";
      continue;
    }
    canonical_headers += headers[i].first + ":" + headers[i].second + "\n";
    if (!names.empty()) names += ';';
    names += headers[i].first;
  }
  if (signed_headers) *signed_headers = names;
  return request.method + "\n" + request.path + "\n" + CanonicalQuery(request.query) + "\n" + canonical_headers + "\n" +
         names + "\n" + request.payload_sha256;
}

std::string StringToSign(const SigV4Request& request, const SigV4Scope& scope) {
  return "AWS4-HMAC-SHA256\n" + scope.amz_date + "\n" + Scope(scope) + "\n" +
         Sha256Hex(CanonicalRequest(request, nullptr));
}

std::string SignatureHex(const SigV4Request& request, const SigV4Scope& scope, const SigV4Credentials& credentials) {
  const std::string key =
      SigningKey(credentials.secret_access_key, scope.amz_date.substr(0, 8), scope.region, scope.service);
  const std::string mac = Hmac(key, StringToSign(request, scope));
  return ToHex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

std::string AuthorizationHeader(const SigV4Request& request, const SigV4Scope& scope,
                                const SigV4Credentials& credentials) {
  std::string signed_headers;
  (void)CanonicalRequest(request, &signed_headers);
  return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + Scope(scope) +
         ", SignedHeaders=" + signed_headers + ", Signature=" + SignatureHex(request, scope, credentials);
}

std::string SigningKeyHex(std::string_view secret, std::string_view date, std::string_view region,
                          std::string_view service) {
  const std::string key = SigningKey(secret, date, region, service);
  return ToHex(reinterpret_cast<const unsigned char*>(key.data()), key.size());
}

std::string AmzDate(long long unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace fs
