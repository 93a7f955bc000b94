#include <gtest/gtest.h>

#include "server/server.h"

namespace fs::server {
namespace {

TEST(RuntimeConfig, ReadsTheVectorSearchSwitch) {
  auto off = ParseRuntimeConfig(R"({"vector_search": {"enabled": false, "reason": "index rebuild"}})");
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_FALSE(off->enabled);
  EXPECT_EQ(off->reason, "index rebuild");
  auto on = ParseRuntimeConfig(R"({"vector_search": {"enabled": true}})");
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE(on->enabled);
  EXPECT_EQ(on->reason, "");
  auto empty = ParseRuntimeConfig("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->enabled);
}

TEST(RuntimeConfig, RefusesWhatItCannotRead) {
  for (const char* bad : {"", "[]", "not json", R"({"vectorsearch": {}})", R"({"vector_search": true})",
                          R"({"vector_search": {"reason": "x"}})", R"({"vector_search": {"enabled": "no"}})",
                          R"({"vector_search": {"enabled": false, "reason": 5}})",
                          R"({"vector_search": {"enabled": false, "why": "x"}})"}) {
    auto r = ParseRuntimeConfig(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(r.status().message().empty());
  }
  EXPECT_FALSE(ParseRuntimeConfig(R"({"vector_search": {"enabled": false, "reason": ")" + std::string(1001, 'x') + "\"}}").ok());
}

}  // namespace
}  // namespace fs::server
