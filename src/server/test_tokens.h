// Internal header of server/ tests: mints JWTs (HS256, RS256, ES256, and deliberately broken
// ones) and JWKS documents with freshly generated OpenSSL keys. Test-only; not thread-safe.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace fs::server::testing {

// A generated key pair; `kid` names it in the JWKS.
class TestKey {
 public:
  static std::unique_ptr<TestKey> Rsa(const std::string& kid);
  static std::unique_ptr<TestKey> Ec(const std::string& kid);
  ~TestKey();
  TestKey(const TestKey&) = delete;
  TestKey& operator=(const TestKey&) = delete;

  // The public key as a JWK object (with "alg" unless `with_alg` is false).
  nlohmann::json Jwk(bool with_alg = true) const;
  // Signs header.payload; `alg` must be RS256 for RSA keys and ES256 for EC keys.
  std::string Sign(const nlohmann::json& header, const nlohmann::json& claims) const;
  // The public key in PEM (for algorithm-confusion tests).
  std::string PublicPem() const;
  const std::string& kid() const { return kid_; }

 private:
  TestKey(void* pkey, std::string kid, bool rsa) : pkey_(pkey), kid_(std::move(kid)), rsa_(rsa) {}
  void* pkey_;  // EVP_PKEY
  std::string kid_;
  bool rsa_;
};

// HS256 token over `claims` with `secret`.
std::string SignHs256(const std::string& secret, const nlohmann::json& claims, const nlohmann::json& header_extra = {});
// header.payload. with an empty signature and alg "none".
std::string UnsignedToken(const nlohmann::json& claims);
long long NowSeconds();

}  // namespace fs::server::testing
