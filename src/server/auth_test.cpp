#include "server/auth.h"

#include <gtest/gtest.h>

#include "server/test_tokens.h"

namespace fs::server {
namespace {

using testing::NowSeconds;
using testing::SignHs256;
using testing::TestKey;
using Json = nlohmann::json;

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

Json Claims(long long exp_offset = 600) {
  return {{"sub", "alice"}, {"iss", "https://login.test"}, {"aud", "filesearch"}, {"exp", NowSeconds() + exp_offset}};
}

std::unique_ptr<JwtVerifier> Hs(const std::string& issuer = "https://login.test", const std::string& aud = "filesearch") {
  AuthOptions o;
  o.hs256_secret = kSecret;
  o.issuer = issuer;
  o.audience = aud;
  auto v = JwtVerifier::Create(o);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(v).value();
}

std::string DenialOf(const JwtVerifier& v, const std::string& token) {
  auto p = v.Verify(token, NowSeconds());
  if (p.ok()) return "accepted";
  EXPECT_EQ(p.status().code(), StatusCode::kPermissionDenied);
  return p.status().message();
}

TEST(Base64Url, RoundTripsAndRejectsJunk) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)}) {
    auto back = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(Base64UrlDecode("ab+c").ok());
  EXPECT_FALSE(Base64UrlDecode("a").ok());
  EXPECT_FALSE(Base64UrlDecode(std::string("ab\0c", 4)).ok());
  auto std_b64 = Base64Decode("aGVs\nbG8=");
  ASSERT_TRUE(std_b64.ok());
  EXPECT_EQ(*std_b64, "hello");
}

TEST(Jwt, Hs256AcceptsAValidTokenAndReadsPaths) {
  auto v = Hs();
  Json c = Claims();
  c["paths"] = {"/srv/share/finance/"};
  auto p = v->Verify(SignHs256(kSecret, c), NowSeconds());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->subject, "alice");
  ASSERT_EQ(p->path_prefixes.size(), 1u);
  EXPECT_EQ(p->path_prefixes[0], "/srv/share/finance/");
}

TEST(Jwt, MintedTokensVerifyWithTheSameSecretOnly) {
  TokenClaims c;
  c.subject = "bob";
  c.path_prefixes = {"/srv/share/sales/", "/srv/share/public/"};
  c.ttl_s = 3600;
  c.admin = true;
  c.issuer = "https://login.test";
  c.audience = "filesearch";
  auto token = MintHs256Token(c, kSecret, NowSeconds());
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  auto p = Hs()->Verify(*token, NowSeconds());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->subject, "bob");
  EXPECT_EQ(p->path_prefixes, c.path_prefixes);
  EXPECT_TRUE(p->admin);
  // Expires after its lifetime (plus the verifier's 60 s skew), and another secret refuses it.
  EXPECT_NE(DenialOf(*Hs(), *token).find("accepted"), std::string::npos);
  auto later = Hs()->Verify(*token, NowSeconds() + 3600 + 61);
  EXPECT_FALSE(later.ok());
  AuthOptions other;
  other.hs256_secret = std::string(40, 'x');
  auto v = JwtVerifier::Create(other);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(DenialOf(**v, *token), "invalid token signature");
  // Bad requests say what to fix.
  EXPECT_EQ(MintHs256Token(c, "short", NowSeconds()).status().code(), StatusCode::kInvalidArgument);
  c.subject = "";
  EXPECT_EQ(MintHs256Token(c, kSecret, NowSeconds()).status().code(), StatusCode::kInvalidArgument);
  c.subject = "bob";
  c.ttl_s = 0;
  EXPECT_EQ(MintHs256Token(c, kSecret, NowSeconds()).status().code(), StatusCode::kInvalidArgument);
}

TEST(Jwt, ParseDurationTakesUnits) {
  EXPECT_EQ(*ParseDuration("90s"), 90);
  EXPECT_EQ(*ParseDuration("30m"), 1800);
  EXPECT_EQ(*ParseDuration("8h"), 28800);
  EXPECT_EQ(*ParseDuration("7d"), 604800);
  EXPECT_EQ(*ParseDuration("120"), 120);
  for (const char* bad : {"", "h", "8x", "-5m", "1.5h", "8 h", "9999999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(Jwt, AudienceMayBeAnArray) {
  auto v = Hs();
  Json c = Claims();
  c["aud"] = {"other", "filesearch"};
  EXPECT_EQ(DenialOf(*v, SignHs256(kSecret, c)), "accepted");
  c["aud"] = {"other"};
  EXPECT_NE(DenialOf(*v, SignHs256(kSecret, c)).find("audience"), std::string::npos);
}

TEST(Jwt, RejectsExpiredNotYetValidWrongIssuerAndMissingExp) {
  auto v = Hs();
  EXPECT_NE(DenialOf(*v, SignHs256(kSecret, Claims(-3600))).find("expired"), std::string::npos);
  EXPECT_EQ(DenialOf(*v, SignHs256(kSecret, Claims(-30))), "accepted");  // within the clock skew
  Json c = Claims();
  c["nbf"] = NowSeconds() + 3600;
  EXPECT_NE(DenialOf(*v, SignHs256(kSecret, c)).find("not valid before"), std::string::npos);
  c = Claims();
  c["iss"] = "https://evil.test";
  EXPECT_NE(DenialOf(*v, SignHs256(kSecret, c)).find("issuer"), std::string::npos);
  c = Claims();
  c.erase("exp");
  EXPECT_NE(DenialOf(*v, SignHs256(kSecret, c)).find("exp"), std::string::npos);
}

TEST(Jwt, RejectsForgedSignaturesAndAlgNone) {
  auto v = Hs();
  EXPECT_NE(DenialOf(*v, SignHs256("another-secret-that-is-long-enough-1234", Claims())).find("signature"), std::string::npos);
  std::string token = SignHs256(kSecret, Claims());
  // Swap the payload for one granting more, keep the signature.
  Json c = Claims();
  c["paths"] = Json::array();
  c["sub"] = "admin";
  size_t d1 = token.find('.'), d2 = token.rfind('.');
  std::string forged = token.substr(0, d1 + 1) + Base64UrlEncode(c.dump()) + token.substr(d2);
  EXPECT_NE(DenialOf(*v, forged).find("signature"), std::string::npos);
  EXPECT_NE(DenialOf(*v, testing::UnsignedToken(Claims())).find("alg none"), std::string::npos);
  EXPECT_NE(DenialOf(*v, "").find("missing"), std::string::npos);
  EXPECT_NE(DenialOf(*v, "a.b").find("malformed"), std::string::npos);
  EXPECT_NE(DenialOf(*v, "!!!.???.***").find("malformed"), std::string::npos);
}

TEST(Jwt, Rs256AndEs256FromJwks) {
  auto rsa = TestKey::Rsa("r1");
  auto ec = TestKey::Ec("e1");
  AuthOptions o;
  o.jwks_json = Json{{"keys", {rsa->Jwk(), ec->Jwk(false)}}}.dump();
  auto v = JwtVerifier::Create(o);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->jwks_key_count(), 2u);
  EXPECT_EQ(DenialOf(**v, rsa->Sign({{"alg", "RS256"}, {"kid", "r1"}}, Claims())), "accepted");
  EXPECT_EQ(DenialOf(**v, ec->Sign({{"alg", "ES256"}, {"kid", "e1"}}, Claims())), "accepted");
  EXPECT_EQ(DenialOf(**v, ec->Sign({{"alg", "ES256"}}, Claims())), "accepted");  // no kid: try keys of the type
  // A key unknown to the JWKS.
  auto other = TestKey::Rsa("r1");
  EXPECT_NE(DenialOf(**v, other->Sign({{"alg", "RS256"}, {"kid", "r1"}}, Claims())).find("signature"), std::string::npos);
  // HS256 is refused outright when no secret is configured.
  EXPECT_NE(DenialOf(**v, SignHs256(kSecret, Claims())).find("not accepted"), std::string::npos);
}

TEST(Jwt, AlgorithmConfusionIsRefused) {
  auto rsa = TestKey::Rsa("r1");
  AuthOptions o;
  o.hs256_secret = kSecret;
  o.jwks_json = Json{{"keys", {rsa->Jwk()}}}.dump();
  auto v = JwtVerifier::Create(o);
  ASSERT_TRUE(v.ok());
  // The classic attack: HMAC the token with the RSA public key (PEM or JWK text) as the secret.
  EXPECT_NE(DenialOf(**v, SignHs256(rsa->PublicPem(), Claims(), {{"kid", "r1"}})).find("signature"), std::string::npos);
  EXPECT_NE(DenialOf(**v, SignHs256(rsa->Jwk().dump(), Claims(), {{"kid", "r1"}})).find("signature"), std::string::npos);
  // An RSA-signed token that claims ES256 finds no EC key.
  std::string t = rsa->Sign({{"alg", "RS256"}, {"kid", "r1"}}, Claims());
  Json lying = {{"alg", "ES256"}, {"kid", "r1"}};
  std::string swapped = Base64UrlEncode(lying.dump()) + t.substr(t.find('.'));
  EXPECT_NE(DenialOf(**v, swapped).find("signature"), std::string::npos);
  // Unsupported algorithms.
  EXPECT_NE(DenialOf(**v, SignHs256(kSecret, Claims(), {{"alg", "HS512"}})).find("not supported"), std::string::npos);
}

TEST(Jwt, ConfigurationErrorsAreClear) {
  AuthOptions none;
  auto v = JwtVerifier::Create(none);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("--no-auth"), std::string::npos);
  AuthOptions short_secret;
  short_secret.hs256_secret = "short";
  EXPECT_FALSE(JwtVerifier::Create(short_secret).ok());
  AuthOptions bad_jwks;
  bad_jwks.jwks_json = "{\"keys\": [{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}";
  EXPECT_FALSE(JwtVerifier::Create(bad_jwks).ok());
  AuthOptions off;
  off.disabled = true;
  auto anon = JwtVerifier::Create(off);
  ASSERT_TRUE(anon.ok());
  auto p = (*anon)->Verify("", 0);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->anonymous);
}

TEST(Jwt, EmptyPathsClaimMeansNothingVisible) {
  auto v = Hs();
  Json c = Claims();
  c["paths"] = Json::array();
  auto p = v->Verify(SignHs256(kSecret, c), NowSeconds());
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->path_prefixes.size(), 1u);
  EXPECT_NE(std::string("/srv/x").rfind(p->path_prefixes[0], 0), 0u);
  c["paths"] = 5;
  EXPECT_NE(DenialOf(*v, SignHs256(kSecret, c)).find("paths"), std::string::npos);
}

}  // namespace
}  // namespace fs::server
