#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/env.h"
#include "core/hash.h"
#include "core/json_dump.h"
#include "core/status.h"
#include "core/utf8.h"

namespace fs {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return Status::InvalidArgument("must be positive");
  return v;
}

Status UseIt(int v, int* out) {
  FS_ASSIGN_OR_RETURN(*out, ParsePositive(v));
  return Status::Ok();
}

TEST(StatusTest, CodesAndContext) {
  Status s = Status::NotFound("no such doc").WithContext("get 42");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "not_found: get 42: no such doc");
  EXPECT_EQ(Status::Ok().ToString(), "ok");
}

TEST(StatusTest, AssignOrReturnPropagates) {
  int out = 0;
  EXPECT_TRUE(UseIt(5, &out).ok());
  EXPECT_EQ(out, 5);
  Status bad = UseIt(-1, &out);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
}

TEST(HashTest, Sha256KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, FileMatchesBytes) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/hash_test.bin";
  std::string data(3 << 20, 'x');  // crosses the 1 MiB streaming block
  for (size_t i = 0; i < data.size(); i += 7) data[i] = static_cast<char>(i & 0xFF);
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, data).ok());
  auto h = Sha256File(path);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, Sha256Hex(data));
}

TEST(EnvTest, AtomicWriteAndLimits) {
  Env* env = Env::Default();
  std::string path = ::testing::TempDir() + "/env_test.txt";
  ASSERT_TRUE(env->WriteFileAtomic(path, "hello").ok());
  EXPECT_EQ(*env->ReadFile(path), "hello");
  EXPECT_EQ(env->ReadFile(path, 3).status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(env->FileExists(path + ".tmp"));
  EXPECT_EQ(env->ReadFile(path + ".missing").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(env->RemoveFile(path).ok());
  EXPECT_FALSE(env->FileExists(path));
}

TEST(EnvTest, FaultInjection) {
  auto mem = NewMemEnv();
  FaultInjectionEnv faulty(mem.get());
  faulty.FailWritesAfter(1);
  EXPECT_TRUE(faulty.WriteFileAtomic("a", "1").ok());
  EXPECT_EQ(faulty.WriteFileAtomic("b", "2").code(), StatusCode::kIOError);
  faulty.FailWritesAfter(-1);
  faulty.TruncateNextWrite(2);
  EXPECT_TRUE(faulty.WriteFileAtomic("c", "abcdef").ok());
  EXPECT_EQ(*faulty.ReadFile("c", 100), "ab");
}

TEST(Utf8Test, ValidateAndRepair) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("東京支社/議事録.docx"));
  EXPECT_TRUE(IsValidUtf8("\xEF\xBF\xBD"));  // a real U+FFFD
  EXPECT_FALSE(IsValidUtf8("bad\xFF\xFEname"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));       // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));   // surrogate
  EXPECT_EQ(RepairUtf8("bad\xFF\xFEname"), "bad\xEF\xBF\xBDname");
  EXPECT_EQ(RepairUtf8("\xE6\x9D"), "\xEF\xBF\xBD");  // truncated sequence
}

// A message holding bytes that are not UTF-8 (a Latin-1 file name, a decoder echoing raw bytes):
// nlohmann's plain dump() throws on it; DumpJson writes U+FFFD and the result parses again.
TEST(JsonDumpTest, InvalidUtf8BecomesReplacementCharacterInsteadOfThrowing) {
  nlohmann::json j = {{"message", "caf\xE9 \xFF\xFE.png: bad header"}, {"ok", "東京"}};
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);
  for (int indent : {-1, 2}) {
    std::string text;
    ASSERT_NO_THROW(text = DumpJson(j, indent));
    EXPECT_TRUE(IsValidUtf8(text)) << text;
    auto back = nlohmann::json::parse(text, nullptr, false);
    ASSERT_TRUE(back.is_object()) << text;
    EXPECT_EQ(back["message"].get<std::string>().find("caf\xEF\xBF\xBD"), 0u) << text;
    EXPECT_EQ(back["ok"], "東京");
  }
  nlohmann::ordered_json ordered = {{"path", "\xC0\xAF"}};
  EXPECT_EQ(DumpJson(ordered), "{\"path\":\"\xEF\xBF\xBD\xEF\xBF\xBD\"}");
}

}  // namespace
}  // namespace fs

namespace fs {
namespace {

TEST(Base64Test, RoundTripAndStrictness) {
  for (std::string s : {std::string(""), std::string("f"), std::string("fo"), std::string("foo"),
                        std::string("\x00\xFF\xFE\x01", 4)}) {
    auto url = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(url.ok());
    EXPECT_EQ(*url, s);
  }
  EXPECT_EQ(Base64UrlEncode("\xFB\xFF"), "-_8");
  EXPECT_EQ(*Base64Decode("Zm9v\nYmE="), "fooba");
  EXPECT_FALSE(Base64Decode("Zm9v!").ok());
  // RFC 4648 section 10 test vectors, and the RFC 7617 basic-auth example.
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  EXPECT_FALSE(Base64Decode("Zg==Zg").ok());   // data after padding
  EXPECT_FALSE(Base64UrlDecode("Zh").ok());    // non-zero leftover bits
}

}  // namespace
}  // namespace fs
