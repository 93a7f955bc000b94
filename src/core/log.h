// Logging: leveled messages to stderr, as plain text (default) or one JSON object per line
// (SetLogJson(true), for servers). Thread-safe; each line is written with a single write().
// The level comes from SetLogLevel or the LOG_LEVEL environment variable (debug|info|warn|error).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace fs {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void SetLogJson(bool json);
// Reads LOG_LEVEL / FILESEARCH_LOG_LEVEL from the environment, if set.
void InitLogFromEnv();
void LogMessage(LogLevel level, std::string_view message);

// A message with extra key/value fields: in JSON mode they become string members of the line's
// object ({"ts","level","msg","request_id":"..."}); in text mode " key=value" suffixes.
struct LogField {
  std::string_view key;
  std::string value;
};
void LogWithFields(LogLevel level, std::string_view message, std::span<const LogField> fields);

inline void LogDebug(std::string_view m) { LogMessage(LogLevel::kDebug, m); }
inline void LogInfo(std::string_view m) { LogMessage(LogLevel::kInfo, m); }
inline void LogWarn(std::string_view m) { LogMessage(LogLevel::kWarn, m); }
inline void LogError(std::string_view m) { LogMessage(LogLevel::kError, m); }

// JSON string escaping (quotes included), shared by the logger and hand-written JSON.
std::string JsonQuote(std::string_view s);

}  // namespace fs
