#include "server/openapi_validator.h"

namespace fs::server::testing {
namespace {

bool HasType(const nlohmann::json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  return false;
}

}  // namespace

const nlohmann::json& OpenApiValidator::Resolve(const nlohmann::json& schema) const {
  const nlohmann::json* s = &schema;
  while (s->is_object() && s->contains("$ref")) {
    std::string ref = (*s)["$ref"].get<std::string>();  // "#/components/schemas/X"
    s = &spec_.at(nlohmann::json::json_pointer(ref.substr(1)));
  }
  return *s;
}

void OpenApiValidator::Check(const nlohmann::json& schema_in, const nlohmann::json& v, const std::string& where,
                             std::vector<std::string>* problems) const {
  const nlohmann::json& schema = Resolve(schema_in);
  if (schema.contains("type")) {
    std::vector<std::string> types;
    if (schema["type"].is_array()) {
      for (const auto& t : schema["type"]) types.push_back(t.get<std::string>());
    } else {
      types.push_back(schema["type"].get<std::string>());
    }
    bool any = false;
    for (const auto& t : types) any = any || HasType(v, t);
    if (!any) {
      problems->push_back(where + ": expected " + schema["type"].dump() + ", got " + v.type_name());
      return;
    }
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == v;
    if (!found) problems->push_back(where + ": " + v.dump() + " is not one of " + schema["enum"].dump());
  }
  if (v.is_number() && schema.contains("minimum") && v.get<double>() < schema["minimum"].get<double>()) {
    problems->push_back(where + ": below the minimum");
  }
  if (v.is_number() && schema.contains("maximum") && v.get<double>() > schema["maximum"].get<double>()) {
    problems->push_back(where + ": above the maximum");
  }
  if (v.is_object()) {
    const nlohmann::json props = schema.value("properties", nlohmann::json::object());
    for (const auto& r : schema.value("required", nlohmann::json::array())) {
      if (!v.contains(r.get<std::string>())) problems->push_back(where + ": missing required field " + r.get<std::string>());
    }
    for (const auto& [key, value] : v.items()) {
      if (props.contains(key)) {
        Check(props[key], value, where + "." + key, problems);
      } else if (schema.contains("additionalProperties") && schema["additionalProperties"] == false) {
        problems->push_back(where + ": field " + key + " is not in the schema");
      }
    }
  }
  if (v.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < v.size(); ++i) Check(schema["items"], v[i], where + "[" + std::to_string(i) + "]", problems);
  }
}

std::vector<std::string> OpenApiValidator::Validate(const std::string& path, const std::string& method, int status,
                                                    const nlohmann::json& body) const {
  std::vector<std::string> problems;
  if (!spec_["paths"].contains(path) || !spec_["paths"][path].contains(method)) return {"no operation " + method + " " + path};
  const auto& responses = spec_["paths"][path][method]["responses"];
  std::string key = std::to_string(status);
  const nlohmann::json* response = responses.contains(key) ? &responses[key] : responses.contains("default") ? &responses["default"] : nullptr;
  if (!response) return {"no response " + key + " declared for " + method + " " + path};
  const nlohmann::json& r = Resolve(*response);
  if (!r.contains("content") || !r["content"].contains("application/json")) return {"response " + key + " has no JSON schema"};
  Check(r["content"]["application/json"]["schema"], body, "$", &problems);
  return problems;
}

}  // namespace fs::server::testing
