// The engine's use of the embedding cache: identical bytes under many paths are embedded once,
// a renamed or re-added copy is served from the cache, and use_cache = false bypasses it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <algorithm>
#include <bit>
#include <map>
#include <random>
#include <set>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "engine/engine.h"
#include "image/image.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

// Wraps the hash embedder and counts the files it was asked to embed.
class CountingEmbedder : public ImageEmbedder {
 public:
  explicit CountingEmbedder(int* calls) : inner_(NewHashEmbedder(8)), calls_(calls) {}
  const std::string& model_id() const override { return inner_->model_id(); }
  size_t dim() const override { return inner_->dim(); }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    *calls_ += static_cast<int>(paths.size());
    FS_RETURN_IF_ERROR(inner_->EmbedFiles(paths, out, per_file, phash));
    for (size_t i = 0; i < paths.size(); ++i) {  // files named bad* fail, as a corrupt image would
      if (paths[i].find("/bad") != std::string::npos) (*per_file)[i] = Status::Corruption("not a decodable image");
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<ImageEmbedder> inner_;
  int* calls_;
};

class EngineCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/engine_cache_test_" +
            std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/files/a");
    stdfs::create_directories(base_ + "/files/b");
    // 5 distinct images, each stored under 4 paths: 20 image documents, 5 distinct contents.
    for (int i = 0; i < 5; ++i) {
      for (const char* where : {"/files/a/", "/files/b/", "/files/a/copy_", "/files/b/copy_"}) {
        std::ofstream(base_ + where + "img" + std::to_string(i) + ".png", std::ios::binary)
            << "\x89PNG\r\n\x1A\n" << "pixels" << i;
      }
    }
  }
  void TearDown() override { stdfs::remove_all(base_); }

  Result<IndexReport> IndexWith(const std::string& data, bool use_cache, int* calls) {
    EngineOptions o;
    o.data_dir = base_ + "/" + data;
    o.progress = false;
    o.use_cache = use_cache;
    FS_ASSIGN_OR_RETURN(auto engine, Engine::Open(o));
    FS_RETURN_IF_ERROR(engine->SetEmbedder(std::make_unique<CountingEmbedder>(calls)));
    FS_ASSIGN_OR_RETURN(IndexReport r, engine->Index(base_ + "/files"));
    // Every image document has its embedding, whatever served it.
    FS_ASSIGN_OR_RETURN(auto missing, engine->store()->ImagesMissingEmbedding("test/hash-8", 0, 100));
    if (!missing.empty()) return Status::Internal(std::to_string(missing.size()) + " images without an embedding");
    return r;
  }

  // Indexes the files with the hash model in batches of `batch`, reopens the data directory and
  // returns the engine with every image (id order) and its vector.
  struct Indexed {
    std::unique_ptr<Engine> engine;
    std::vector<std::pair<int64_t, std::string>> ids;
    std::vector<std::vector<float>> old;
  };
  Result<Indexed> IndexWithHashModel(size_t batch) {
    EngineOptions o;
    o.data_dir = base_ + "/data";
    o.progress = false;
    o.embed_batch = batch;
    int calls = 0;
    {
      FS_ASSIGN_OR_RETURN(auto engine, Engine::Open(o));
      FS_RETURN_IF_ERROR(engine->SetEmbedder(std::make_unique<CountingEmbedder>(&calls)));
      FS_RETURN_IF_ERROR(engine->Index(base_ + "/files").status());
    }
    Indexed out;
    FS_ASSIGN_OR_RETURN(out.engine, Engine::Open(o));
    FS_ASSIGN_OR_RETURN(out.ids, out.engine->store()->ImagesAfter(0, 100));
    for (auto& [id, uri] : out.ids) {
      FS_ASSIGN_OR_RETURN(auto v, out.engine->store()->GetEmbedding(id, "test/hash-8"));
      if (!v) return Status::Internal("no embedding for " + uri);
      out.old.push_back(*v);
    }
    return out;
  }
  std::string base_;
};

TEST_F(EngineCacheTest, IdenticalContentIsEmbeddedOnce) {
  int calls = 0;
  auto r = IndexWith("data", /*use_cache=*/true, &calls);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->embedded, 20u);
  EXPECT_EQ(calls, 5) << "one model call per distinct content";
}

TEST_F(EngineCacheTest, NewCopiesAndChangedFilesUseTheCache) {
  int calls = 0;
  ASSERT_TRUE(IndexWith("data", true, &calls).ok());
  ASSERT_EQ(calls, 5);
  // A renamed copy of known bytes and one genuinely new image.
  stdfs::rename(base_ + "/files/b/copy_img0.png", base_ + "/files/b/renamed.png");
  std::ofstream(base_ + "/files/b/new.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "new pixels";
  calls = 0;
  auto r = IndexWith("data", true, &calls);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->embedded, 2u);
  EXPECT_EQ(r->from_cache, 1u) << "the renamed file's bytes were embedded before";
  EXPECT_EQ(calls, 1) << "only the new content reaches the model";
}

TEST_F(EngineCacheTest, CacheServesASecondDataDirectoryOnlyThroughTheSameDatabase) {
  int calls = 0;
  ASSERT_TRUE(IndexWith("data1", true, &calls).ok());
  calls = 0;
  ASSERT_TRUE(IndexWith("data2", true, &calls).ok());
  EXPECT_EQ(calls, 5) << "the cache lives in its data directory's database";
}

// `serve --watch`: a second engine over the same data directory indexes through the first one's
// cache, so the first one's counters (what /metrics reads) count the indexing's lookups.
TEST_F(EngineCacheTest, SharedCacheCountsTheOtherEnginesLookups) {
  int calls = 0;
  ASSERT_TRUE(IndexWith("data", true, &calls).ok());  // fills the cache: 5 contents
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  auto serving = Engine::Open(o);
  ASSERT_TRUE(serving.ok()) << serving.status().ToString();
  ASSERT_NE((*serving)->cache(), nullptr);
  const EmbeddingCacheCounters before = (*serving)->cache()->counters();
  o.shared_cache = (*serving)->cache();
  auto watching = Engine::Open(o);
  ASSERT_TRUE(watching.ok()) << watching.status().ToString();
  EXPECT_EQ((*watching)->cache(), (*serving)->cache());
  ASSERT_TRUE((*watching)->SetEmbedder(std::make_unique<CountingEmbedder>(&calls)).ok());
  // One known content under a new name (a hit) and one new content (a miss).
  std::ofstream(base_ + "/files/a/again.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "pixels" << 3;
  std::ofstream(base_ + "/files/a/fresh.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "fresh pixels";
  calls = 0;
  auto r = (*watching)->Index(base_ + "/files");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->from_cache, 1u);
  EXPECT_EQ(calls, 1);
  const EmbeddingCacheCounters after = (*serving)->cache()->counters();
  EXPECT_EQ(after.hits - before.hits, 1u);
  EXPECT_EQ(after.misses - before.misses, 1u);
}

TEST_F(EngineCacheTest, UseCacheFalseEmbedsEveryFile) {
  int calls = 0;
  ASSERT_TRUE(IndexWith("data", true, &calls).ok());
  std::ofstream(base_ + "/files/a/img0.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "pixels" << 1;  // now = img1's bytes
  calls = 0;
  auto r = IndexWith("data", /*use_cache=*/false, &calls);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->embedded, 1u);
  EXPECT_EQ(r->from_cache, 0u);
  EXPECT_EQ(calls, 1);
}

// The same model id with new weights: every vector differs from the hash embedder's (negated).
class NewWeightsEmbedder : public ImageEmbedder {
 public:
  explicit NewWeightsEmbedder(int* calls) : inner_(NewHashEmbedder(8)), calls_(calls) {}
  const std::string& model_id() const override { return inner_->model_id(); }
  size_t dim() const override { return inner_->dim(); }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    *calls_ += static_cast<int>(paths.size());
    FS_RETURN_IF_ERROR(inner_->EmbedFiles(paths, out, per_file, phash));
    for (float& v : out) v = -v;
    return Status::Ok();
  }

 private:
  std::unique_ptr<ImageEmbedder> inner_;
  int* calls_;
};

TEST_F(EngineCacheTest, BackfillAllReembedsEveryImageResumablyKeepingOldVectorsMeanwhile) {
  auto indexed = IndexWithHashModel(4);
  ASSERT_TRUE(indexed.ok()) << indexed.status().ToString();
  auto engine = &indexed->engine;
  Store* store = (*engine)->store();
  auto ids = &indexed->ids;
  ASSERT_EQ(ids->size(), 20u);
  const std::vector<std::vector<float>>& old = indexed->old;
  int new_calls = 0;
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<NewWeightsEmbedder>(&new_calls)).ok());
  BackfillOptions bo;
  bo.progress = false;
  bo.all = true;
  bo.limit = 8;  // killed part-way, in effect
  auto first = (*engine)->Backfill(bo);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->candidates, 20u);
  EXPECT_EQ(first->embedded, 8u);
  EXPECT_EQ(first->from_cache, 0u) << "the cache holds the old vectors: --all must not read it";
  EXPECT_GT(new_calls, 0);
  EXPECT_LE(new_calls, 8);  // copies in one batch share a model call
  // Re-embedded images have new vectors; the rest still have (and are searchable by) the old ones.
  for (size_t i = 0; i < ids->size(); ++i) {
    auto v = **store->GetEmbedding((*ids)[i].first, "test/hash-8");
    if (i < 8) {
      EXPECT_EQ(v[0], -old[i][0]) << i;
    } else {
      EXPECT_EQ(v, old[i]) << i;
      EXPECT_TRUE((*engine)->vectors()->Contains((*ids)[i].first));
    }
  }
  bo.limit = 0;
  auto rest = (*engine)->Backfill(bo);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->resumed_after, (*ids)[7].first);
  EXPECT_EQ(rest->candidates, 12u);
  EXPECT_EQ(rest->embedded, 12u);
  EXPECT_LT(new_calls, 20);  // the 20 images are 5 contents, 4 copies each
  for (size_t i = 0; i < ids->size(); ++i) EXPECT_EQ((**store->GetEmbedding((*ids)[i].first, "test/hash-8"))[0], -old[i][0]);
  // Complete: the next --all starts over.
  auto again = (*engine)->Backfill(bo);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->resumed_after, 0);
  EXPECT_EQ(again->candidates, 20u);
}

// Another model (the multilingual tower after CLIP): its own model id and vectors unlike the old
// model's (the hash vectors reversed), so a search that mixed the two would show.
class OtherModelEmbedder : public ImageEmbedder {
 public:
  OtherModelEmbedder() : inner_(NewHashEmbedder(8)) {}
  const std::string& model_id() const override { return id_; }
  size_t dim() const override { return inner_->dim(); }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    FS_RETURN_IF_ERROR(inner_->EmbedFiles(paths, out, per_file, phash));
    for (size_t row = 0; row < paths.size(); ++row) std::reverse(out.begin() + row * 8, out.begin() + (row + 1) * 8);
    return Status::Ok();
  }

 private:
  std::unique_ptr<ImageEmbedder> inner_;
  std::string id_ = "test/multilingual-8";
};

// Switching a served index from one model to another is `backfill --all` with the new model, run
// beside the server: the served engine keeps answering with the old model's vectors throughout,
// an engine of the new model sees exactly the images re-embedded so far (never an old vector), and
// after the backfill both models search the whole collection, each with its own vectors.
TEST_F(EngineCacheTest, SwitchingModelsIsABackfillWithBothSearchableMeanwhile) {
  auto indexed = IndexWithHashModel(4);
  ASSERT_TRUE(indexed.ok()) << indexed.status().ToString();
  Engine& serving = *indexed->engine;  // the server, on the old model
  const auto& ids = indexed->ids;
  ASSERT_EQ(ids.size(), 20u);
  auto search = [](Engine& engine, const std::vector<float>& vector, const std::string& model) {
    SearchRequest r;
    r.vector = vector;
    r.vector_model = model;
    r.mode = SearchMode::kVector;
    r.size = 50;
    return engine.Search(r);
  };
  // What the old and new models make of image 0 (the query is that image's own vector).
  const std::vector<float> old0 = indexed->old[0];
  const std::vector<float> new0(old0.rbegin(), old0.rend());
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  o.embed_batch = 4;
  o.model_id = "test/multilingual-8";
  auto switching = Engine::Open(o);  // `backfill --all --model-dir NEW`, beside the server
  ASSERT_TRUE(switching.ok()) << switching.status().ToString();
  ASSERT_TRUE((*switching)->SetEmbedder(std::make_unique<OtherModelEmbedder>()).ok());
  BackfillOptions bo;
  bo.progress = false;
  bo.all = true;
  bo.limit = 8;  // part-way
  auto first = (*switching)->Backfill(bo);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->embedded, 8u);
  // Meanwhile the server answers from the old model: all 20 images, image 0's copies first.
  auto during_old = search(serving, old0, "test/hash-8");
  ASSERT_TRUE(during_old.ok()) << during_old.status().ToString();
  EXPECT_EQ(during_old->hits.size(), 20u);
  EXPECT_NEAR(during_old->hits[0].score, 1.0, 1e-5);
  // The new model sees the 8 re-embedded images and nothing else.
  auto during_new = search(**switching, new0, "test/multilingual-8");
  ASSERT_TRUE(during_new.ok()) << during_new.status().ToString();
  std::set<int64_t> embedded;
  for (size_t i = 0; i < 8; ++i) embedded.insert(ids[i].first);
  EXPECT_EQ(during_new->hits.size(), 8u);
  for (const SearchHit& hit : during_new->hits) EXPECT_EQ(embedded.count(hit.doc.id), 1u) << hit.doc.uri;
  // A vector of one model is never searched against the other's index.
  auto mixed = search(**switching, old0, "test/hash-8");
  EXPECT_FALSE(mixed.ok());
  auto mixed_back = search(serving, new0, "test/multilingual-8");
  EXPECT_FALSE(mixed_back.ok());
  // The rest of the backfill; then each model searches the whole collection with its own vectors.
  bo.limit = 0;
  auto rest = (*switching)->Backfill(bo);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->embedded, 12u);
  auto after_new = search(**switching, new0, "test/multilingual-8");
  ASSERT_TRUE(after_new.ok());
  EXPECT_EQ(after_new->hits.size(), 20u);
  EXPECT_NEAR(after_new->hits[0].score, 1.0, 1e-5);
  auto after_old = search(serving, old0, "test/hash-8");
  ASSERT_TRUE(after_old.ok());
  EXPECT_EQ(after_old->hits.size(), 20u);
  // A server restarted on the new model (model_id from the index's embeddings) answers with it.
  auto restarted = Engine::Open(o);
  ASSERT_TRUE(restarted.ok());
  auto served_new = search(**restarted, new0, "test/multilingual-8");
  ASSERT_TRUE(served_new.ok()) << served_new.status().ToString();
  EXPECT_EQ(served_new->hits.size(), 20u);
  for (size_t i = 0; i < ids.size(); ++i) {
    auto v = (*(*restarted)->store()->GetEmbedding(ids[i].first, "test/multilingual-8"));
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, std::vector<float>(indexed->old[i].rbegin(), indexed->old[i].rend())) << i;
  }
}

TEST_F(EngineCacheTest, BackfillEmbedsWhatIsMissingInSlicesAndReportsFailures) {
  std::ofstream(base_ + "/files/a/bad.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "broken";
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  o.embed_batch = 4;
  {  // Indexed without a model: 21 images, no embeddings.
    auto engine = Engine::Open(o);
    ASSERT_TRUE(engine.ok());
    ASSERT_TRUE((*engine)->Index(base_ + "/files").ok());
    EXPECT_EQ(*(*engine)->store()->CountImagesMissingEmbedding("test/hash-8"), 21u);
  }
  int calls = 0;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<CountingEmbedder>(&calls)).ok());
  BackfillOptions bo;
  bo.progress = false;
  bo.dry_run = true;
  auto dry = (*engine)->Backfill(bo);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->candidates, 21u);
  EXPECT_EQ(dry->processed, 21u);
  EXPECT_EQ(dry->dry_run_uris.size(), 21u);
  EXPECT_EQ(calls, 0) << "a dry run embeds nothing";
  EXPECT_EQ(*(*engine)->store()->CountImagesMissingEmbedding("test/hash-8"), 21u);

  bo.dry_run = false;
  bo.limit = 7;  // a slice, as an interrupted run leaves it
  auto first = (*engine)->Backfill(bo);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->processed, 7u);
  const uint64_t left = *(*engine)->store()->CountImagesMissingEmbedding("test/hash-8");
  EXPECT_EQ(left, 21u - first->embedded);

  bo.limit = 0;
  auto rest = (*engine)->Backfill(bo);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->candidates, left);
  EXPECT_EQ(first->embedded + rest->embedded, 20u) << "every good image, across the two runs";
  // The bad image fails in whichever run reaches it, and a later run retries it.
  EXPECT_LE(first->failures.size(), 1u);
  ASSERT_EQ(rest->failures.size(), 1u);
  EXPECT_NE(rest->failures[0].path.find("bad.png"), std::string::npos);
  EXPECT_NE(rest->failures[0].reason.find("not a decodable image"), std::string::npos);
  EXPECT_EQ(calls, 5 + 1 + static_cast<int>(first->failures.size()))
      << "5 distinct good contents + the bad file per try; copies come from the cache";
  EXPECT_EQ(*(*engine)->store()->CountImagesMissingEmbedding("test/hash-8"), 1u) << "the failed image stays to retry";
  ASSERT_NE((*engine)->vectors(), nullptr);
  EXPECT_EQ((*engine)->vectors()->size(), 20u);
}

// A copyable embedder for backfill workers: the hash embedder's vectors (negated with new_weights),
// "/bad" files fail, and each call sleeps 0-12 ms by its first path so batches finish out of order.
class WorkerEmbedder : public ImageEmbedder {
 public:
  struct Shared {
    std::atomic<int> calls{0};
    std::mutex mu;
    std::set<const WorkerEmbedder*> used;  // instances that embedded something
  };
  WorkerEmbedder(std::shared_ptr<Shared> shared, bool new_weights)
      : inner_(NewHashEmbedder(8)), shared_(std::move(shared)), new_weights_(new_weights) {}
  const std::string& model_id() const override { return inner_->model_id(); }
  size_t dim() const override { return inner_->dim(); }
  Result<std::unique_ptr<ImageEmbedder>> Clone(int threads) const override {
    EXPECT_GE(threads, 1);
    return std::unique_ptr<ImageEmbedder>(std::make_unique<WorkerEmbedder>(shared_, new_weights_));
  }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    shared_->calls += static_cast<int>(paths.size());
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->used.insert(this);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::hash<std::string>{}(paths[0]) % 13));
    FS_RETURN_IF_ERROR(inner_->EmbedFiles(paths, out, per_file, phash));
    if (new_weights_) {
      for (float& v : out) v = -v;
    }
    for (size_t i = 0; i < paths.size(); ++i) {
      if (paths[i].find("/bad") != std::string::npos) (*per_file)[i] = Status::Corruption("not a decodable image");
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<ImageEmbedder> inner_;
  std::shared_ptr<Shared> shared_;
  bool new_weights_;
};

TEST_F(EngineCacheTest, BackfillWorkersEmbedExactlyWhatOneWorkerWould) {
  std::ofstream(base_ + "/files/a/bad.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "broken";
  for (int i = 0; i < 12; ++i) {  // more distinct contents: 12 + 5, in 4-image batches
    std::ofstream(base_ + "/files/b/more" + std::to_string(i) + ".png", std::ios::binary)
        << "\x89PNG\r\n\x1A\n" << "more pixels " << i;
  }
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  o.embed_batch = 4;
  o.use_cache = false;  // every image reaches a worker
  {
    auto engine = Engine::Open(o);
    ASSERT_TRUE(engine.ok());
    ASSERT_TRUE((*engine)->Index(base_ + "/files").ok());
  }
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  auto shared = std::make_shared<WorkerEmbedder::Shared>();
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<WorkerEmbedder>(shared, false)).ok());
  BackfillOptions bo;
  bo.progress = false;
  bo.workers = 3;
  auto r = (*engine)->Backfill(bo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->workers, 3);
  EXPECT_TRUE(r->workers_note.empty()) << r->workers_note;
  EXPECT_EQ(r->candidates, 33u);
  EXPECT_EQ(r->embedded, 32u);
  ASSERT_EQ(r->failures.size(), 1u);
  EXPECT_NE(r->failures[0].path.find("bad.png"), std::string::npos);
  EXPECT_GE(shared->used.size(), 2u) << "the batches were spread over the workers";
  EXPECT_EQ(shared->used.count(nullptr), 0u);
  // Every vector is the one the model gives for that file's bytes, whichever worker computed it.
  auto reference = NewHashEmbedder(8);
  Store* store = (*engine)->store();
  auto images = store->ImagesAfter(0, 100);
  ASSERT_TRUE(images.ok());
  ASSERT_EQ(images->size(), 33u);
  for (const auto& [id, uri] : *images) {
    auto got = store->GetEmbedding(id, "test/hash-8");
    ASSERT_TRUE(got.ok());
    if (uri.find("/bad.png") != std::string::npos) {
      EXPECT_FALSE(got->has_value());
      continue;
    }
    ASSERT_TRUE(got->has_value()) << uri;
    const std::string path = uri.substr(std::string("file://").size());
    std::vector<float> want(8);
    std::vector<Status> per_file;
    ASSERT_TRUE(reference->EmbedFiles(std::vector<std::string>{path}, want, &per_file, nullptr).ok());
    EXPECT_EQ(**got, want) << uri;
  }
  EXPECT_EQ((*engine)->vectors()->size(), 32u);
}

TEST_F(EngineCacheTest, BackfillAllWithWorkersResumesAfterTheLastBatchInOrder) {
  auto indexed = IndexWithHashModel(2);
  ASSERT_TRUE(indexed.ok()) << indexed.status().ToString();
  auto engine = &indexed->engine;
  Store* store = (*engine)->store();
  auto ids = &indexed->ids;
  ASSERT_EQ(ids->size(), 20u);
  const std::vector<std::vector<float>>& old = indexed->old;
  auto shared = std::make_shared<WorkerEmbedder::Shared>();
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<WorkerEmbedder>(shared, /*new_weights=*/true)).ok());
  BackfillOptions bo;
  bo.progress = false;
  bo.all = true;
  bo.workers = 4;
  bo.limit = 12;  // 6 batches in flight on 4 workers, finishing in any order
  auto first = (*engine)->Backfill(bo);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->workers, 4);
  EXPECT_EQ(first->embedded, 12u);
  for (size_t i = 0; i < ids->size(); ++i) {
    auto v = **store->GetEmbedding((*ids)[i].first, "test/hash-8");
    if (i < 12) {
      EXPECT_EQ(v[0], -old[i][0]) << i;
    } else {
      EXPECT_EQ(v, old[i]) << i;
    }
  }
  bo.limit = 0;
  auto rest = (*engine)->Backfill(bo);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->resumed_after, (*ids)[11].first) << "the resume point is the last of the first 12, not a later batch";
  EXPECT_EQ(rest->embedded, 8u);
  for (size_t i = 0; i < ids->size(); ++i) EXPECT_EQ((**store->GetEmbedding((*ids)[i].first, "test/hash-8"))[0], -old[i][0]);
}

TEST_F(EngineCacheTest, BackfillWorkersNeedACopyableEmbedder) {
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  {
    auto engine = Engine::Open(o);
    ASSERT_TRUE(engine.ok());
    ASSERT_TRUE((*engine)->Index(base_ + "/files").ok());
  }
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  int calls = 0;
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<CountingEmbedder>(&calls)).ok());  // no Clone
  BackfillOptions bo;
  bo.progress = false;
  bo.workers = 4;
  auto r = (*engine)->Backfill(bo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->workers, 1);
  EXPECT_NE(r->workers_note.find("cannot run several workers"), std::string::npos) << r->workers_note;
  EXPECT_EQ(r->embedded, 20u);
}

// Images indexed by an embedder that hashes no pixels (as with a shared cache, or a store from
// before perceptual hashes) get their hashes when duplicates are looked for: the same hash the
// CLIP path would have stored, so a resized copy is still found by hash.
TEST_F(EngineCacheTest, DuplicatesHashImagesThatHaveNoPerceptualHash) {
  const char* env = std::getenv("FILESEARCH_SHARED_DIR");
  const std::string kodak = std::string(env != nullptr && *env ? env : "../shared") + "/corpus/photos/kodak";
  if (!stdfs::exists(kodak + "/kodim07.png")) GTEST_SKIP() << "needs ../shared/corpus/photos/kodak";
  stdfs::remove_all(base_ + "/files");
  stdfs::create_directories(base_ + "/files");
  for (const char* name : {"kodim07.png", "kodim08.png", "kodim23.png"}) {
    stdfs::copy_file(kodak + "/" + name, base_ + "/files/" + name);
  }
  auto photo = image::DecodeFile(kodak + "/kodim07.png", {});
  ASSERT_TRUE(photo.ok());
  auto small = image::MakeThumbnail(*photo, 384);  // a resized, recompressed copy
  ASSERT_TRUE(small.ok());
  std::ofstream(base_ + "/files/kodim07_small.jpg", std::ios::binary) << *small;
  std::ofstream(base_ + "/files/broken.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "not pixels";

  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->SetEmbedder(NewHashEmbedder(8)).ok());  // vectors, but no perceptual hashes
  ASSERT_TRUE((*engine)->Index(base_ + "/files").ok());
  ASSERT_TRUE((*engine)->store()->PerceptualHashes()->empty());

  DuplicateOptions d;
  d.progress = false;
  d.min_cosine = 2;  // the hash embedder's vectors mean nothing: pairs by hash only
  auto report = (*engine)->FindDuplicates(d);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->hashed_now, 4u);
  EXPECT_EQ(report->unhashable, 1u) << "the broken PNG";
  EXPECT_EQ(report->hashed, 4u);
  // The stored hash is the CLIP path's: the same decode (shrink-on-load to >= 448), the same pHash.
  image::DecodeOptions clip_decode;
  clip_decode.min_short_side = 448;
  auto rows = (*engine)->store()->PerceptualHashes();
  ASSERT_TRUE(rows.ok());
  for (const auto& row : *rows) {
    auto doc = (*engine)->store()->Get(row.doc_id);
    ASSERT_TRUE(doc.ok());
    auto img = image::DecodeFile(doc->path, clip_decode);
    ASSERT_TRUE(img.ok());
    EXPECT_EQ(row.phash, image::PerceptualHash(*img)) << doc->path;
  }
  bool copy_found = false;
  for (const auto& n : report->near) {
    auto a = (*engine)->store()->Get(n.a);
    auto b = (*engine)->store()->Get(n.b);
    ASSERT_TRUE(a.ok() && b.ok());
    const std::set<std::string> names = {a->name, b->name};
    if (names == std::set<std::string>{"kodim07.png", "kodim07_small.jpg"}) copy_found = n.by_hash;
    EXPECT_TRUE(n.by_hash);
  }
  EXPECT_TRUE(copy_found);
  // Done once: a second run has nothing left to hash (the broken file is tried again, and fails).
  auto again = (*engine)->FindDuplicates(d);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->hashed_now, 0u);
  EXPECT_EQ(again->hashed, 4u);
}

TEST_F(EngineCacheTest, BackfillWithoutAModelSaysWhatToDo) {
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  auto r = (*engine)->Backfill({});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("--model-dir"), std::string::npos);
}

// Vectors by picture: a file holding "g<G>v<V>" gets group G's direction plus a little of
// variant V's, so variants of one group are near duplicates and groups are far apart.
class GroupEmbedder : public ImageEmbedder {
 public:
  const std::string& model_id() const override { return model_; }
  size_t dim() const override { return 16; }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    per_file->assign(paths.size(), Status::Ok());
    for (size_t i = 0; i < paths.size(); ++i) {
      std::ifstream in(paths[i], std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      int g = 0, v = 0;
      std::sscanf(bytes.c_str() + bytes.find('g'), "g%dv%d", &g, &v);
      for (size_t j = 0; j < 16; ++j) {
        out[i * 16 + j] = (j == static_cast<size_t>(g) ? 1.0f : 0.0f) + (j == static_cast<size_t>(8 + v) ? 0.1f : 0.0f);
      }
    }
    return Status::Ok();
  }

 private:
  std::string model_ = "test/group-16";
};

TEST_F(EngineCacheTest, DuplicatesExactByContentAndNearByEmbedding) {
  stdfs::remove_all(base_ + "/files");
  stdfs::create_directories(base_ + "/files");
  auto put = [&](const std::string& name, const std::string& body) {
    std::ofstream(base_ + "/files/" + name, std::ios::binary) << "\x89PNG\r\n\x1A\n" << body;
  };
  put("cat.png", "g1v0");
  put("cat_copy.png", "g1v0");      // exact copy
  put("cat_small.png", "g1v1");     // near: same picture, other bytes
  put("dog.png", "g2v0");
  put("dog_recompressed.png", "g2v2");
  put("car.png", "g3v0");           // alone
  std::ofstream(base_ + "/files/empty1.txt");
  std::ofstream(base_ + "/files/empty2.txt");  // empty files are not reported as duplicates
  std::ofstream(base_ + "/files/notes.txt") << "same text";
  std::ofstream(base_ + "/files/notes_backup.txt") << "same text";
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<GroupEmbedder>()).ok());
  ASSERT_TRUE((*engine)->Index(base_ + "/files").ok());
  auto name_of = [&](int64_t id) { return (*engine)->store()->Get(id)->name; };

  auto report = (*engine)->FindDuplicates({});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::set<std::set<std::string>> exact;
  for (const auto& g : report->exact) {
    std::set<std::string> names;
    for (int64_t id : g) names.insert(name_of(id));
    exact.insert(names);
  }
  EXPECT_EQ(exact, (std::set<std::set<std::string>>{{"cat.png", "cat_copy.png"}, {"notes.txt", "notes_backup.txt"}}));
  EXPECT_EQ(report->model, "test/group-16");
  std::set<std::set<std::string>> near;
  for (const auto& n : report->near) {
    EXPECT_LT(n.a, n.b);
    EXPECT_GE(n.cosine, 0.95f);
    near.insert({name_of(n.a), name_of(n.b)});
  }
  EXPECT_EQ(near, (std::set<std::set<std::string>>{{"cat.png", "cat_small.png"},
                                                   {"cat_copy.png", "cat_small.png"},
                                                   {"dog.png", "dog_recompressed.png"}}));
  // A threshold above the variants' similarity (cos = 1/1.01 ~ 0.990) finds no near pair.
  DuplicateOptions strict;
  strict.min_cosine = 0.995f;
  auto none = (*engine)->FindDuplicates(strict);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->near.empty());
  EXPECT_EQ(none->exact.size(), 2u);
}

// Perceptual hashes from the file: "h<hex>" is the picture's hash. Vectors are one-hot by file
// index, so embeddings never make a near pair.
class HashFileEmbedder : public ImageEmbedder {
 public:
  const std::string& model_id() const override { return model_; }
  size_t dim() const override { return 4; }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    per_file->assign(paths.size(), Status::Ok());
    phash->assign(paths.size(), 0);
    for (size_t i = 0; i < paths.size(); ++i) {
      std::ifstream in(paths[i], std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      (*phash)[i] = std::stoull(bytes.substr(bytes.find('h') + 1), nullptr, 16);
      for (size_t j = 0; j < 4; ++j) out[i * 4 + j] = j == (next_++ % 4) ? 1.0f : 0.0f;
    }
    return Status::Ok();
  }

 private:
  std::string model_ = "test/onehot-4";
  size_t next_ = 0;
};

// The multi-index search for hash pairs equals brute force at every threshold: random hashes plus
// planted copies 0-14 bits away; exact copies (same bytes) are not near pairs.
TEST_F(EngineCacheTest, NearDuplicatesByPerceptualHashEqualBruteForce) {
  stdfs::remove_all(base_ + "/files");
  stdfs::create_directories(base_ + "/files");
  std::mt19937_64 rng(7);
  std::vector<uint64_t> hashes;
  for (int i = 0; i < 150; ++i) hashes.push_back(rng());
  for (int bits = 0; bits <= 14; ++bits) {  // a planted neighbour of hash `bits`, `bits` bits away
    uint64_t h = hashes[static_cast<size_t>(bits)];
    std::set<int> flipped;
    while (static_cast<int>(flipped.size()) < bits) flipped.insert(static_cast<int>(rng() % 64));
    for (int b : flipped) h ^= uint64_t{1} << b;
    hashes.push_back(h);
  }
  std::map<std::string, uint64_t> hash_of_name;
  for (size_t i = 0; i < hashes.size(); ++i) {
    const std::string name = "p" + std::to_string(i) + ".png";
    // Distinct bytes even for equal hashes (the planted 0-bit copy): "p<i>" before the hash.
    std::ofstream(base_ + "/files/" + name, std::ios::binary) << "\x89PNG\r\n\x1A\n" << "p" << i << "h" << std::hex << hashes[i];
    hash_of_name[name] = hashes[i];
  }
  // An exact copy of p0.png (same bytes).
  std::ofstream(base_ + "/files/copy.png", std::ios::binary) << "\x89PNG\r\n\x1A\n" << "p0h" << std::hex << hashes[0];
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->SetEmbedder(std::make_unique<HashFileEmbedder>()).ok());
  ASSERT_TRUE((*engine)->Index(base_ + "/files").ok());
  auto name_of = [&](int64_t id) { return (*engine)->store()->Get(id)->name; };
  // Exact copies are one content, stood for by the lower document id.
  const int64_t copy_id = (*engine)->store()->GetByUri(FileUri(base_ + "/files/copy.png"))->id;
  const int64_t p0_id = (*engine)->store()->GetByUri(FileUri(base_ + "/files/p0.png"))->id;
  const std::string stand_in = copy_id < p0_id ? "copy.png" : "p0.png";
  const std::string hidden = copy_id < p0_id ? "p0.png" : "copy.png";
  hash_of_name.erase("p0.png");
  hash_of_name[stand_in] = hashes[0];
  for (int t : {0, 3, 8, 12, 20}) {
    DuplicateOptions d;
    d.max_hamming = t;
    d.min_cosine = 1.01f;  // embeddings out of the picture
    d.max_groups = 100000;
    auto report = (*engine)->FindDuplicates(d);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->hashed, hashes.size()) << "p0.png and copy.png share one content";
    EXPECT_FALSE(report->hash_pairs_truncated);
    std::set<std::pair<std::string, std::string>> got, want;
    for (const auto& n : report->near) {
      EXPECT_TRUE(n.by_hash && !n.by_embedding);
      std::string a = name_of(n.a), b = name_of(n.b);
      if (a == hidden || b == hidden) ADD_FAILURE() << "the lowest id stands for exact copies";
      EXPECT_EQ(n.hamming, std::popcount(hash_of_name[a] ^ hash_of_name[b]));
      got.insert(std::minmax(a, b));
    }
    for (auto x = hash_of_name.begin(); x != hash_of_name.end(); ++x) {
      for (auto y = std::next(x); y != hash_of_name.end(); ++y) {
        if (std::popcount(x->second ^ y->second) <= t) want.insert(std::minmax(x->first, y->first));
      }
    }
    EXPECT_EQ(got, want) << "threshold " << t;
    if (t == 12) {
      EXPECT_GE(want.size(), 13u) << "the planted pairs of 0-12 bits";
    }
  }
  DuplicateOptions off;
  off.max_hamming = -1;
  off.min_cosine = 1.01f;
  auto none = (*engine)->FindDuplicates(off);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->near.empty());
}

}  // namespace
}  // namespace fs

namespace fs {
namespace {

// The query side goes through the engine: image bytes through the cache (a second call is a hit
// with the same vector), similar_to reads the document's own embedding and leaves it out, text
// reaches the vector leg only with a query embedder and outside text mode, and given numbers stay.
TEST_F(EngineCacheTest, TheEngineResolvesQueryVectors) {
  int calls = 0;
  ASSERT_TRUE(IndexWith("data", true, &calls).ok());
  EngineOptions o;
  o.data_dir = base_ + "/data";
  o.progress = false;
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->SetEmbedder(NewHashEmbedder(8)).ok());
  const std::string bytes = std::string("\x89PNG\r\n\x1A\n") + "pixels" + "3";
  SearchRequest r;
  EXPECT_EQ((*engine)->ResolveQueryVector(QueryVectorSource{{}, "", std::nullopt, &bytes, true}, &r).code(),
            StatusCode::kUnavailable) << "no query embedder yet";
  std::unique_ptr<QueryEmbedder> q = NewHashQueryEmbedder(8);
  (*engine)->SetQueryEmbedder(q.get());
  auto first = (*engine)->EmbedImageBytes(bytes);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->cached) << "indexing put these bytes in the cache";
  auto fresh = (*engine)->EmbedImageBytes(bytes + "new");
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->cached);
  auto again = (*engine)->EmbedImageBytes(bytes + "new");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(again->vector, fresh->vector);
  EXPECT_FALSE((*engine)->EmbedImageBytes(bytes + "new", /*use_cache=*/false)->cached);

  QueryVectorSource image;
  image.image = &bytes;
  ASSERT_TRUE((*engine)->ResolveQueryVector(image, &r).ok());
  EXPECT_EQ(r.vector, first->vector);
  EXPECT_EQ(r.vector_model, "test/hash-8");

  auto hits = (*engine)->store()->ImagesAfter(0, 1);
  ASSERT_TRUE(hits.ok() && !hits->empty());
  const int64_t id = hits->front().first;
  SearchRequest similar;
  QueryVectorSource by_doc;
  by_doc.similar_to = id;
  ASSERT_TRUE((*engine)->ResolveQueryVector(by_doc, &similar).ok());
  EXPECT_EQ(similar.exclude_id, id);
  auto stored = (*engine)->store()->GetEmbedding(id, "test/hash-8");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ(similar.vector, **stored);
  auto result = (*engine)->Search(similar);
  ASSERT_TRUE(result.ok());
  for (const auto& h : result->hits) EXPECT_NE(h.doc.id, id) << "find-similar lists the document itself";
  by_doc.similar_to = 999999;
  EXPECT_EQ((*engine)->ResolveQueryVector(by_doc, &similar).code(), StatusCode::kNotFound);
  by_doc.image = &bytes;
  by_doc.similar_to = id;
  EXPECT_EQ((*engine)->ResolveQueryVector(by_doc, &similar).code(), StatusCode::kInvalidArgument);

  SearchRequest words;
  words.query = "img";
  ASSERT_TRUE((*engine)->ResolveQueryVector(QueryVectorSource{}, &words).ok());
  EXPECT_EQ(words.vector.size(), 8u) << "keywords reach the vector leg through the text tower";
  SearchRequest text_only;
  text_only.query = "img";
  text_only.mode = SearchMode::kText;
  ASSERT_TRUE((*engine)->ResolveQueryVector(QueryVectorSource{}, &text_only).ok());
  EXPECT_TRUE(text_only.vector.empty());
  SearchRequest given;
  given.query = "img";
  QueryVectorSource numbers;
  numbers.embedding = std::vector<float>(8, 0.5f);
  ASSERT_TRUE((*engine)->ResolveQueryVector(numbers, &given).ok());
  EXPECT_EQ(given.vector, numbers.embedding);
  EXPECT_EQ(given.vector_model, "test/hash-8");
}

}  // namespace
}  // namespace fs
