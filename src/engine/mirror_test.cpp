// SyncMirror's bookkeeping against a remote that applies _bulk lines to a map (by _id, as an
// index does): every document lands exactly once, a remote that goes away mid-sync loses nothing
// (the outbox keeps what was not acknowledged), deletes and new embeddings follow, refused items go
// on the failure list while the rest land. The real OpenSearch node runs the same path in the
// OpenSearch back end's tests.
#include "engine/mirror.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "index/opensearch_query.h"

namespace fs {
namespace {

using Json = nlohmann::json;
namespace stdfs = std::filesystem;

// Applies index and delete actions by _id; can fail whole requests or refuse one uri's items.
class MapRemote : public BulkSink {
 public:
  std::map<std::string, Json> docs;
  int writes = 0;
  int fail_after_requests = -1;  // >= 0: requests after that many fail as if the node were down
  std::string refuse_name;       // items for a document of this name get 400
  int requests = 0;

  Result<std::vector<BulkItemResult>> Bulk(const std::string& ndjson, size_t items) override {
    if (fail_after_requests >= 0 && requests >= fail_after_requests) {
      return Status::Unavailable("cannot reach OpenSearch at http://127.0.0.1:1: connection refused");
    }
    ++requests;
    std::vector<BulkItemResult> out;
    size_t pos = 0;
    while (pos < ndjson.size()) {
      size_t nl = ndjson.find('\n', pos);
      Json action = Json::parse(ndjson.substr(pos, nl - pos));
      pos = nl + 1;
      if (action.contains("delete")) {
        const std::string id = action["delete"]["_id"];
        out.push_back({docs.erase(id) ? 200 : 404, ""});
        continue;
      }
      nl = ndjson.find('\n', pos);
      Json source = Json::parse(ndjson.substr(pos, nl - pos));
      pos = nl + 1;
      if (!refuse_name.empty() && source["name"] == refuse_name) {
        out.push_back({400, "mapper_parsing_exception: failed to parse field [size]"});
        continue;
      }
      docs[action["index"]["_id"]] = source;
      ++writes;
      out.push_back({201, ""});
    }
    EXPECT_EQ(out.size(), items);
    return out;
  }
};

class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/mirror_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/files");
    for (int i = 0; i < 30; ++i) std::ofstream(base_ + "/files/note" + std::to_string(i) + ".txt") << "note number " << i;
    for (int i = 0; i < 4; ++i) {
      std::ofstream(base_ + "/files/img" + std::to_string(i) + ".png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << i;
    }
    EngineOptions o;
    o.data_dir = base_ + "/data";
    o.progress = false;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }
  void TearDown() override {
    engine_.reset();
    stdfs::remove_all(base_);
  }
  // The remote must hold exactly the store's documents, each under its stable id.
  void ExpectSameAsStore(const MapRemote& remote) {
    auto n = engine_->store()->Stats();
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(remote.docs.size(), n->documents);
    for (const auto& [id, source] : remote.docs) {
      auto doc = engine_->store()->GetByUri(source["uri"]);
      ASSERT_TRUE(doc.ok()) << "the remote holds a document the store does not: " << source["uri"];
      EXPECT_EQ(id, std::to_string(opensearch::StableDocId(doc->uri)));
      EXPECT_EQ(source["content"], doc->content);
    }
  }
  std::string base_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(MirrorTest, EveryDocumentLandsOnceAndARemoteOutageLosesNothing) {
  ASSERT_TRUE(engine_->Index(base_ + "/files").ok());
  ASSERT_TRUE(engine_->store()->EnableMirror("opensearch http://127.0.0.1:9200/cis-files").ok());
  EXPECT_EQ(engine_->store()->EnableMirror("opensearch http://other/x").code(), StatusCode::kFailedPrecondition);
  MapRemote remote;
  remote.fail_after_requests = 2;  // the node goes away after two batches of 5
  MirrorOptions o;
  o.max_items = 5;
  auto first = SyncMirror(engine_->store(), &remote, o);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(remote.docs.size(), 10u);
  auto backlog = engine_->store()->MirrorBacklog();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(*backlog, 24u) << "what was not acknowledged stays queued";
  remote.fail_after_requests = -1;  // back
  auto second = SyncMirror(engine_->store(), &remote, o);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->indexed, 24u);
  EXPECT_EQ(second->backlog, 0u);
  ExpectSameAsStore(remote);
  EXPECT_EQ(remote.writes, 34) << "no document was written twice";
  auto idle = SyncMirror(engine_->store(), &remote, o);
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->requests, 0u) << "nothing queued, nothing sent";
}

TEST_F(MirrorTest, ChangesDeletesEmbeddingsAndRefusedItemsFollow) {
  ASSERT_TRUE(engine_->store()->EnableMirror("opensearch test").ok());  // before the first index
  ASSERT_TRUE(engine_->Index(base_ + "/files").ok());
  MapRemote remote;
  remote.refuse_name = "note7.txt";
  ASSERT_TRUE(SyncMirror(engine_->store(), &remote, {}).ok());
  EXPECT_EQ(remote.docs.size(), 33u);
  auto failures = engine_->store()->ListFailures(false, 100);
  ASSERT_TRUE(failures.ok());
  ASSERT_EQ(failures->size(), 1u);
  EXPECT_EQ((*failures)[0].stage, "mirror");
  EXPECT_NE((*failures)[0].reason.find("mapper_parsing_exception"), std::string::npos);

  // A deleted file, a changed file, and embeddings for the images.
  stdfs::remove(base_ + "/files/note3.txt");
  std::ofstream(base_ + "/files/note4.txt") << "rewritten text";
  stdfs::last_write_time(base_ + "/files/note4.txt", stdfs::file_time_type::clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(engine_->SetEmbedder(NewHashEmbedder(8)).ok());
  ASSERT_TRUE(engine_->Index(base_ + "/files").ok());
  remote.refuse_name.clear();
  auto requeued = engine_->store()->RequeueFailures();  // `failures --requeue` after fixing the cause
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(*requeued, 1u);
  MirrorOptions o;
  o.model = "test/hash-8";
  auto sync = SyncMirror(engine_->store(), &remote, o);
  ASSERT_TRUE(sync.ok()) << sync.status().ToString();
  EXPECT_EQ(sync->deleted, 1u);
  ExpectSameAsStore(remote);
  const Json& img = remote.docs[std::to_string(opensearch::StableDocId("file://" + base_ + "/files/img2.png"))];
  EXPECT_EQ(img["has_image_embedding"], true);
  EXPECT_EQ(img["embedding_model"], "test/hash-8");
  EXPECT_EQ(img["image_embedding"].size(), 8u);
  const Json& note = remote.docs[std::to_string(opensearch::StableDocId("file://" + base_ + "/files/note4.txt"))];
  EXPECT_EQ(note["content"], "rewritten text");
  auto left = engine_->store()->ListFailures(false, 100);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << "the retried item landed and left the failure list";
}

}  // namespace
}  // namespace fs
