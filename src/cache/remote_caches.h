// Internal header of cache/: the shared back ends behind OpenEmbeddingCache, and what their
// tests need to see (key layout, the DynamoDB wire format).
// Redis: key "filesearch:emb:<model>:<sha256>", value the vector as little-endian float32 bytes,
// written with SET ... EX <ttl>; Redis deletes expired keys itself.
// DynamoDB: item {image_hash: S "<sha256>#<model>", ttl: N epoch seconds, model: S, dim: N,
// embedding: B little-endian float32}; see dynamodb_cache.cpp for why the model is in the key.
#pragma once

#include <memory>
#include <string>

#include "cache/embedding_cache.h"

namespace fs::cache_internal {

std::string RedisKey(const std::string& sha256, const std::string& model);
Result<std::unique_ptr<EmbeddingCache>> OpenRedisCache(const EmbeddingCacheSpec& spec);

std::string DynamoImageHash(const std::string& sha256, const std::string& model);
Result<std::unique_ptr<EmbeddingCache>> OpenDynamoCache(const EmbeddingCacheSpec& spec);
Result<std::string> SetupDynamoTable(const EmbeddingCacheSpec& spec);

}  // namespace fs::cache_internal
