// The run-time config file of `filesearch serve --runtime-config FILE` (see server.h).
#include <nlohmann/json.hpp>

#include "server/server.h"

namespace fs::server {

Result<VectorSearchSwitch> ParseRuntimeConfig(std::string_view text) {
  using Json = nlohmann::json;
  const Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::InvalidArgument("the runtime config is not a JSON object: write {\"vector_search\": {\"enabled\": false, \"reason\": \"...\"}}");
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "vector_search") return Status::InvalidArgument("unknown runtime config key '" + key + "': the only one is vector_search");
  }
  VectorSearchSwitch out;
  if (!doc.contains("vector_search")) return out;
  const Json& vs = doc["vector_search"];
  if (!vs.is_object()) return Status::InvalidArgument("vector_search must be an object with enabled and reason");
  for (const auto& [key, value] : vs.items()) {
    if (key != "enabled" && key != "reason") {
      return Status::InvalidArgument("unknown key vector_search." + key + ": give enabled (true/false) and reason");
    }
  }
  if (!vs.contains("enabled") || !vs["enabled"].is_boolean()) {
    return Status::InvalidArgument("vector_search.enabled must be true or false");
  }
  out.enabled = vs["enabled"].get<bool>();
  if (vs.contains("reason") && !vs["reason"].is_null()) {
    if (!vs["reason"].is_string()) return Status::InvalidArgument("vector_search.reason must be a string");
    out.reason = vs["reason"].get<std::string>();
    if (out.reason.size() > 1000) return Status::InvalidArgument("vector_search.reason is longer than 1000 bytes: shorten it");
  }
  return out;
}

}  // namespace fs::server
