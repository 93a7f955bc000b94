#include "server/auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

namespace fs::server {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

struct Jwk {
  std::string kid;
  std::string kty;  // "RSA" or "EC"
  std::string alg;  // "" when the JWK does not pin one
  PkeyPtr key;
};

Status Denied(std::string m) { return Status::PermissionDenied(std::move(m)); }

// Builds an RSA public key from base64url n and e.
Result<PkeyPtr> RsaFromJwk(const nlohmann::json& j) {
  if (!j.contains("n") || !j.contains("e") || !j["n"].is_string() || !j["e"].is_string()) {
    return Status::InvalidArgument("RSA JWK needs string fields n and e");
  }
  FS_ASSIGN_OR_RETURN(std::string n, Base64UrlDecode(j["n"].get<std::string>()));
  FS_ASSIGN_OR_RETURN(std::string e, Base64UrlDecode(j["e"].get<std::string>()));
  if (n.size() < 256) return Status::InvalidArgument("RSA JWK modulus is shorter than 2048 bits");
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = bn_n && bn_e && bld && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) && (params = OSSL_PARAM_BLD_to_param(bld)) &&
            EVP_PKEY_fromdata_init(ctx) > 0 && EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) > 0;
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  EVP_PKEY_CTX_free(ctx);
  BN_free(bn_n);
  BN_free(bn_e);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return Status::InvalidArgument("RSA JWK could not be turned into a public key");
  }
  return PkeyPtr(pkey);
}

// Builds a P-256 public key from base64url x and y (32 bytes each).
Result<PkeyPtr> EcFromJwk(const nlohmann::json& j) {
  if (j.value("crv", "") != "P-256") return Status::InvalidArgument("EC JWK must use crv P-256 (ES256)");
  if (!j.contains("x") || !j.contains("y") || !j["x"].is_string() || !j["y"].is_string()) {
    return Status::InvalidArgument("EC JWK needs string fields x and y");
  }
  FS_ASSIGN_OR_RETURN(std::string x, Base64UrlDecode(j["x"].get<std::string>()));
  FS_ASSIGN_OR_RETURN(std::string y, Base64UrlDecode(j["y"].get<std::string>()));
  if (x.size() != 32 || y.size() != 32) return Status::InvalidArgument("EC JWK x and y must be 32 bytes each");
  std::string point = "\x04" + x + y;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = bld && ctx && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) &&
            (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) > 0 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) > 0;
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return Status::InvalidArgument("EC JWK is not a valid P-256 public key");
  }
  // EVP_PKEY_fromdata does not check that the point lies on the curve; do it.
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new(pkey, nullptr);
  bool on_curve = check && EVP_PKEY_public_check(check) == 1;
  EVP_PKEY_CTX_free(check);
  if (!on_curve) {
    EVP_PKEY_free(pkey);
    return Status::InvalidArgument("EC JWK point is not on the P-256 curve");
  }
  return PkeyPtr(pkey);
}

bool VerifyDigestSignature(EVP_PKEY* key, std::string_view signed_part, std::string_view sig) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok = md && EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

// JWS ES256 signatures are r || s (32 bytes each); OpenSSL wants DER.
std::optional<std::string> EsRawToDer(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data() + 32), 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// A NumericDate claim: a JSON number (integer or not).
std::optional<double> NumericClaim(const nlohmann::json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::string FormatEpoch(double s) { return std::to_string(static_cast<long long>(s)) + " (unix seconds)"; }

}  // namespace


struct JwtVerifier::Impl {
  AuthOptions options;
  std::vector<Jwk> keys;
};

JwtVerifier::JwtVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JwtVerifier::~JwtVerifier() = default;
size_t JwtVerifier::jwks_key_count() const { return impl_->keys.size(); }

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(const AuthOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.disabled) return std::unique_ptr<JwtVerifier>(new JwtVerifier(std::move(impl)));
  if (!options.hs256_secret.empty() && options.hs256_secret.size() < 32) {
    return Status::InvalidArgument("the HS256 secret must be at least 32 bytes (use a long random string)");
  }
  if (!options.jwks_json.empty()) {
    auto j = nlohmann::json::parse(options.jwks_json, nullptr, false);
    if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array()) {
      return Status::InvalidArgument("the JWKS file must be a JSON object with a \"keys\" array");
    }
    size_t index = 0;
    for (const auto& k : j["keys"]) {
      ++index;
      if (!k.is_object()) return Status::InvalidArgument("JWKS key #" + std::to_string(index) + " is not an object");
      Jwk jwk;
      jwk.kty = k.value("kty", "");
      jwk.kid = k.contains("kid") && k["kid"].is_string() ? k["kid"].get<std::string>() : "";
      jwk.alg = k.contains("alg") && k["alg"].is_string() ? k["alg"].get<std::string>() : "";
      if (k.contains("use") && k["use"] != "sig") continue;  // encryption keys are not for us
      Result<PkeyPtr> key = Status::Unsupported("");
      if (jwk.kty == "RSA") {
        key = RsaFromJwk(k);
      } else if (jwk.kty == "EC") {
        key = EcFromJwk(k);
      } else {
        continue;  // "oct" and others: symmetric keys come only from --auth-secret
      }
      if (!key.ok()) return key.status().WithContext("JWKS key #" + std::to_string(index));
      if (!jwk.alg.empty() && jwk.alg != (jwk.kty == "RSA" ? "RS256" : "ES256")) {
        return Status::InvalidArgument("JWKS key #" + std::to_string(index) + " has alg " + jwk.alg +
                                       ", which this server does not verify (RS256 and ES256 only)");
      }
      jwk.key = std::move(key).value();
      impl->keys.push_back(std::move(jwk));
    }
    if (impl->keys.empty()) return Status::InvalidArgument("the JWKS file holds no RSA or P-256 signing key");
  }
  if (options.hs256_secret.empty() && impl->keys.empty()) {
    return Status::InvalidArgument(
        "authentication is on but no key is configured: give --auth-secret or --jwks FILE (or --no-auth to turn it off)");
  }
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(std::move(impl)));
}

Result<Principal> JwtVerifier::Verify(std::string_view token, int64_t now_s) const {
  const AuthOptions& o = impl_->options;
  if (o.disabled) {
    Principal p;
    p.anonymous = true;
    return p;
  }
  if (token.empty()) return Denied("missing bearer token: send 'Authorization: Bearer <JWT>'");
  if (token.size() > o.max_token_bytes) return Denied("token is longer than " + std::to_string(o.max_token_bytes) + " bytes");
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Denied("malformed token: a JWT has three base64url parts separated by '.'");
  }
  std::string_view signed_part = token.substr(0, dot2);
  auto header_raw = Base64UrlDecode(token.substr(0, dot1));
  auto payload_raw = Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto sig = Base64UrlDecode(token.substr(dot2 + 1));
  if (!header_raw.ok() || !payload_raw.ok() || !sig.ok()) return Denied("malformed token: a part is not valid base64url");
  auto header = nlohmann::json::parse(*header_raw, nullptr, false);
  auto claims = nlohmann::json::parse(*payload_raw, nullptr, false);
  if (!header.is_object() || !claims.is_object()) return Denied("malformed token: header and payload must be JSON objects");
  if (!header.contains("alg") || !header["alg"].is_string()) return Denied("malformed token: header has no alg");
  if (header.contains("crit")) return Denied("token header has 'crit' extensions, which this server does not support");
  const std::string alg = header["alg"].get<std::string>();
  const std::string kid = header.contains("kid") && header["kid"].is_string() ? header["kid"].get<std::string>() : "";

  // Signature first: nothing in an unverified payload is trusted.
  bool verified = false;
  if (alg == "HS256") {
    if (o.hs256_secret.empty()) return Denied("HS256 tokens are not accepted by this server (it verifies RS256/ES256 from its JWKS)");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), o.hs256_secret.data(), static_cast<int>(o.hs256_secret.size()),
              reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &mac_len)) {
      return Status::Internal("HMAC failed");
    }
    verified = sig->size() == mac_len && CRYPTO_memcmp(sig->data(), mac, mac_len) == 0;
  } else if (alg == "RS256" || alg == "ES256") {
    const std::string kty = alg == "RS256" ? "RSA" : "EC";
    std::optional<std::string> der;
    if (alg == "ES256") {
      der = EsRawToDer(*sig);
      if (!der) return Denied("invalid signature: an ES256 signature is 64 bytes (r || s)");
    }
    bool any_key = false;
    for (const Jwk& k : impl_->keys) {
      if (k.kty != kty || (!k.alg.empty() && k.alg != alg)) continue;  // alg must match the key type
      if (!kid.empty() && !k.kid.empty() && k.kid != kid) continue;
      any_key = true;
      if (VerifyDigestSignature(k.key.get(), signed_part, der ? *der : *sig)) {
        verified = true;
        break;
      }
    }
    if (!any_key) {
      return Denied(alg + " token" + (kid.empty() ? "" : " with kid '" + kid + "'") +
                    " has no matching key in the server's JWKS");
    }
  } else if (alg == "none" || alg == "None" || alg == "NONE") {
    return Denied("unsigned tokens (alg none) are never accepted");
  } else {
    return Denied("token algorithm '" + alg + "' is not supported: use HS256, RS256 or ES256");
  }
  if (!verified) return Denied("invalid token signature");

  const double now = static_cast<double>(now_s);
  auto exp = NumericClaim(claims, "exp");
  if (!exp) return Denied("token has no numeric exp (expiry) claim");
  if (now > *exp + static_cast<double>(o.clock_skew_s)) return Denied("token expired at " + FormatEpoch(*exp) + ": get a new one");
  if (claims.contains("nbf")) {
    auto nbf = NumericClaim(claims, "nbf");
    if (!nbf) return Denied("token nbf claim is not a number");
    if (now + static_cast<double>(o.clock_skew_s) < *nbf) return Denied("token is not valid before " + FormatEpoch(*nbf));
  }
  if (!o.issuer.empty()) {
    if (!claims.contains("iss") || claims["iss"] != o.issuer) return Denied("token issuer (iss) is not the one this server trusts");
  }
  if (!o.audience.empty()) {
    bool match = false;
    if (claims.contains("aud")) {
      const auto& aud = claims["aud"];
      if (aud.is_string()) match = aud.get<std::string>() == o.audience;
      if (aud.is_array()) {
        for (const auto& a : aud) match = match || (a.is_string() && a.get<std::string>() == o.audience);
      }
    }
    if (!match) return Denied("token audience (aud) does not name this server ('" + o.audience + "')");
  }
  Principal p;
  if (claims.contains("sub") && claims["sub"].is_string()) p.subject = claims["sub"].get<std::string>();
  if (claims.contains("admin")) {
    if (!claims["admin"].is_boolean()) return Denied("token claim 'admin' must be true or false");
    p.admin = claims["admin"].get<bool>();
  }
  if (claims.contains(o.paths_claim)) {
    const auto& c = claims[o.paths_claim];
    std::vector<nlohmann::json> items;
    if (c.is_string()) items.push_back(c);
    else if (c.is_array()) items.assign(c.begin(), c.end());
    else return Denied("token claim '" + o.paths_claim + "' must be a string or an array of path prefixes");
    for (const auto& item : items) {
      if (!item.is_string() || item.get<std::string>().empty()) {
        return Denied("token claim '" + o.paths_claim + "' must hold non-empty strings");
      }
      p.path_prefixes.push_back(item.get<std::string>());
    }
    // An empty array means "nothing", not "everything": keep an impossible prefix.
    if (p.path_prefixes.empty()) p.path_prefixes.push_back(std::string("\0", 1));
  }
  return p;
}

Result<int64_t> ParseDuration(std::string_view text) {
  const auto bad = [&text] {
    return Status::InvalidArgument("'" + std::string(text.substr(0, 32)) +
                                   "' is not a duration: write 90s, 30m, 8h or 7d (or a number of seconds)");
  };
  if (text.empty() || text.size() > 12) return bad();
  int64_t unit = 1;
  std::string_view digits = text;
  switch (text.back()) {
    case 's': unit = 1; digits.remove_suffix(1); break;
    case 'm': unit = 60; digits.remove_suffix(1); break;
    case 'h': unit = 3600; digits.remove_suffix(1); break;
    case 'd': unit = 86400; digits.remove_suffix(1); break;
    default: break;
  }
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) return bad();
  int64_t n = 0;
  for (char c : digits) n = n * 10 + (c - '0');  // at most 11 digits: no overflow
  return n * unit;
}

Result<std::string> MintHs256Token(const TokenClaims& c, std::string_view secret, int64_t now_s) {
  if (secret.size() < 32) {
    return Status::InvalidArgument("the HS256 secret must be at least 32 bytes: give the file the server reads "
                                   "(--auth-secret-file)");
  }
  if (c.subject.empty()) return Status::InvalidArgument("a token needs a user name (--user)");
  constexpr int64_t kMaxTtl = 366 * 86400;
  if (c.ttl_s < 1 || c.ttl_s > kMaxTtl) return Status::InvalidArgument("the lifetime must be from 1 s to 366 days");
  nlohmann::json claims = {{"sub", c.subject}, {"iat", now_s}, {"exp", now_s + c.ttl_s}};
  if (!c.path_prefixes.empty()) {
    for (const std::string& p : c.path_prefixes) {
      if (p.empty()) return Status::InvalidArgument("a path prefix is empty: name folders such as /srv/share/finance/");
    }
    claims[c.paths_claim.empty() ? "paths" : c.paths_claim] = c.path_prefixes;
  }
  if (c.admin) claims["admin"] = true;
  if (!c.issuer.empty()) claims["iss"] = c.issuer;
  if (!c.audience.empty()) claims["aud"] = c.audience;
  const nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  const std::string signed_part = Base64UrlEncode(header.dump()) + "." +
                                  Base64UrlEncode(claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &mac_len)) {
    return Status::Internal("HMAC failed");
  }
  return signed_part + "." + Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

}  // namespace fs::server
