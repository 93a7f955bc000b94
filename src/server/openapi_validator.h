// Internal header of server/ tests: checks a JSON reply against the response schema that
// docs/openapi.json declares for (path template, method, status). Supports the JSON-schema subset
// the spec uses: $ref, type (one or a list), properties, required, additionalProperties: false,
// items, enum, minimum, maximum. Test-only; not thread-safe.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs::server::testing {

class OpenApiValidator {
 public:
  explicit OpenApiValidator(nlohmann::json spec) : spec_(std::move(spec)) {}
  // Problems found ("$.hits[0].score: expected number, got string"); empty when the reply conforms.
  // Uses the status's response, else "default"; a missing schema is itself a problem.
  std::vector<std::string> Validate(const std::string& path, const std::string& method, int status,
                                    const nlohmann::json& body) const;

 private:
  void Check(const nlohmann::json& schema, const nlohmann::json& value, const std::string& where,
             std::vector<std::string>* problems) const;
  const nlohmann::json& Resolve(const nlohmann::json& schema) const;
  nlohmann::json spec_;
};

}  // namespace fs::server::testing
