// Authentication for the HTTP API: verifies `Authorization: Bearer <JWT>` tokens.
// Accepted algorithms: HS256 (shared secret), RS256 and ES256 (public keys from a JWKS file).
// Checks the signature, `exp` (required), `nbf`, `iss` and `aud` (string or array) with a small clock
// skew; refuses `alg: none` and algorithm confusion (an HS256 token never verifies against a JWKS key,
// and an RS/ES token only against a key of the matching kty/crv/alg).
// Thread-safety: a JwtVerifier is immutable after Create and safe for concurrent Verify calls.
// Ownership: the verifier owns its parsed keys; no OpenSSL type crosses this header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base64.h"
#include "core/status.h"

namespace fs::server {

struct AuthOptions {
  bool disabled = false;            // --no-auth: every request is anonymous and unrestricted
  std::string hs256_secret;         // --auth-secret: enables HS256 ("" = HS256 refused)
  std::string jwks_json;            // contents of --jwks FILE: enables RS256 / ES256 ("" = refused)
  std::string issuer;               // --jwt-issuer: required `iss` ("" = not checked)
  std::string audience;             // --jwt-audience: must appear in `aud` ("" = not checked)
  int64_t clock_skew_s = 60;        // tolerance for exp / nbf
  std::string paths_claim = "paths";  // claim with the user's allowed path prefixes (absent = all)
  size_t max_token_bytes = 8192;
};

// Who is asking. An empty `path_prefixes` means every document is visible.
struct Principal {
  std::string subject;                     // `sub`, "" when anonymous
  std::vector<std::string> path_prefixes;  // display-path prefixes this user may see
  bool anonymous = false;                  // auth disabled
  bool admin = false;                      // claim `"admin": true`: may use the /admin/ routes
};

class JwtVerifier {
 public:
  // InvalidArgument when the options are unusable (bad JWKS, no key at all while auth is on).
  static Result<std::unique_ptr<JwtVerifier>> Create(const AuthOptions& options);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // Verifies a compact JWS token at time `now_s` (seconds since the epoch). PermissionDenied with
  // a message that says what was wrong (expired, wrong audience, bad signature...).
  Result<Principal> Verify(std::string_view token, int64_t now_s) const;
  // Number of usable JWKS keys loaded (for start-up logs and tests).
  size_t jwks_key_count() const;

 private:
  struct Impl;
  explicit JwtVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What `filesearch token` puts in a token it mints.
struct TokenClaims {
  std::string subject;                     // `sub`: the user's name (required)
  std::vector<std::string> path_prefixes;  // the paths claim: display-path prefixes (empty = every document)
  int64_t ttl_s = 8 * 3600;                // `exp` = now + ttl_s (1 s to 366 days)
  bool admin = false;                      // `"admin": true` (omitted when false)
  std::string issuer;                      // `iss` ("" = omitted): the server's --jwt-issuer
  std::string audience;                    // `aud` ("" = omitted): the server's --jwt-audience
  std::string paths_claim = "paths";       // the server's --paths-claim
};

// An HS256 JWT over `claims`, issued at `now_s` (`iat`), signed with `secret` (the same bytes as the
// server's --auth-secret / --auth-secret-file, at least 32 of them). InvalidArgument for a short
// secret, an empty subject or path, or a ttl out of range.
Result<std::string> MintHs256Token(const TokenClaims& claims, std::string_view secret, int64_t now_s);
// "8h", "30m", "7d", "90s" or a plain number of seconds, to seconds. InvalidArgument otherwise.
Result<int64_t> ParseDuration(std::string_view text);

}  // namespace fs::server
