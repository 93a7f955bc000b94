// VectorIndex across processes: a worker's snapshot trims the change log; a server's index that
// had not applied those entries yet must still see every vector.
#include "index/vector_index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/env.h"

namespace fs {
namespace {

TEST(VectorIndexTest, IndexBehindATrimmedLogReloadsAndMissesNothing) {
  const std::string dir = ::testing::TempDir() + "/vector_index_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string model = "test/m", snap = dir + "/vectors.hnsw";
  // Two handles on one database, as the server and a worker process hold them.
  auto server_store = Store::Open(dir + "/db.sqlite");
  auto worker_store = Store::Open(dir + "/db.sqlite");
  ASSERT_TRUE(server_store.ok() && worker_store.ok());
  std::vector<Document> docs(40);
  for (size_t i = 0; i < docs.size(); ++i) {
    docs[i].uri = "file:///img" + std::to_string(i) + ".png";
    docs[i].path = "/img" + std::to_string(i) + ".png";
    docs[i].name = "img" + std::to_string(i) + ".png";
    docs[i].mime = "image/png";
  }
  auto ids = (*worker_store)->UpsertBatch(docs);
  ASSERT_TRUE(ids.ok());
  auto vec_of = [](size_t i) {
    std::vector<float> v(4, 0.f);
    v[i % 4] = 1.f;
    v[(i + 1) % 4] = 0.5f + 0.01f * static_cast<float>(i);
    return v;
  };
  auto put = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) ASSERT_TRUE((*worker_store)->PutEmbedding((*ids)[i], model, vec_of(i)).ok());
  };
  put(0, 10);
  auto server = VectorIndex::Open(server_store->get(), Env::Default(), snap, model, {});
  ASSERT_TRUE(server.ok());
  EXPECT_EQ((*server)->size(), 10u);
  auto worker = VectorIndex::Open(worker_store->get(), Env::Default(), snap, model, {});
  ASSERT_TRUE(worker.ok());
  // The worker embeds 20 more and checkpoints (snapshot + trim) before the server looks.
  put(10, 30);
  ASSERT_TRUE((*worker)->SaveSnapshot().ok());
  auto trimmed = (*worker_store)->TrimmedThrough(model);
  ASSERT_TRUE(trimmed.ok());
  EXPECT_GT(*trimmed, 0u);
  // And 10 more after the snapshot, still in the log.
  put(30, 40);
  ASSERT_TRUE((*server)->Refresh().ok());
  EXPECT_EQ((*server)->size(), 40u);
  for (size_t i = 0; i < 40; i += 7) EXPECT_TRUE((*server)->Contains((*ids)[i])) << i;
  // Without a usable snapshot the server rebuilds from the embeddings instead.
  ASSERT_TRUE((*worker)->Refresh().ok());
  ASSERT_TRUE((*worker)->SaveSnapshot().ok());
  ASSERT_TRUE((*worker_store)->DeleteIds(std::vector<int64_t>{(*ids)[0], (*ids)[1]}).ok());
  ASSERT_TRUE((*worker)->SaveSnapshot().ok());
  std::filesystem::remove(snap);
  ASSERT_TRUE((*server)->Refresh().ok());
  EXPECT_EQ((*server)->size(), 38u);
  EXPECT_FALSE((*server)->Contains((*ids)[0]));
  server->reset();
  worker->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fs
