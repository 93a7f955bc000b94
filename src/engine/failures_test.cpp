// The failure list: permanent failures become dead letters at once and are not retried until the
// file changes; transient ones are retried after an exponential backoff and resolved on success;
// the entry disappears when the file is stored again, embedded, or deleted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "engine/engine.h"

namespace fs {
namespace {

namespace stdfs = std::filesystem;

// Files named bad* are corrupt (permanent); flaky* fail with an I/O error the first
// `flaky_failures` times they are embedded (transient). Counts the calls per file name.
class ScriptedEmbedder : public ImageEmbedder {
 public:
  ScriptedEmbedder(std::map<std::string, int>* calls, int flaky_failures)
      : inner_(NewHashEmbedder(8)), calls_(calls), flaky_failures_(flaky_failures) {}
  const std::string& model_id() const override { return inner_->model_id(); }
  size_t dim() const override { return inner_->dim(); }
  Status EmbedFiles(std::span<const std::string> paths, std::span<float> out, std::vector<Status>* per_file,
                    std::vector<uint64_t>* phash) override {
    FS_RETURN_IF_ERROR(inner_->EmbedFiles(paths, out, per_file, phash));
    for (size_t i = 0; i < paths.size(); ++i) {
      const std::string name = stdfs::path(paths[i]).filename().string();
      const int n = ++(*calls_)[name];
      if (name.rfind("bad", 0) == 0) (*per_file)[i] = Status::Corruption("not a decodable image");
      if (name.rfind("flaky", 0) == 0 && n <= flaky_failures_) (*per_file)[i] = Status::IOError("read timed out");
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<ImageEmbedder> inner_;
  std::map<std::string, int>* calls_;
  int flaky_failures_;
};

class FailuresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::weakly_canonical(::testing::TempDir()).string() + "/failures_test_" + std::to_string(::getpid()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    stdfs::remove_all(base_);
    stdfs::create_directories(base_ + "/files");
    for (const char* name : {"good.png", "bad.png", "flaky.png"}) Write(name, name);
  }
  void TearDown() override { stdfs::remove_all(base_); }
  void Write(const std::string& name, const std::string& payload) {
    std::ofstream(base_ + "/files/" + name, std::ios::binary) << "\x89PNG\r\n\x1A\n" << payload;
  }
  std::unique_ptr<Engine> Open(std::map<std::string, int>* calls, int flaky_failures, RetryPolicy policy) {
    EngineOptions o;
    o.data_dir = base_ + "/data";
    o.progress = false;
    o.use_cache = false;
    o.retry = policy;
    auto engine = Engine::Open(o);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    EXPECT_TRUE((*engine)->SetEmbedder(std::make_unique<ScriptedEmbedder>(calls, flaky_failures)).ok());
    return std::move(engine).value();
  }
  std::map<std::string, FailureRecord> Failures(Engine* e) {
    std::map<std::string, FailureRecord> out;
    auto list = e->store()->ListFailures(false, 100);
    EXPECT_TRUE(list.ok());
    for (auto& f : *list) out[stdfs::path(f.path).filename().string()] = f;
    return out;
  }
  std::string base_;
};

TEST_F(FailuresTest, TheEmbedObserverCountsEachModelCallByResult) {
  std::map<std::string, int> calls;
  auto e = Open(&calls, 0, RetryPolicy{});
  std::vector<EmbedBatchStats> batches;
  e->SetEmbedObserver([&](const EmbedBatchStats& b) { batches.push_back(b); });
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  uint64_t ok = 0, failed = 0;
  for (const auto& b : batches) {
    ok += b.ok;
    failed += b.failed;
    EXPECT_GE(b.seconds, 0.0);
  }
  EXPECT_EQ(ok, 2u);      // good.png, flaky.png
  EXPECT_EQ(failed, 1u);  // bad.png
  // Nothing new: no model call, nothing reported.
  batches.clear();
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_TRUE(batches.empty());
}

TEST_F(FailuresTest, TheTestEmbeddersFaultMarkerFailsThatFileOnly) {
  Write("marked.png", std::string("header ") + std::string(kTestEmbedFaultMarker) + " tail");
  auto embedder = NewHashEmbedder(8);
  const std::vector<std::string> paths = {base_ + "/files/good.png", base_ + "/files/marked.png"};
  std::vector<float> out(paths.size() * 8);
  std::vector<Status> per_file;
  ASSERT_TRUE(embedder->EmbedFiles(paths, out, &per_file, nullptr).ok());
  ASSERT_EQ(per_file.size(), 2u);
  EXPECT_TRUE(per_file[0].ok());
  EXPECT_EQ(per_file[1].code(), StatusCode::kInvalidArgument);
  EXPECT_NE(per_file[1].message().find("injected embedding fault"), std::string::npos);
}

TEST_F(FailuresTest, CorruptImageIsADeadLetterUntilTheFileChanges) {
  std::map<std::string, int> calls;
  auto e = Open(&calls, 0, RetryPolicy{});
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  auto f = Failures(e.get());
  ASSERT_EQ(f.size(), 1u);
  ASSERT_TRUE(f.count("bad.png"));
  EXPECT_TRUE(f["bad.png"].dead());
  EXPECT_EQ(f["bad.png"].stage, "embed");
  EXPECT_EQ(f["bad.png"].attempts, 1);
  EXPECT_NE(f["bad.png"].reason.find("not a decodable image"), std::string::npos);
  auto counts = e->store()->CountFailures();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->dead, 1u);
  EXPECT_EQ(counts->retrying, 0u);

  // Later passes leave the dead letter alone: the model is not asked again.
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_EQ(calls["bad.png"], 1);

  // A new version of the file clears the entry and is tried again (and fails again: still bad).
  Write("bad.png", "a different corrupt payload");
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_EQ(calls["bad.png"], 2);
  EXPECT_EQ(Failures(e.get())["bad.png"].attempts, 1);

  // Deleting the file removes its entry; requeue makes dead letters due again.
  stdfs::remove(base_ + "/files/bad.png");
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_TRUE(Failures(e.get()).empty());
}

TEST_F(FailuresTest, TransientFailureIsRetriedWithBackoffThenResolved) {
  std::map<std::string, int> calls;
  auto e = Open(&calls, /*flaky_failures=*/2, RetryPolicy{5, /*base_backoff_ms=*/400, 10000});
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  auto f = Failures(e.get());
  ASSERT_TRUE(f.count("flaky.png"));
  EXPECT_FALSE(f["flaky.png"].dead());
  EXPECT_EQ(f["flaky.png"].attempts, 1);
  EXPECT_GE(f["flaky.png"].retry_at_ns - f["flaky.png"].last_ns, 400'000'000);
  EXPECT_EQ(calls["flaky.png"], 1);

  // Before the backoff runs out, a pass does not retry it.
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_EQ(calls["flaky.png"], 1);

  std::this_thread::sleep_for(std::chrono::milliseconds(450));
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_EQ(calls["flaky.png"], 2);
  f = Failures(e.get());
  EXPECT_EQ(f["flaky.png"].attempts, 2);
  // The second wait is twice the first.
  EXPECT_GE(f["flaky.png"].retry_at_ns - f["flaky.png"].last_ns, 800'000'000);
  auto next = e->store()->NextRetryAt();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, f["flaky.png"].retry_at_ns);

  std::this_thread::sleep_for(std::chrono::milliseconds(850));
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_EQ(calls["flaky.png"], 3);
  // Third time lucky: embedded, and off the list.
  f = Failures(e.get());
  EXPECT_FALSE(f.count("flaky.png"));
  auto missing = e->store()->ImagesMissingEmbedding("test/hash-8", 0, 10);
  ASSERT_TRUE(missing.ok());
  ASSERT_EQ(missing->size(), 1u);  // only bad.png
}

TEST_F(FailuresTest, OutOfAttemptsBecomesDeadAndRequeueRevivesIt) {
  std::map<std::string, int> calls;
  auto e = Open(&calls, /*flaky_failures=*/100, RetryPolicy{2, /*base_backoff_ms=*/1, 1});
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  auto f = Failures(e.get());
  EXPECT_EQ(f["flaky.png"].attempts, 2);
  EXPECT_TRUE(f["flaky.png"].dead());
  auto dead = e->store()->ListFailures(/*dead_only=*/true, 10);
  ASSERT_TRUE(dead.ok());
  EXPECT_EQ(dead->size(), 2u);  // bad.png and flaky.png
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_EQ(calls["flaky.png"], 2);

  auto n = e->store()->RequeueFailures();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_EQ(calls["flaky.png"], 3);
  EXPECT_EQ(calls["bad.png"], 2);
}

// A PDF with one line of text; poppler rebuilds the missing cross-reference table.
std::string TinyPdf() {
  const std::string content = "BT /F1 18 Tf 10 50 Td (hello retried world) Tj ET";
  return "%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
         "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 100]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>"
         "endobj\n4 0 obj<</Length " + std::to_string(content.size()) + ">>stream\n" + content +
         "\nendstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
         "trailer<</Root 1 0 R>>\n%%EOF\n";
}

// An extraction failure leaves the document stored by name, unchanged on disk: a requeue must still
// make the next pass read it again (before, it stayed "retry due" for ever and the queue-depth
// gauge never cleared), and a pass that now extracts it takes it off the list.
TEST_F(FailuresTest, RequeuedExtractFailureIsRetriedAndResolved) {
  const std::string good = TinyPdf();
  std::string broken = "%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage \xFF\xFE\n%%EOF\n";
  broken.resize(good.size(), ' ');
  const std::string path = base_ + "/files/scan.pdf";
  { std::ofstream(path, std::ios::binary) << broken; }
  std::map<std::string, int> calls;
  auto e = Open(&calls, 0, RetryPolicy{});
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  auto f = Failures(e.get());
  ASSERT_TRUE(f.count("scan.pdf"));
  EXPECT_EQ(f["scan.pdf"].stage, "extract");
  EXPECT_TRUE(f["scan.pdf"].dead());
  const int64_t first_try = f["scan.pdf"].last_ns;

  // Requeued while the file is still broken: the next pass reads it again, fails again, and the
  // entry is a dead letter once more, not due for ever.
  ASSERT_TRUE(e->store()->RequeueFailures().ok());
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  f = Failures(e.get());
  ASSERT_TRUE(f.count("scan.pdf"));
  EXPECT_TRUE(f["scan.pdf"].dead()) << "a requeued extract failure must be tried by the next pass";
  EXPECT_GT(f["scan.pdf"].last_ns, first_try);
  auto counts = e->store()->CountFailures();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->retrying, 0u);
  auto next = e->store()->NextRetryAt();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 0) << "nothing is left due, so `serve --watch` stops running retry passes";

  // The cause fixed without a size or time change the crawl would notice (say, a new extractor):
  // after a requeue the pass extracts the text and the entry is gone.
  const auto mtime = stdfs::last_write_time(path);
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << good; }
  stdfs::last_write_time(path, mtime);
  ASSERT_TRUE(e->store()->RequeueFailures().ok());
  ASSERT_TRUE(e->Index(base_ + "/files").ok());
  EXPECT_FALSE(Failures(e.get()).count("scan.pdf"));
  SearchRequest r;
  r.query = "retried";
  r.mode = SearchMode::kText;
  auto found = e->Search(r);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->hits.size(), 1u);
  EXPECT_EQ(found->hits[0].doc.name, "scan.pdf");
}

TEST_F(FailuresTest, ReadFailureIsResolvedWhenTheFileIsStored) {
  auto store = Store::Open(base_ + "/db.sqlite");
  ASSERT_TRUE(store.ok());
  FailureInput in{"file:///x/report.pdf", "/x/report.pdf", "read", "cannot open: Permission denied", false};
  ASSERT_TRUE((*store)->RecordFailures(std::span<const FailureInput>(&in, 1), RetryPolicy{}, 1000).ok());
  ASSERT_EQ((*store)->ListFailures(false, 10)->size(), 1u);
  Document d;
  d.uri = in.uri;
  d.path = in.path;
  d.name = "report.pdf";
  d.mime = "application/pdf";
  ASSERT_TRUE((*store)->Upsert(d).ok());
  EXPECT_TRUE((*store)->ListFailures(false, 10)->empty());
}

}  // namespace
}  // namespace fs
