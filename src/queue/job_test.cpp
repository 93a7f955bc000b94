// Job bodies: S3 event notifications (keys URL-encoded), SNS-wrapped events, plain jobs, poison.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "queue/job.h"

namespace fs::queue {
namespace {

TEST(JobTest, S3EventCreatedAndRemovedWithEncodedKeys) {
  const std::string body = R"({"Records":[
    {"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
     "s3":{"bucket":{"name":"photos"},"object":{"key":"holiday+2024/caf%C3%A9+%2B1.jpg","size":12}}},
    {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"photos"},"object":{"key":"old.png"}}},
    {"eventName":"ObjectRestore:Completed","s3":{"bucket":{"name":"photos"},"object":{"key":"x.png"}}}]})";
  auto items = ParseJob(body);
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].action, JobItem::Action::kIndex);
  EXPECT_EQ((*items)[0].target, "s3://photos/holiday 2024/caf\xC3\xA9 +1.jpg");
  EXPECT_EQ((*items)[1].action, JobItem::Action::kRemove);
  EXPECT_EQ((*items)[1].target, "s3://photos/old.png");
}

TEST(JobTest, SnsWrappedEventAndTestEvent) {
  const std::string inner = R"({"Records":[{"eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"b"},"object":{"key":"a%20b.jpg"}}}]})";
  nlohmann::json sns = {{"Type", "Notification"}, {"Message", inner}};
  auto items = ParseJob(sns.dump());
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].target, "s3://b/a b.jpg");
  auto test_event = ParseJob(R"({"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"})");
  ASSERT_TRUE(test_event.ok());
  EXPECT_TRUE(test_event->empty());
}

TEST(JobTest, PlainJobsRoundTrip) {
  auto items = ParseJob(PlainJob("s3://bucket/dir/cat.jpg", false));
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].target, "s3://bucket/dir/cat.jpg");
  EXPECT_FALSE((*items)[0].use_cache);
  EXPECT_EQ((*items)[0].action, JobItem::Action::kIndex);
  auto removal = ParseJob(PlainJob("/srv/photos/cat.jpg", true, /*remove=*/true));
  ASSERT_TRUE(removal.ok());
  EXPECT_EQ((*removal)[0].action, JobItem::Action::kRemove);
  EXPECT_TRUE((*removal)[0].use_cache);
  // The original function's payload, useCache left out: on.
  auto original = ParseJob(R"({"imageUrl": "s3://cis-files/a.png"})");
  ASSERT_TRUE(original.ok());
  EXPECT_TRUE((*original)[0].use_cache);
}

TEST(JobTest, PoisonIsInvalidArgumentWithAReason) {
  for (const char* body : {"", "not json", "[1,2]", R"({"imageUrl": 3})", R"({"imageUrl": "relative/path.jpg"})",
                           R"({"imageUrl": "s3://b/k", "useCache": "yes"})", R"({"hello": "world"})",
                           R"({"Records": {"a": 1}})",
                           R"({"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"bad%zzkey"}}}]})",
                           R"({"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"}}}]})"}) {
    auto r = ParseJob(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_FALSE(r.status().message().empty());
  }
}

TEST(JobTest, DecodeS3EventKey) {
  EXPECT_EQ(*DecodeS3EventKey("a+b%2Bc%25d"), "a b+c%d");
  EXPECT_FALSE(DecodeS3EventKey("trailing%2").ok());
  EXPECT_FALSE(DecodeS3EventKey("%").ok());
}

}  // namespace
}  // namespace fs::queue
