#include "server/test_tokens.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <chrono>

#include "core/check.h"
#include "server/auth.h"

namespace fs::server::testing {
namespace {

EVP_PKEY* Pk(void* p) { return static_cast<EVP_PKEY*>(p); }

std::string BnParam(EVP_PKEY* key, const char* name, size_t pad_to = 0) {
  BIGNUM* bn = nullptr;
  FS_CHECK(EVP_PKEY_get_bn_param(key, name, &bn) == 1);
  size_t n = static_cast<size_t>(BN_num_bytes(bn));
  size_t len = std::max(n, pad_to);
  std::string out(len, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(len));
  BN_free(bn);
  return out;
}

std::string SigningInput(const nlohmann::json& header, const nlohmann::json& claims) {
  return Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
}

}  // namespace

std::unique_ptr<TestKey> TestKey::Rsa(const std::string& kid) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  FS_CHECK(key != nullptr);
  return std::unique_ptr<TestKey>(new TestKey(key, kid, true));
}

std::unique_ptr<TestKey> TestKey::Ec(const std::string& kid) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  FS_CHECK(key != nullptr);
  return std::unique_ptr<TestKey>(new TestKey(key, kid, false));
}

TestKey::~TestKey() { EVP_PKEY_free(Pk(pkey_)); }

nlohmann::json TestKey::Jwk(bool with_alg) const {
  nlohmann::json j;
  j["kid"] = kid_;
  j["use"] = "sig";
  if (rsa_) {
    j["kty"] = "RSA";
    j["n"] = Base64UrlEncode(BnParam(Pk(pkey_), OSSL_PKEY_PARAM_RSA_N));
    j["e"] = Base64UrlEncode(BnParam(Pk(pkey_), OSSL_PKEY_PARAM_RSA_E));
    if (with_alg) j["alg"] = "RS256";
  } else {
    j["kty"] = "EC";
    j["crv"] = "P-256";
    j["x"] = Base64UrlEncode(BnParam(Pk(pkey_), OSSL_PKEY_PARAM_EC_PUB_X, 32));
    j["y"] = Base64UrlEncode(BnParam(Pk(pkey_), OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    if (with_alg) j["alg"] = "ES256";
  }
  return j;
}

std::string TestKey::Sign(const nlohmann::json& header, const nlohmann::json& claims) const {
  std::string input = SigningInput(header, claims);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  FS_CHECK(EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, Pk(pkey_)) == 1);
  size_t len = 0;
  FS_CHECK(EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  std::string sig(len, '\0');
  FS_CHECK(EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len,
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  sig.resize(len);
  EVP_MD_CTX_free(md);
  if (!rsa_) {  // DER -> r || s
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    FS_CHECK(es != nullptr);
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data() + 32), 32);
    ECDSA_SIG_free(es);
    sig = raw;
  }
  return input + "." + Base64UrlEncode(sig);
}

std::string TestKey::PublicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  FS_CHECK(PEM_write_bio_PUBKEY(bio, Pk(pkey_)) == 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string SignHs256(const std::string& secret, const nlohmann::json& claims, const nlohmann::json& header_extra) {
  nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  if (header_extra.is_object()) header.update(header_extra);
  std::string input = SigningInput(header, claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &mac_len);
  return input + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), mac_len));
}

std::string UnsignedToken(const nlohmann::json& claims) {
  return SigningInput({{"alg", "none"}, {"typ", "JWT"}}, claims) + ".";
}

long long NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace fs::server::testing
